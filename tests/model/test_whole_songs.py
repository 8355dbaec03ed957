"""Whole songs assembled from clips: order, instrumental share, truth mask, retrieval."""

from __future__ import annotations

import numpy as np
import pytest

from model.evaluation.data import EvalTrack
from model.evaluation.songs import SongScorer, assemble, score_songs

SR = 16_000


def _clip(artist: str, song: str, k: int, seconds: int = 4) -> EvalTrack:
    rng = np.random.default_rng(ord(artist) * 100 + k)
    pitch = 200.0 + 150.0 * (ord(artist) - ord("a"))  # each singer its own pitch
    t = np.arange(seconds * SR) / SR
    vocals = (np.sin(2 * np.pi * pitch * t) + 0.1 * rng.normal(size=len(t))).astype(np.float32)
    acc = 0.5 * rng.normal(size=seconds * SR).astype(np.float32)
    voiced = np.ones(seconds, bool)
    voiced[0] = False
    return EvalTrack(f"{song}_{k:02d}", artist, "", song, vocals + acc, vocals, voiced)


@pytest.mark.parametrize("share", [0.0, 0.3, 0.5])
def test_assembled_song_keeps_order_share_and_truth(share):
    clips = [_clip("a", "a_1", k) for k in (2, 0, 1)]
    (song,) = assemble(clips, share)
    n_sung_sections = 3 * 4
    total = len(song.voiced)
    assert len(song.mixture) == len(song.vocals) == total * SR
    assert abs((total - n_sung_sections) / total - share) < 0.05
    first = sorted(clips, key=lambda c: c.track_id)[0]
    np.testing.assert_array_equal(song.mixture[: 4 * SR], first.mixture)
    assert song.voiced.sum() == 3 * 3  # each clip's own flags, nothing in the gaps
    silent = np.abs(song.vocals.reshape(total, SR)).sum(axis=1) == 0
    assert silent.sum() == total - n_sung_sections  # the vocals version is silent in gaps
    with pytest.raises(ValueError, match="share"):
        assemble(clips, 1.0)


def test_songs_retrieve_by_singer_with_and_without_the_mask():
    corpus = [_clip(a, f"{a}_{s}", k) for a in "abc" for s in (1, 2) for k in range(2)]

    def embed(waves, truth):  # a toy system: the spectrum of the second second (sung)
        spectra = np.stack([np.abs(np.fft.rfft(w[SR: 2 * SR]))[:1000] for w in waves])
        return spectra / np.linalg.norm(spectra, axis=1, keepdims=True)

    out = score_songs(assemble(corpus, 0.5), SongScorer(embed))
    assert out["songs"] == 6 and out["singers"] == 3
    for label in ("served", "perfect_mask"):
        assert set(out[label]) == {"mix->mix", "vocals->mix", "vocals->vocals"}
        assert out[label]["mix->mix"]["map"] == 1.0 and out[label]["mix->mix"]["queries"] == 6
    shuffled = score_songs(assemble(corpus, 0.5), SongScorer(
        lambda w, t: np.roll(embed(w, t), 1, axis=0)), sources=("mixture",))
    assert set(shuffled["served"]) == {"mix->mix"} and shuffled["served"]["mix->mix"]["map"] < 1


def test_evaluate_scores_songs_with_and_without_separation(synth_manifest, init_checkpoint,
                                                           tmp_path):
    """`cvsm evaluate --separation off on --songs`: each system's clips and whole songs."""
    import json

    from app.cli import main

    out = tmp_path / "eval"
    assert main(["evaluate", "--retrieval-only", "--checkpoint", str(init_checkpoint),
                 "--separation", "off", "on", "--songs", "0.5", "--data",
                 str(synth_manifest), "--out", str(out), "--device", "cpu"]) == 0
    for name, separated in (("init", False), ("init-separated", True)):
        results = json.loads((out / name / "results.json").read_text())
        assert results["system"]["separation"] is separated
        assert set(results["songs"]) == {"0.5"}
        half = results["songs"]["0.5"]
        assert half["songs"] == 12 and half["singers"] == 4
        for label in ("served", "perfect_mask"):
            assert 0.0 <= half[label]["mix->mix"]["map"] <= 1.0
