"""The learned singing head (separation off): it reads the served chunk embeddings, smooths
over neighbouring seconds, belongs to one model, and says "no singing" where there is none."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from model.audio.signal import central, chunk, sound_mask
from model.data import synth
from model.inference.embedder import Embedder
from model.inference.singing_head import SingingHead


def _stems(index: int, seconds: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """(mixture, accompaniment alone) of a synthetic singer's song."""
    voc, _ = synth.sing(synth.make_singer(index, 0), synth.make_song(index, 0), seconds, 1)
    acc = synth.accompany(synth.make_song(index, 0), seconds, 1)
    return (voc + acc).astype(np.float32), acc.astype(np.float32)


@pytest.fixture(scope="module")
def head(embedder: Embedder) -> SingingHead:
    """Fitted here on three synthetic singers' mixtures (sung) and accompaniments (not)."""
    xs, ys = [], []
    for i in range(3):
        for wave, sung in zip(_stems(i), (True, False), strict=True):
            chunks = chunk(wave, embedder.model.context)
            emb = embedder.embed_chunks(chunks[sound_mask(central(chunks, 0))])
            xs.append(emb)
            ys.append(np.full(len(emb), sung))
    x, y = np.concatenate(xs), np.concatenate(ys)
    scaler = StandardScaler().fit(x)
    reg = LogisticRegression(max_iter=2000).fit(scaler.transform(x), y)
    return SingingHead(np.float32(reg.coef_[0]), float(reg.intercept_[0]),
                       np.float32(scaler.mean_), np.float32(scaler.scale_),
                       embedder.fingerprint.split("+")[0])


def test_head_finds_the_voice_and_its_absence(init_checkpoint, head):
    emb = Embedder.from_checkpoint(init_checkpoint, "cpu").with_gate(head)
    assert emb.fingerprint.endswith(f"+g{head.fingerprint}") and emb.detects_singing
    mix, acc = _stems(3)
    found, masks = [], []
    vectors = emb.embed_many([mix, acc], masks_out=masks, singing_out=found)
    assert found == [True, False]
    assert masks[0].sum() > len(masks[0]) // 2  # the sung seconds it pooled
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    plain = Embedder.from_checkpoint(init_checkpoint, "cpu").embed_many([acc])
    np.testing.assert_allclose(vectors[1], plain[0], atol=1e-6)  # nothing sung: every sound


def test_head_belongs_to_its_model(head, tmp_path, init_checkpoint, other_checkpoint):
    path = tmp_path / "head.json"
    head.save(path)
    loaded = SingingHead.load(path)
    assert loaded.fingerprint == head.fingerprint
    own = Embedder.from_checkpoint(init_checkpoint, "cpu").fingerprint
    other = Embedder.from_checkpoint(other_checkpoint, "cpu").fingerprint
    assert SingingHead.for_model(f"{own}+bf16", path) is not None
    assert SingingHead.for_model(other, path) is None


def test_smoothing_averages_neighbouring_seconds(head):
    flat = SingingHead(np.ones(1, np.float32), 0.0, np.zeros(1, np.float32),
                       np.ones(1, np.float32), "m", smooth=3)
    z = np.array([[-50.0], [50.0], [-50.0], [-50.0]], np.float32)
    np.testing.assert_allclose(flat.probability(z), [1 / 3, 1 / 3, 1 / 3, 0.0], atol=1e-6)
    assert not flat.sung(z).any()
    one = SingingHead(**{**flat.__dict__, "smooth": 1})
    assert one.sung(z).tolist() == [False, True, False, False]


@pytest.mark.parametrize("kind", ["white noise", "sine tone", "instrumental"])
def test_bundled_head_finds_no_singing_where_there_is_none(kind):
    """The shipped head for the bundled model (separation off, `--vocal-gate`)."""
    from model.weights import DEFAULT_CHECKPOINT

    emb = Embedder.from_checkpoint(DEFAULT_CHECKPOINT, "cpu", backend="torch", gate=True)
    assert isinstance(emb.gate, SingingHead)
    t = np.arange(8 * 16_000) / 16_000
    wave = {"white noise": 0.1 * np.random.default_rng(0).normal(size=len(t)),
            "sine tone": 0.3 * np.sin(2 * np.pi * 440 * t),
            "instrumental": synth.accompany(synth.make_song(2, 0), 8.0, 3)}[kind]
    found: list[bool] = []
    emb.embed_many([wave.astype(np.float32)], singing_out=found)
    assert found == [False]
