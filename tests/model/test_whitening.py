"""Whitening the served embedding (model/whitening.py, `cvsm whiten`): the head reproduces
sklearn's PCA transform at both ends of its power, is fitted only on singers the model heard,
serves through the embedder as a head after each chunk, and names a model of its own."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from app.cli import main
from model import checkpoint as ckpt_io
from model.audio.signal import chunk, l2_normalise
from model.whitening import WHITEN, fit_whitening


def _apply(head: dict[str, torch.Tensor], x: np.ndarray) -> np.ndarray:
    return x @ head[f"{WHITEN}_head.weight"].numpy().T + head[f"{WHITEN}_head.bias"].numpy()


def test_head_is_pca_whitening_at_power_half_and_a_centred_projection_at_zero() -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((500, 12)) * np.geomspace(3, 0.01, 12) + 5).astype(np.float32)
    full = PCA(n_components=6, whiten=True, svd_solver="full").fit(x)
    np.testing.assert_allclose(_apply(fit_whitening(x, 6, power=0.5), x), full.transform(x),
                               atol=1e-3)
    plain = PCA(n_components=6, svd_solver="full").fit(x)
    np.testing.assert_allclose(_apply(fit_whitening(x, 6, power=0.0), x), plain.transform(x),
                               atol=1e-3)
    half = _apply(fit_whitening(x, 6), x)  # power 0.25: variances become sqrt of the original
    np.testing.assert_allclose(half.var(axis=0), np.sqrt(plain.explained_variance_),
                               rtol=1e-2)
    with pytest.raises(ValueError, match="dims"):
        fit_whitening(x, 13)
    with pytest.raises(ValueError, match="power"):
        fit_whitening(x, 6, power=1.0)


def test_whiten_command_serves_a_head_fitted_on_heard_singers(synth_manifest, lstm_checkpoint,
                                                              tmp_path, capsys) -> None:
    from model.audio.decode import load
    from model.inference.embedder import Embedder

    base, singers = lstm_checkpoint
    out = tmp_path / "white.pt"
    assert main(["whiten", "--checkpoint", str(base), "--data", str(synth_manifest),
                 "--dims", "16", "--out", str(out), "--device", "cpu"]) == 0
    assert "by 3 singers" in capsys.readouterr().out  # the unheard singer is never used
    data = ckpt_io.load(out)
    assert data["embedding"] == WHITEN and data["whitening"]["dims"] == 16
    assert data["model"][f"{WHITEN}_head.bias"].dtype == torch.float32  # not rounded to fp16
    white = Embedder.from_checkpoint(out, device="cpu")
    plain = Embedder.from_checkpoint(base, device="cpu")
    assert (white.dim, white.embedding) == (16, WHITEN)
    assert white.fingerprint == data["fingerprint"] != plain.fingerprint  # old indexes refused
    wave = load(next((synth_manifest.parent / "audio").glob("*_mix.wav")))
    n = len(chunk(wave))
    vector = white.embed_many([wave], voiced=[np.ones(n, bool)])[0]
    with torch.inference_mode():
        backbone = plain.model.embed(torch.from_numpy(chunk(wave, 8_000))).numpy()
    head = {k: v for k, v in data["model"].items() if k.startswith(f"{WHITEN}_head.")}
    np.testing.assert_allclose(vector, l2_normalise(_apply(head, backbone).mean(0)), atol=1e-4)
    assert main(["evaluate", "--checkpoint", str(out), "--data", str(synth_manifest),
                 "--out", str(tmp_path / "eval"), "--retrieval-only", "--device", "cpu"]) == 0
    with np.load(tmp_path / "eval" / "tracks.npz") as scored:  # only the unheard singer left
        assert scored["mixture"].shape[1] == 16 and set(scored["artists"]) == {singers[3]}


def test_whiten_refuses_a_model_that_records_no_training_singers(synth_manifest,
                                                                 init_checkpoint,
                                                                 tmp_path) -> None:
    assert main(["whiten", "--checkpoint", str(init_checkpoint), "--data",
                 str(synth_manifest), "--out", str(tmp_path / "w.pt")]) == 2
    assert not (tmp_path / "w.pt").exists()
