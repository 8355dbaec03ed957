"""API replicas over one PostgreSQL (issue 15): two real `cvsm serve` processes on loopback,
each with its own in-memory FAISS index, follow the database's change feed. A track added
through replica A is found through replica B within 2 s, a deletion likewise; a replica that
was down while a track was added catches up when it starts; no answer meanwhile is a 5xx."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from index.job import JobConfig, run_index
from model.data.manifest import read_manifest
from tests.app.test_serve_command import free_port
from tests.conftest import PLAIN

FOLLOW_WITHIN_S = 2.0


class Replica:
    """`cvsm serve` in its own process, logging to a file (a pipe would fill and block it)."""

    def __init__(self, tmp: Path, name: str, db_url: str, checkpoint: Path) -> None:
        self.port, self.log = free_port(), tmp / f"{name}.log"
        self.args = [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port),
                     "--db", db_url, "--data-dir", str(tmp / name), "--checkpoint",
                     str(checkpoint), "--backend", "torch", "--device", "cpu", "--no-demo"]
        self.url, self.proc = f"http://127.0.0.1:{self.port}", None

    def start(self) -> Replica:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CVSM_")} | PLAIN
        env |= {"CVSM_REFRESH_SECONDS": "0", "CVSM_FOLLOW_SECONDS": "0.25"}  # the feed alone
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(self.args, env=env, stdout=out, stderr=out)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"replica not ready: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


def _ids(replica: Replica, track_id: str, k: int = 12) -> set[str]:
    body = httpx.post(f"{replica.url}/v1/search", data={"track_id": track_id, "k": k},
                      timeout=10).json()
    return {hit["id"] for hit in body["results"]}


def _within(check, seconds: float) -> float:
    """How long until `check()` held (AssertionError past `seconds`)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > seconds:
            raise AssertionError(f"not within {seconds} s")
        time.sleep(0.05)
    return time.monotonic() - start


class Hammer(threading.Thread):
    """Searches replica B whenever it is up (`active`: from ready until it is told to stop,
    as a load balancer's readiness check routes; nginx also retries a 503 elsewhere),
    recording every HTTP status."""

    def __init__(self, replica: Replica, track_id: str) -> None:
        super().__init__(daemon=True)
        self.replica, self.track_id = replica, track_id
        self.statuses: list[int] = []
        self.halt, self.active = threading.Event(), threading.Event()
        self.active.set()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.halt.is_set():
                if not self.active.wait(0.1):
                    continue
                try:
                    resp = client.post(f"{self.replica.url}/v1/search",
                                       data={"track_id": self.track_id, "k": 5})
                    self.statuses.append(resp.status_code)
                except httpx.TransportError:
                    time.sleep(0.1)


@pytest.mark.timeout(300)
def test_two_replicas_follow_one_database(tmp_path, pg_schema, synth_manifest, embedder,
                                          init_checkpoint) -> None:
    db_url = pg_schema()
    run_index(JobConfig(catalog=synth_manifest, data_dir=tmp_path / "job", db_url=db_url,
                        progress=False), embedder)
    tracks = read_manifest(synth_manifest)
    probe = tracks[0].track_id  # searched by: the added copies of its audio rank first
    audio = tracks[0].mixture.read_bytes()
    a = Replica(tmp_path, "a", db_url, init_checkpoint).start()
    b = Replica(tmp_path, "b", db_url, init_checkpoint).start()
    hammer = Hammer(b, probe)
    hammer.start()
    try:
        added = httpx.post(f"{a.url}/v1/tracks", files={"file": ("x.wav", audio, "audio/wav")},
                           data={"id": "via-a"}, timeout=30)
        assert added.status_code == 201, added.text
        seen = _within(lambda: "via-a" in _ids(b, probe), FOLLOW_WITHIN_S)
        assert httpx.delete(f"{a.url}/v1/tracks/via-a", timeout=10).status_code == 204
        gone = _within(lambda: "via-a" not in _ids(b, probe), FOLLOW_WITHIN_S)
        print(f"added on A, found on B after {seen:.2f} s; deleted, gone after {gone:.2f} s")

        hammer.active.clear()
        time.sleep(0.5)  # the search in flight, if any, completes
        b.stop()  # a replica that is down while the catalog changes catches up on start
        down = httpx.post(f"{a.url}/v1/tracks", data={"id": "while-down"}, timeout=30,
                          files={"file": ("y.wav", audio, "audio/wav")})
        assert down.status_code == 201, down.text
        b.start()
        hammer.active.set()
        assert "while-down" in _ids(b, probe)
        _within(lambda: "while-down" in _ids(a, probe), FOLLOW_WITHIN_S)
    finally:
        hammer.halt.set()
        hammer.join(timeout=15)
        a.stop()
        b.stop()
    assert hammer.statuses and all(s < 500 for s in hammer.statuses), \
        sorted(set(hammer.statuses))
