"""index.vectors: each index type finds, removes (or soft-deletes) and round-trips; a saved index
names its model and refuses another."""

from __future__ import annotations

import json

import numpy as np
import pytest

from index.vectors import ModelMismatchError, VectorIndex, choose_factory

DIM = 32


def unit(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("factory", ["Flat", "HNSW32,Flat", "IVF8,PQ8,RFlat",
                                     "PCA8,HNSW32,RFlat", "OPQ8_16,IVF8,PQ8,Refine(SQ8)"])
def test_search_remove_readd_and_round_trip(factory, tmp_path) -> None:
    x = unit(600)
    ids = np.arange(600, dtype=np.int64) * 7 + 3
    index = VectorIndex.build(ids, x, "fp", DIM, factory, tags=ids)
    scores, found = index.search(x[:5], 3)
    assert found[:, 0].tolist() == ids[:5].tolist()
    tolerance = 5e-3 if "SQ8" in factory else 1e-3 if "PQ" in factory else 1e-4
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=tolerance)
    assert scores.max() <= 1.0  # a cosine, even through quantised re-ranking
    index.remove(ids[:2])
    assert index.ntotal == 598 and set(index.ids().tolist()) == set(ids[2:].tolist())
    assert not set(index.search(x[:2], 5)[1].ravel().tolist()) & set(ids[:2].tolist())
    index.add(ids[:1], x[:1], ids[:1])
    assert index.search(x[:1], 1)[1][0, 0] == ids[0]
    index.save(tmp_path)
    again = VectorIndex.load(tmp_path, "fp")
    assert again.ntotal == 599 and again.tags == index.tags
    assert again.search(x[10:11], 1)[1][0, 0] == ids[10]
    assert len(list(tmp_path.glob("index-*"))) == 2  # one .faiss and its tags, nothing stale


def test_loading_another_models_index_is_refused(tmp_path) -> None:
    VectorIndex.build(np.arange(10), unit(10), "model-a", DIM).save(tmp_path)
    manifest = json.loads((tmp_path / "index.json").read_text())
    assert (manifest["fingerprint"], manifest["dim"], manifest["count"]) == ("model-a", DIM, 10)
    with pytest.raises(ModelMismatchError, match="model-a"):
        VectorIndex.load(tmp_path, "model-b")
    assert VectorIndex.load(tmp_path / "missing", "model-a") is None


def test_factory_is_chosen_by_size() -> None:
    assert choose_factory(1_000) == "Flat"
    assert choose_factory(1_000_000) == "PCA128,HNSW32,RFlat"
    assert choose_factory(1_000_000, dim=64) == "HNSW32,Flat"  # too few dims to project
    assert choose_factory(50_000_000) == "OPQ64_256,IVF28284,PQ64,Refine(SQ8)"
    assert choose_factory(50_000_000, dim=512) == "IVF28284,PQ64,RFlat"  # too few to rotate
