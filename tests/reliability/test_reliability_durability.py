"""Crash safety: an acknowledged track survives `kill -9`, SQL and FAISS agree exactly after a
restart, and a damaged or half-written index file is never loaded (start-up rebuilds from SQL).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import create_engine, select

from app.settings import Settings
from index import db
from index.schema import Track
from index.vectors import MANIFEST, VectorIndex, read_index_manifest
from model.data.manifest import read_manifest as read_catalog
from tests.live_server import LiveServer
from tests.reliability.harness import (
    ServeProcess,
    assert_index_matches_sql,
    record_figures,
    sql_rows,
)
from tests.service_fixtures import copy_data_dir


def test_acknowledged_tracks_survive_kill_9(service_db_url, tmp_path, synth_manifest,
                                            embedder, init_checkpoint):
    """Three clients add tracks; the server is SIGKILLed mid-burst (no shutdown, no index
    save). After a restart every track that got its 201 is there, in SQL and in FAISS, the
    deleted one is gone, and the index on disk equals the SQL rows."""
    data_dir = tmp_path / "data"
    url = service_db_url or db.sqlite_url(data_dir)
    clips = [t.mixture.read_bytes() for t in read_catalog(synth_manifest)]
    acked: list[str] = []
    failures: list[str] = []
    answered = threading.Event()
    server = ServeProcess(data_dir, init_checkpoint, service_db_url).start()

    def writer(n: int) -> None:
        with server.client() as c:
            for i in range(100):
                tid = f"w{n}-{i}"
                try:
                    resp = c.post("/v1/tracks", files={"file": ("a.wav", clips[(n + i) % 12])},
                                  data={"id": tid, "artist": f"a{n}"})
                except httpx.TransportError:
                    return  # the server died under us: this one was never acknowledged
                if resp.status_code != 201:
                    failures.append(resp.text)
                    return
                acked.append(tid)
                if len(acked) >= 9:
                    answered.set()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    assert answered.wait(120)
    with server.client() as c:  # one delete, acknowledged before the crash
        assert c.delete(f"/v1/tracks/{acked[0]}").status_code == 204
    server.kill()
    killed_at = len(acked)
    for t in threads:
        t.join(30)
    assert not failures, failures
    deleted = acked[0]
    survivors = set(acked) - {deleted}

    again = ServeProcess(data_dir, init_checkpoint, service_db_url).start()
    try:
        with again.client() as c:
            in_sql = sql_rows(url, embedder.fingerprint)
            assert survivors <= set(in_sql) and deleted not in in_sql
            # tracks whose request was cut off may have committed; they are whole if so
            assert set(in_sql) <= set(acked) | {f"w{n}-{i}" for n in range(3) for i in range(100)}
            assert c.get("/readyz").json()["tracks"] == len(in_sql)
            assert c.get("/v1/tracks", params={"limit": 500}).json()["total"] == len(in_sql)
            hits = c.post("/v1/search", files={"file": ("q.wav", clips[0])},
                          data={"k": "100"}).json()["results"]
            assert survivors <= {h["id"] for h in hits}
            assert c.get(f"/v1/tracks/{sorted(survivors)[0]}/audio").status_code == 200
            assert c.get(f"/v1/tracks/{deleted}").status_code == 404
    finally:
        again.proc.terminate()  # graceful: the reconciled index is saved on the way out
        again.proc.communicate(timeout=60)
    count = assert_index_matches_sql(data_dir, url, embedder.fingerprint)
    record_figures(f"kill9_{'postgresql' if service_db_url else 'sqlite'}",
                   {"acknowledged_before_kill": killed_at, "acknowledged_total": len(acked),
                    "rows_after_restart": count, "acknowledged_lost": 0,
                    "deleted_resurrected": 0})


# --- damaged index files ----------------------------------------------------------------------
def _truncate_faiss(folder: Path) -> None:
    path = folder / read_index_manifest(folder).file
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage_manifest(folder: Path) -> None:
    (folder / MANIFEST).write_bytes(b'{"fingerprint": "abc", "dim": 12')


def _truncate_tags(folder: Path) -> None:
    path = folder / read_index_manifest(folder).tags
    path.write_bytes(path.read_bytes()[:40])


def _half_written_temp(folder: Path) -> None:
    """A crash during save: the temp file exists, the rename never happened (and, worst case,
    no manifest was ever written)."""
    name = read_index_manifest(folder).file
    data = (folder / name).read_bytes()
    (folder / f".index-{time.time_ns()}.faiss.tmp").write_bytes(data[: len(data) // 3])
    (folder / MANIFEST).unlink()
    (folder / name).unlink()


def _manifest_names_missing_file(folder: Path) -> None:
    (folder / read_index_manifest(folder).file).unlink()


DAMAGE = {"truncated-faiss": _truncate_faiss, "garbage-manifest": _garbage_manifest,
          "truncated-tags": _truncate_tags, "half-written-temp": _half_written_temp,
          "missing-faiss": _manifest_names_missing_file}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_index_is_rebuilt_from_sql(damage, tmp_path, seeded_dir, embedder,
                                           init_checkpoint, synth_manifest):
    data_dir = copy_data_dir(seeded_dir, tmp_path / "data")
    DAMAGE[damage](data_dir / "index")
    settings = Settings(data_dir=data_dir, checkpoint=init_checkpoint, refresh_seconds=0,
                        map_refresh_seconds=0, _env_file=None)
    clip = read_catalog(synth_manifest)[5]
    with LiveServer(settings, embedder) as live, live.client() as c:
        assert c.get("/readyz").json()["tracks"] == 12
        hits = c.post("/v1/search", files={"file": ("q.wav", clip.mixture.read_bytes())},
                      data={"k": "1"}).json()["results"]
        assert hits[0]["id"] == clip.track_id
    # start-up saved a good index over the damaged one; it equals SQL exactly
    assert assert_index_matches_sql(data_dir, db.sqlite_url(data_dir), embedder.fingerprint) == 12


def test_vectors_of_restarted_index_equal_sql(tmp_path, seeded_dir, embedder, init_checkpoint):
    """Not only the ids: each FAISS vector equals the one committed in SQL."""
    data_dir = copy_data_dir(seeded_dir, tmp_path / "data")
    index = VectorIndex.load(data_dir / "index", embedder.fingerprint)
    engine = create_engine(db.sqlite_url(data_dir))
    with engine.connect() as conn:
        rows = conn.execute(select(Track.vector_id, Track.vector)).all()
    engine.dispose()
    for vid, raw in rows:
        stored = np.frombuffer(raw, "<f4")
        assert np.allclose(index.index.reconstruct(int(vid)), stored / np.linalg.norm(stored),
                           atol=1e-6)
