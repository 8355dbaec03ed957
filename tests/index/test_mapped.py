"""Memory-mapped indexes (issue 15, `CVSM_INDEX_MMAP`): for every index type the mapped file
answers like the loaded one; additions, replacements and deletions after mapping work (FAISS
itself would abort on a write to a mapped index); the file's pages stay out of the process's
own memory; a catalog opened mapped serves, takes uploads and deletions, and reopens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.catalog import Catalog
from index.job import JobConfig, run_index
from index.mapped import MappedIndex
from index.vectors import VectorIndex
from model.audio.decode import load
from model.data.manifest import read_manifest

DIM = 32


def unit(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("factory", ["Flat", "PCA8,HNSW32,RFlat", "IVF8,PQ8,RFlat",
                                     "OPQ8_16,IVF8,PQ8,Refine(SQ8)"])
def test_mapped_answers_like_loaded_and_takes_changes(factory, tmp_path) -> None:
    x, ids = unit(600), np.arange(600, dtype=np.int64) * 3 + 1
    VectorIndex.build(ids, x, "fp", DIM, factory, tags=ids).save(tmp_path)
    loaded = VectorIndex.load(tmp_path, "fp")
    mapped = MappedIndex(VectorIndex.load(tmp_path, "fp", mmap=True))
    assert np.array_equal(mapped.search(x[:20], 5)[1], loaded.search(x[:20], 5)[1])
    fresh = unit(3, seed=9)
    mapped.add(np.array([10_001]), fresh[:1], np.array([7]))  # new
    mapped.add(ids[5:6], fresh[1:2], np.array([8]))  # replaces a mapped vector
    assert mapped.remove(ids[:2]) == 2 and mapped.remove(np.array([10_001])) == 1
    assert mapped.ntotal == 598 and mapped.tags[int(ids[5])] == 8 and 10_001 not in mapped.tags
    assert set(mapped.ids().tolist()) == set(ids[2:].tolist())
    found = mapped.search(fresh[1:2], 1)[1][0, 0]
    assert found == ids[5]  # the replacement, from the in-memory part
    assert not set(mapped.search(x[:2], 10)[1].ravel().tolist()) & set(ids[:2].tolist())
    assert mapped.search(x[:1], 600)[1].shape[1] <= 600
    before = sorted(p.name for p in tmp_path.iterdir())
    mapped.save(tmp_path)  # the file is the job's: nothing is written
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def _anon_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    pytest.skip("no /proc/self/status")


def test_mapped_pages_stay_out_of_process_memory(tmp_path) -> None:
    """A 100 MB exact index: read, it costs ~100 MB of the process's own memory; mapped and
    searched, its pages are the page cache's (shared, reclaimable), not the process's."""
    n, dim = 100_000, 256
    VectorIndex.build(np.arange(n), unit(n, dim=dim), "fp", dim, "Flat").save(tmp_path)
    start = _anon_kb()
    mapped = MappedIndex(VectorIndex.load(tmp_path, "fp", mmap=True))
    mapped.search(unit(4, seed=3, dim=dim), 10)
    mapped_kb = _anon_kb() - start
    read = VectorIndex.load(tmp_path, "fp")
    read_kb = _anon_kb() - start - mapped_kb
    print(f"own memory: read {read_kb / 1024:.0f} MB, mapped {mapped_kb / 1024:.0f} MB")
    assert read_kb > 80_000 and mapped_kb < 0.2 * read_kb, (mapped_kb, read_kb)
    del read


def test_catalog_opened_mapped(tiny_catalog, tmp_path, embedder) -> None:
    url, data = f"sqlite:///{tmp_path / 'c.sqlite'}", tmp_path / "data"
    run_index(JobConfig(catalog=tiny_catalog, data_dir=data, db_url=url, progress=False),
              embedder)
    catalog = Catalog(url, data, embedder, mmap=True)
    catalog.open()
    assert isinstance(catalog.vectors._require(), MappedIndex)
    tracks = read_manifest(tiny_catalog)
    query = catalog.repository.vector_of(tracks[0].track_id)
    assert catalog.search(query, 1)[0][0].id == tracks[0].track_id
    raw = tracks[1].mixture.read_bytes()
    catalog.add_track(load(raw), source_bytes=raw, filename="n.wav", external_id="new")
    assert catalog.delete_track(tracks[0].track_id)
    ids = [r.id for r, _ in catalog.search(query, 10)]
    assert "new" in ids and tracks[0].track_id not in ids and catalog.stats()["count"] == 4
    catalog.close()
    again = Catalog(url, data, embedder, mmap=True)  # the changes come back from SQL
    again.open()
    assert sorted(r.id for r, _ in again.search(query, 10)) == sorted(ids)
    again.close()
