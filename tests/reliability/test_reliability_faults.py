"""Faults: the database unreachable at start-up or mid-request (503, readyz false, recovery
without a restart), and a data dir that cannot be written (disk full, a file where a folder
belongs): a clear 503, nothing corrupted, nothing half-written left behind.

PostgreSQL outages go through a loopback TCP proxy that the test cuts and restores (the shared
server is never touched); SQLite cannot go away mid-request short of a disk failure, so on
SQLite the start-up outage is a file where the database's folder belongs.
"""

from __future__ import annotations

import resource
import sqlite3
import time

import pytest

from app.settings import Settings
from model.data.manifest import read_manifest
from tests.live_server import LiveServer
from tests.reliability.harness import SR, TcpProxy, seeded_server, sf_bytes, tone
from tests.service_fixtures import assert_error


def wait_ready(client, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.2)
    raise TimeoutError("not ready after the fault was cleared")


def via_proxy(url: str, proxy: TcpProxy) -> str:
    return url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")


def test_database_down_at_start_then_recovers(service_db_url, tmp_path, embedder,
                                              init_checkpoint):
    proxy = TcpProxy(("127.0.0.1", 5432))
    if service_db_url:
        url = via_proxy(service_db_url, proxy)  # the proxy is not listening yet
    else:
        blocker = tmp_path / "db"
        blocker.write_text("a file where the database's folder belongs")
        url = f"sqlite:///{blocker / 'cvsm.db'}"
    settings = Settings(data_dir=tmp_path / "data", database_url=url, checkpoint=init_checkpoint,
                        refresh_seconds=0, _env_file=None)
    with LiveServer(settings, embedder, wait_ready=False) as live, live.client() as c:
        time.sleep(1.5)  # a few failed attempts
        assert c.get("/healthz").status_code == 200
        assert_error(c.get("/readyz"), 503, "not_ready")
        assert_error(c.get("/v1/tracks"), 503, "not_ready")
        assert_error(c.post("/v1/search", data={"track_id": "x"}), 503, "not_ready")
        if service_db_url:
            proxy.start()
        else:
            blocker.unlink()
        wait_ready(c)
        assert c.get("/v1/tracks").json()["total"] == 0
        clip = sf_bytes(tone(), SR)
        assert c.post("/v1/tracks", files={"file": ("a.wav", clip)},
                      data={"id": "after"}).status_code == 201
    proxy.stop()


@pytest.mark.parametrize("service_db_url", ["postgresql"], indirect=True)
def test_database_outage_mid_request(service_db_url, tmp_path, embedder, init_checkpoint,
                                     synth_manifest):
    """Connections cut while serving: every SQL-backed route answers 503 database_unavailable
    (readyz 503), the failed add leaves no trace in SQL or FAISS, and all recovers by itself."""
    proxy = TcpProxy(("127.0.0.1", 5432)).start()
    settings = Settings(data_dir=tmp_path / "data", database_url=via_proxy(service_db_url, proxy),
                        checkpoint=init_checkpoint, refresh_seconds=0, map_refresh_seconds=0,
                        _env_file=None)
    tracks = read_manifest(synth_manifest)[:3]
    with LiveServer(settings, embedder) as live, live.client() as c:
        for t in tracks[:2]:
            assert c.post("/v1/tracks", files={"file": ("m.wav", t.mixture.read_bytes())},
                          data={"id": t.track_id}).status_code == 201
        proxy.stop()
        clip = tracks[2].mixture.read_bytes()
        down = [c.get("/v1/tracks"), c.get(f"/v1/tracks/{tracks[0].track_id}"),
                c.get(f"/v1/tracks/{tracks[0].track_id}/audio"),
                c.post("/v1/search", data={"track_id": tracks[0].track_id}),
                c.post("/v1/search", files={"file": ("q.wav", clip)}),
                c.post("/v1/tracks", files={"file": ("m.wav", clip)},
                       data={"id": tracks[2].track_id}),
                c.delete(f"/v1/tracks/{tracks[1].track_id}")]
        for resp in down:
            assert_error(resp, 503, "database_unavailable")
            assert resp.headers["retry-after"] == "5"
            assert "5432" not in resp.text and "postgres" not in resp.text
        assert_error(c.get("/readyz"), 503, "not_ready")
        assert c.get("/healthz").status_code == 200
        proxy.start()
        wait_ready(c)
        assert c.get("/v1/tracks").json()["total"] == 2
        assert c.get("/readyz").json()["tracks"] == 2  # FAISS: the failed add never got in
        assert c.get(f"/v1/tracks/{tracks[2].track_id}").status_code == 404
        hits = c.post("/v1/search", files={"file": ("q.wav", clip)}).json()["results"]
        assert {h["id"] for h in hits} == {t.track_id for t in tracks[:2]}
        assert c.post("/v1/tracks", files={"file": ("m.wav", clip)},
                      data={"id": tracks[2].track_id}).status_code == 201
    proxy.stop()


def _integrity(data_dir) -> str:
    with sqlite3.connect(data_dir / "cvsm.db") as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def test_disk_full_while_storing_an_upload(tmp_path, seeded_dir, embedder, init_checkpoint):
    """The file-size limit (RLIMIT_FSIZE) stands in for a full disk: writes past 256 KB fail
    with an OSError, as they would with ENOSPC. Root ignores chmod, and no tmpfs can be
    mounted here, so this is how a failing write is produced. (The upload stays under the
    1 MB that the multipart parser keeps in memory before it spools to a temp file.)"""
    big = sf_bytes(tone(18.0), SR)  # 576 KB
    with seeded_server(tmp_path, seeded_dir, embedder, init_checkpoint) as live, \
            live.client() as c:
        audio_dir = live.settings.data_dir / "audio"
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, hard))
        try:
            resp = c.post("/v1/tracks", files={"file": ("big.wav", big)}, data={"id": "big"})
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        assert_error(resp, 503, "storage_unavailable")
        assert not any(audio_dir.glob("*")) if audio_dir.exists() else True
        assert c.get("/readyz").json()["tracks"] == 12
        assert c.get("/v1/tracks/big").status_code == 404
        assert _integrity(live.settings.data_dir) == "ok"
        assert c.post("/v1/tracks", files={"file": ("big.wav", big)},
                      data={"id": "big"}).status_code == 201
        assert c.get("/readyz").json()["tracks"] == 13


def test_file_where_the_audio_folder_belongs(tmp_path, seeded_dir, embedder, init_checkpoint):
    """An unwritable data dir (here: `audio` is a file): adds answer 503 without a path,
    reads and searches go on, and adds work again once the folder can be made."""
    with seeded_server(tmp_path, seeded_dir, embedder, init_checkpoint) as live, \
            live.client() as c:
        blocker = live.settings.data_dir / "audio"
        blocker.write_text("not a folder")
        clip = sf_bytes(tone(), SR)
        resp = c.post("/v1/tracks", files={"file": ("a.wav", clip)}, data={"id": "blocked"})
        assert_error(resp, 503, "storage_unavailable")
        assert "audio" not in resp.json()["error"]["message"]
        assert c.get("/v1/tracks").json()["total"] == 12
        assert c.post("/v1/search", data={"track_id": "singer00_song00"}).status_code == 200
        blocker.unlink()
        assert c.post("/v1/tracks", files={"file": ("a.wav", clip)},
                      data={"id": "blocked"}).status_code == 201
        assert _integrity(live.settings.data_dir) == "ok"
