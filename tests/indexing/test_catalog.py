"""index.catalog.Catalog, the service's facade: add, search with filters, delete, reopen; SQL
and FAISS stay in agreement, including rows another process committed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.catalog import Catalog
from index.job import JobConfig, run_index
from model.audio.decode import load
from model.data.manifest import read_manifest


def add_all(catalog: Catalog, manifest: Path) -> list[str]:
    ids = []
    for t in read_manifest(manifest):
        data = t.mixture.read_bytes()
        catalog.add_track(load(data), source_bytes=data, filename=t.mixture.name,
                          external_id=t.track_id, title=t.title, artist=t.artist,
                          metadata={"song": t.song})
        ids.append(t.track_id)
    return ids


def test_add_search_filter_delete_reopen(tiny_catalog, tmp_path, db_url, embedder) -> None:
    catalog = Catalog(db_url, tmp_path / "data", embedder)
    catalog.open()
    ids = add_all(catalog, tiny_catalog)
    first = catalog.get_track(ids[0])
    assert first.metadata["song"] and catalog.audio_path(ids[0]).is_file()
    query = catalog.vector_of(ids[0])
    hits = catalog.search(query, 4)
    assert hits[0][0].id == ids[0] and hits[0][1] == pytest.approx(1.0, abs=1e-4)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    others = catalog.search(query, 4, exclude_artist=first.artist.upper(), exclude_ids=[ids[0]])
    assert others and all(r.artist != first.artist and r.id != ids[0] for r, _ in others)
    assert all(s >= 0.999 for _, s in catalog.search(query, 4, min_score=0.999))
    assert catalog.delete_track(ids[1]) and not catalog.delete_track(ids[1])
    assert catalog.stats()["count"] == 3 and catalog.list_tracks(0, 10)[1] == 3
    assert len(catalog.projection(10)) == 3 and catalog.ping()
    catalog.close()
    reopened = Catalog(db_url, tmp_path / "data", embedder)
    reopened.open()
    assert reopened.stats() | {"tracks": 3} == reopened.stats() and reopened.stats()["count"] == 3
    assert ids[1] not in {r.id for r, _ in reopened.search(query, 4)}
    reopened.close()


def test_precomputed_vector_and_refresh(tiny_catalog, tmp_path, db_url, embedder) -> None:
    data = tmp_path / "data"
    catalog = Catalog(db_url, data, embedder)
    catalog.open()
    vector = np.zeros(embedder.dim, np.float32)
    vector[0] = 3.0
    record = catalog.add_track(np.zeros(16000, np.float32), source_bytes=b"RIFFxxxx",
                               filename="../../evil name.wav", title="t", vector=vector)
    assert catalog.audio_path(record.id).parent == (data / "audio").resolve()
    np.testing.assert_allclose(catalog.vector_of(record.id)[0], 1.0)
    run_index(JobConfig(tiny_catalog, data, db_url, progress=False), embedder)  # another writer
    assert catalog.stats()["count"] == 1
    assert catalog.refresh() == 4 and catalog.stats()["count"] == 5
    catalog.close()
