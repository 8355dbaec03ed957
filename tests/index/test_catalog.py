"""index.catalog.Catalog, the service's facade, and its parts (repository, vector store,
uploads): add, search with filters, delete, reopen; SQL and FAISS stay in agreement, including
rows another process committed; an upload and the batch job write the same row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from app.projection import Projection
from index import db
from index.catalog import Catalog
from index.job import JobConfig, run_index
from index.repository import TrackWrite, write_tracks
from index.schema import FAILED, INDEXED, Track
from index.store import decode_vector
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
    first = catalog.repository.get(ids[0])
    assert first.metadata["song"] and catalog.audio_path(ids[0])[1].is_file()
    query = catalog.repository.vector_of(ids[0])
    hits = catalog.search(query, 4)
    assert hits[0][0].id == ids[0] and hits[0][1] == pytest.approx(1.0, abs=1e-4)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    others = catalog.search(query, 4, exclude_artist=first.artist.upper(), exclude_ids=[ids[0]])
    assert others and all(r.artist != first.artist and r.id != ids[0] for r, _ in others)
    assert all(s >= 0.999 for _, s in catalog.search(query, 4, min_score=0.999))
    assert catalog.delete_track(ids[1]) and not catalog.delete_track(ids[1])
    assert catalog.stats()["count"] == 3 and catalog.repository.page(0, 10)[1] == 3
    records, vectors, total = catalog.repository.page_with_vectors(10)
    assert len(records) == total == 3 and catalog.repository.ping()
    assert Projection.fit(vectors).apply(vectors).shape == (3, 2)
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
    assert catalog.audio_path(record.id)[1].parent == (data / "audio").resolve()
    np.testing.assert_allclose(catalog.repository.vector_of(record.id)[0], 1.0)
    run_index(JobConfig(tiny_catalog, data, db_url, progress=False), embedder)  # another writer
    assert catalog.stats()["count"] == 1
    assert catalog.refresh() == 4 and catalog.stats()["count"] == 5
    catalog.close()


#: Row fields that must not depend on which path wrote the row.
SAME_FIELDS = ("title", "artist", "extra", "duration", "content_hash", "status", "error",
               "model_fingerprint")


def test_upload_and_batch_job_write_the_same_row(tiny_catalog, tmp_path, db_url,
                                                 embedder) -> None:
    """One writer: a file indexed by the job and the same file added as the service adds an
    upload (decode the bytes, embed, `add_track`) give equal rows; only where the audio lives
    (`source`: the upload's stored copy), the id and the job's `run_id` differ."""
    data = tmp_path / "data"
    run_index(JobConfig(tiny_catalog, data, db_url, progress=False), embedder)
    track = read_manifest(tiny_catalog)[0]
    catalog = Catalog(db_url, data, embedder)
    catalog.open()
    by_job = _row(db_url, track.track_id)
    raw = track.mixture.read_bytes()
    samples = load(raw)
    catalog.add_track(samples, source_bytes=raw, filename=track.mixture.name,
                      external_id="uploaded-copy", title=by_job.title, artist=by_job.artist,
                      metadata=by_job.extra, vector=embedder.embed_waveform(samples))
    by_upload = _row(db_url, "uploaded-copy")
    assert {f: getattr(by_upload, f) for f in SAME_FIELDS} == \
        {f: getattr(by_job, f) for f in SAME_FIELDS}
    assert by_job.status == INDEXED and by_job.duration == pytest.approx(3.0, abs=0.05)
    np.testing.assert_allclose(decode_vector(by_upload.vector), decode_vector(by_job.vector),
                               atol=1e-5)
    assert np.linalg.norm(decode_vector(by_upload.vector)) == pytest.approx(1.0, abs=1e-6)
    assert by_job.run_id is not None and by_upload.run_id is None
    assert Path(by_upload.source).parent == Path("audio")  # relative: the data dir may move
    assert catalog.search(decode_vector(by_job.vector), 2)[1][1] == pytest.approx(1.0, abs=1e-4)
    catalog.close()


def test_failed_rows_come_from_the_same_writer(tmp_path, db_url) -> None:
    """A failed track keeps its row with no vector or duration; a later success replaces it
    under the same vector id."""
    engine = db.make_engine(db_url)
    db.migrate(db_url)
    sessions = db.session_factory(engine)
    failed = TrackWrite("t1", "fp", "ab" * 32, "/x.wav", title="T", error="decode: bad",
                        duration=9.0, run_id=None)
    with sessions.begin() as session:
        row = write_tracks(session, [failed])["t1"]
        assert (row.status, row.vector, row.duration, row.error) == (FAILED, None, None,
                                                                     "decode: bad")
        vid = row.vector_id
    fixed = TrackWrite("t1", "fp", "cd" * 32, "/x.wav", title="T", vector=np.ones(4, np.float32),
                       duration=2.0, error="ignored")
    with sessions.begin() as session:
        row = write_tracks(session, [fixed])["t1"]
        assert (row.status, row.error, row.duration, row.vector_id) == (INDEXED, None, 2.0, vid)
        np.testing.assert_allclose(decode_vector(row.vector), np.ones(4))
    engine.dispose()


def _row(url: str, external_id: str) -> Track:
    engine = db.make_engine(url)
    with db.session_factory(engine)() as session:
        row = session.scalar(select(Track).where(Track.external_id == external_id))
    engine.dispose()
    return row
