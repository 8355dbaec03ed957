"""WCCN after the PCA whitening (model/wccn.py) and `cvsm whiten --wccn`: the composed head
normalises the within-singer covariance, is chosen on held-out training singers only when it
helps them, and is recorded in the model file it serves from."""

from __future__ import annotations

import numpy as np
import pytest

from app.cli import main
from model import checkpoint as ckpt_io
from model.wccn import WCCN, choose_wccn, fit_backend, split_singers
from model.whitening import WHITEN, Reference


def _apply(head: dict, x: np.ndarray) -> np.ndarray:
    return x @ head[f"{WHITEN}_head.weight"].numpy().T + head[f"{WHITEN}_head.bias"].numpy()


def _reference(singers: int = 12, songs: int = 3, chunks: int = 8, nuisance: float = 3.0,
               seed: int = 0) -> Reference:
    """Synthetic singers in 16 dims: each singer a small offset in dims 0-3; every track adds an
    accompaniment offset in dims 4-7 shared by all its chunks and `nuisance` times larger. Half
    the singers have separate vocal stems (a vocals track without the accompaniment)."""
    rng = np.random.default_rng(seed)
    rows, names, groups, tracks = [], [], [], []
    for s in range(singers):
        voice = np.zeros(16)
        voice[:4] = rng.standard_normal(4)
        for song in range(songs):
            band = np.zeros(16)
            band[4:8] = nuisance * rng.standard_normal(4)
            inputs = ("mixture", "vocals") if s % 2 else ("mixture",)
            for source in inputs:
                offset = band if source == "mixture" else 0.0
                rows.append(voice + offset + 0.3 * rng.standard_normal((chunks, 16)))
                names += [f"s{s:02d}"] * chunks
                groups += [len(tracks)] * chunks
                tracks.append((f"s{s}_t{song}", source, f"s{s:02d}", f"song{s}_{song}"))
    return Reference(np.concatenate(rows), np.asarray(names), np.asarray(groups), tracks)


def test_wccn_head_whitens_the_within_singer_covariance_and_stays_one_affine_map() -> None:
    ref = _reference()
    full = _apply(fit_backend(ref.chunks, ref.singers, 8, 0.25, WCCN(0.5, 0.0)), ref.chunks)
    means = {s: full[ref.singers == s].mean(axis=0) for s in set(ref.singers)}
    within = full - np.stack([means[s] for s in ref.singers])
    np.testing.assert_allclose(within.T @ within / len(full), np.eye(8), atol=1e-4)
    # shrink 1 only rescales the PCA output: the same cosines, so the same retrieval
    pca = _apply(fit_backend(ref.chunks, ref.singers, 8, 0.25), ref.chunks)
    flat = _apply(fit_backend(ref.chunks, ref.singers, 8, 0.25, WCCN(0.25, 1.0)), ref.chunks)
    ratio = flat / pca
    np.testing.assert_allclose(ratio, np.full_like(ratio, ratio[0, 0]), rtol=1e-3)
    with pytest.raises(ValueError, match="power"):
        WCCN(0.0, 0.5)
    with pytest.raises(ValueError, match="shrink"):
        WCCN(0.25, 1.5)
    with pytest.raises(ValueError, match="two singers"):
        fit_backend(ref.chunks[:8], ref.singers[:8], 4, 0.25, WCCN(0.25, 0.5))


def test_choice_is_made_on_held_out_singers_and_prefers_wccn_only_where_it_helps() -> None:
    ref = _reference()
    first, second = split_singers(ref)
    assert not set(first) & set(second) and len(first) == len(second) == 6
    stems = {s for _, source, s, _ in ref.tracks if source == "vocals"}
    assert len(stems & set(first)) == len(stems & set(second)) == 3  # both kinds on both sides
    choice = choose_wccn(ref, dims=8)
    assert choice.best is not None  # accompaniment dominates: normalising it away pays
    assert choice.scores[str(choice.best)]["mean"] > choice.scores["pca only"]["mean"] + 0.05
    assert set(choice.scores["pca only"]) == {"mix->mix", "vocals->mix", "vocals->vocals",
                                              "mean"}
    # a candidate that only rescales scores exactly as plain PCA: the tie goes to PCA, which
    # needs no labels
    few = choose_wccn(_reference(singers=5), dims=8)  # halves of 3 and 2 singers
    assert few.best is None and few.scores == {}
    tiny = _reference(singers=6, songs=1, chunks=2)  # 3 singers but 8-10 chunks a half
    assert choose_wccn(tiny, dims=12).scores == {}   # no PCA of 12 dims on one half
    tie = choose_wccn(ref, dims=8, candidates=(WCCN(0.25, 1.0), None))
    assert tie.best is None
    assert tie.scores["pca only"] == pytest.approx(tie.scores["wccn 0.25:1"])


def test_whiten_command_fits_and_records_the_wccn_setting(synth_manifest, lstm_checkpoint,
                                                          tmp_path, capsys) -> None:
    base, _ = lstm_checkpoint
    out = tmp_path / "wccn.pt"
    assert main(["whiten", "--checkpoint", str(base), "--data", str(synth_manifest),
                 "--dims", "16", "--wccn", "0.25:0.5", "--out", str(out),
                 "--device", "cpu"]) == 0
    assert "wccn 0.25:0.5" in capsys.readouterr().out
    data = ckpt_io.load(out)
    assert data["whitening"]["wccn"] == {"power": 0.25, "shrink": 0.5}
    assert data["model"][f"{WHITEN}_head.weight"].shape[0] == 16
    plain = tmp_path / "plain.pt"  # auto by default: 3 heard singers cannot be halved
    assert main(["whiten", "--checkpoint", str(base), "--data", str(synth_manifest),
                 "--dims", "16", "--out", str(plain), "--device", "cpu"]) == 0
    assert "3 training singers" in capsys.readouterr().out
    assert ckpt_io.load(plain)["whitening"]["wccn"] is None
    assert ckpt_io.load(plain)["fingerprint"] != data["fingerprint"]
    with pytest.raises(SystemExit) as bad:
        main(["whiten", "--checkpoint", str(base), "--data", str(synth_manifest),
              "--wccn", "strong", "--out", str(tmp_path / "x.pt")])
    assert bad.value.code == 2 and "POWER:SHRINK" in capsys.readouterr().err
