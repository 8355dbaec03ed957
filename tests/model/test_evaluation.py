"""The evaluation harness: metrics on hand-computed examples and `cvsm evaluate` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.cli import main
from model.audio.activity import chunk_share
from model.audio.signal import n_chunks
from model.evaluation.data import select
from model.evaluation.probes import span_probs, span_scores
from model.evaluation.retrieval import retrieval_metrics
from model.evaluation.similarity import equal_error_rate, normalised_ranks, similarity_metrics
from model.evaluation.splits import artist_split, gender_split

# scores[i, j] = similarity of query i to catalog track j; 0.99 marks items that must be excluded
# (the query itself and tracks of its own song).
SCORES = np.array([
    [0.99, 0.2, 0.99, 0.9],
    [0.8, 0.99, 0.1, 0.99],
    [0.99, 0.5, 0.99, 0.4],
    [0.3, 0.99, 0.7, 0.99],
])
ARTISTS = np.array(["A", "A", "B", "B"])
SONGS = np.array(["s1", "s2", "s1", "s2"])


def test_retrieval_excludes_own_song() -> None:
    # queries = identity, so queries @ catalog.T == SCORES
    m = retrieval_metrics(np.eye(4), SCORES.T, ARTISTS, SONGS)
    # hits at rank 2, 1, 2, 1 -> P@1 = 2/4, AP = 1/2, 1, 1/2, 1
    assert m["p_at_1"] == pytest.approx(0.5)
    assert m["map"] == pytest.approx(0.75)
    assert m["queries"] == 4


def test_retrieval_without_songs_excludes_only_the_query() -> None:
    m = retrieval_metrics(np.eye(4), SCORES.T, ARTISTS, np.array(["", "", "", ""]))
    # query 0 ranks 2 (0.99, B), 3 (0.9, B), 1 (0.2, A): the same singer is third -> AP 1/3
    # query 1: 3 (0.99, B), 0 (0.8, A) -> 1/2; query 2: 0 (0.99, A), 1, 3 (B) -> 1/3;
    # query 3: 1 (0.99, A), 2 (0.7, B) -> 1/2
    assert m["p_at_1"] == pytest.approx(0.0)
    assert m["map"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 3 + 1 / 2) / 4)


def test_normalised_ranks() -> None:
    s = np.array([[0.9, 0.1, 0.2], [0.5, 0.4, 0.6], [0.3, 0.8, 0.1]])
    assert normalised_ranks(s).tolist() == [0.0, 1.0, 1.0]


def test_equal_error_rate() -> None:
    assert equal_error_rate(np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == 0.0
    assert equal_error_rate(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == 0.5


def test_similarity_perfect_embeddings() -> None:
    artists = np.repeat(["a", "b", "c"], 2)
    songs = np.array(["x", "y"] * 3)
    tracks = np.repeat(np.eye(3), 2, axis=0)  # each artist its own direction
    m = similarity_metrics(tracks, artists, songs, episodes=3, seed=0)
    assert m["mnr"] == 0.0 and m["eer"] == 0.0 and m["artists"] == 3


def test_span_aggregation() -> None:
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.4, 0.6], [1.0, 0.0]])
    assert np.allclose(span_probs(probs, 2), [[0.6, 0.4], [0.3, 0.7]])  # the last chunk dropped
    assert np.allclose(span_probs(probs, 5), probs.mean(0, keepdims=True))
    assert np.allclose(span_probs(probs[:3], 5), probs[:3].mean(0, keepdims=True))
    scores = span_scores([probs], np.array([1]))
    assert scores["1s"]["accuracy"] == pytest.approx(0.6)
    assert scores["2s"]["accuracy"] == pytest.approx(0.5)
    assert scores["track"]["accuracy"] == 0.0  # mean [0.56, 0.44] -> class 0


def test_splits_are_disjoint() -> None:
    artists = np.repeat([f"s{i}" for i in range(6)], 10)
    genders = np.repeat(["female", "male"] * 3, 10)
    split = artist_split(artists, seed=1)
    assert len(split.train) == 48 and len(split.val) == 6 and len(split.test) == 6
    assert set(artists[split.test]) == set(artists)
    g = gender_split(artists, genders, seed=1)
    parts = [set(artists[p]) for p in (g.train, g.val, g.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert set(genders[g.test]) == {"female", "male"}


def test_activity_to_chunks() -> None:
    frames = np.zeros(100, dtype=bool)  # 2 s of 20 ms-hop frames; 49 are centred in second 1
    centres = np.arange(100) * 320 + 320  # label frame i is centred at 20 i + 20 ms
    frames[:20] = True
    assert chunk_share(frames, centres, 2).tolist() == [True, False]
    frames[:20] = False
    frames[:10] = True  # 10/49 of the first second sung: under a quarter
    assert chunk_share(frames, centres, 2).tolist() == [False, False]
    assert [n_chunks(n) for n in (8000, 16000, 23999, 24000, 100)] == [1, 1, 1, 2, 1]


def test_singer_filters(synth_manifest) -> None:
    from model.data.manifest import read_manifest

    tracks = read_manifest(synth_manifest)
    names = sorted({t.artist for t in tracks})
    assert {t.artist for t in select(tracks, artists=names[:2])} == set(names[:2])
    assert {t.artist for t in select(tracks, exclude=names[:1])} == set(names[1:])


def test_evaluate_cli_writes_every_section(synth_manifest, init_checkpoint, tmp_path) -> None:
    out = tmp_path / "eval"
    rc = main(["evaluate", "--checkpoint", str(init_checkpoint), "--baseline", "mfcc",
               "--data", str(synth_manifest), "--out", str(out), "--quick", "--device", "cpu"])
    assert rc == 0
    assert (out / "summary.md").read_text().count("| init |") == 2
    for name in ("init", "mfcc"):
        folder = out / name
        report = (folder / "report.md").read_text()
        for section in ("## Gender ID", "## Artist ID", "## Reduced training data",
                        "## Context length", "## Artist similarity", "## Retrieval"):
            assert section in report
        results = json.loads((folder / "results.json").read_text())
        for key in ("gender_id", "artist_id", "training_data_curve", "context_curve",
                    "similarity", "retrieval", "corpus", "config", "system"):
            assert results[key], key
        assert set(results["retrieval"]) == {"mix->mix", "vocals->mix", "vocals->vocals"}
        assert set(results["artist_id"]["vocals"]) == {"1s", "2s", "5s", "track"}
        for png in ("tsne_mixture.png", "tsne_vocals.png", "curve_training_data.png",
                    "curve_context.png"):
            assert (folder / png).stat().st_size > 1000
