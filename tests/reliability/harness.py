"""Helpers of the reliability tests (tests/reliability/): seed audio in many formats,
byte-level mutations for hypothesis, a `cvsm serve` subprocess that can be killed with -9, and
the figures file that docs/reliability.md quotes."""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf
from hypothesis import strategies as st
from sqlalchemy import create_engine, select

from app.settings import Settings
from index.schema import Track
from index.store import content_tag, live_rows
from index.vectors import VectorIndex
from model.audio.encode import encode
from tests.live_server import LiveServer
from tests.service_fixtures import copy_data_dir

SR = 16_000
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FIGURES = ARTIFACTS / "reliability.json"
#: Error answers the upload routes document (besides 503 back-pressure).
UPLOAD_ERRORS = {413, 415, 422}


def tone(seconds: float = 2.0, rate: int = SR, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(3 * t))).astype(np.float32)


def sf_bytes(samples: np.ndarray, rate: int, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def seed_files() -> dict[str, bytes]:
    """Small valid files of every codec we accept, plus float and multichannel WAVs."""
    x = tone()
    seeds = {f"wav-{sub.lower()}": sf_bytes(x, SR, subtype=sub)
             for sub in ("PCM_16", "PCM_U8", "PCM_24", "FLOAT")}
    seeds["wav-8ch"] = sf_bytes(np.tile(x[:, None], (1, 8)), SR)
    seeds["wav-44k-stereo"] = sf_bytes(np.tile(tone(rate=44_100)[:, None], (1, 2)), 44_100)
    for fmt in ("flac", "mp3", "ogg", "opus", "m4a"):
        seeds[fmt] = encode(x, SR, fmt)
    return seeds


#: Values worth writing over a header field (sizes, rates, channel counts).
NASTY_U32 = [0, 1, 2, 7, 8, 9, 255, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 44_100,
             1_000_000]


@st.composite
def mutated_audio(draw, seeds: dict[str, bytes]) -> tuple[str, bytes]:
    """A seed file with a few mutations: cut, byte flips and nasty integers in the header,
    inserted or appended junk. Returns (description, bytes)."""
    name = draw(st.sampled_from(sorted(seeds)))
    data = bytearray(seeds[name])
    steps = []
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["cut", "flip", "u32", "u16", "insert", "append"]))
        if op == "cut":
            pos = draw(st.integers(0, len(data)))
            data = data[:pos]
        elif op == "flip" and data:
            pos = draw(st.integers(0, min(len(data), 512) - 1))
            data[pos] = draw(st.integers(0, 255))
        elif op in ("u32", "u16") and len(data) > 8:
            pos = draw(st.integers(0, min(len(data), 96) - 4))
            value = draw(st.sampled_from(NASTY_U32) | st.integers(0, 0xFFFFFFFF))
            packed = struct.pack("<I", value) if op == "u32" else struct.pack("<H", value & 0xFFFF)
            data[pos:pos + len(packed)] = packed
        elif op == "insert":
            pos = draw(st.integers(0, len(data)))
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        else:
            data += draw(st.binary(max_size=256))
        steps.append(op)
    return f"{name}:{'+'.join(steps)}", bytes(data)


def random_audio(seeds: dict[str, bytes]):
    """Mutated seeds most of the time, pure random bytes sometimes."""
    raw = st.binary(max_size=4096).map(lambda b: ("random", b))
    return st.one_of(mutated_audio(seeds), mutated_audio(seeds), raw)


@contextmanager
def seeded_server(folder: Path, seeded_dir: Path, embedder, checkpoint: Path,
                  **overrides) -> Iterator[LiveServer]:
    """A live server over a private copy of the seeded 12-track catalog."""
    settings = Settings(data_dir=copy_data_dir(seeded_dir, folder / "data"),
                        checkpoint=checkpoint, refresh_seconds=0, map_refresh_seconds=0,
                        _env_file=None, **overrides)
    with LiveServer(settings, embedder) as live:
        yield live


def record_figures(section: str, figures: dict) -> None:
    """Merge `figures` under `section` in test-artifacts/reliability.json (read by the docs)."""
    ARTIFACTS.mkdir(exist_ok=True)
    data = json.loads(FIGURES.read_text()) if FIGURES.is_file() else {}
    data[section] = {**figures, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                             time.gmtime())}
    FIGURES.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak resident memory (VmHWM) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values) * 1000
    return {f"p{q}_ms": round(float(np.percentile(arr, q)), 1) for q in (50, 95, 99)} | {
        "max_ms": round(float(arr.max()), 1)}


class ServeProcess:
    """`cvsm serve` in a child process (so the test can SIGKILL it), on a free loopback port."""

    def __init__(self, data_dir: Path, checkpoint: Path, db_url: str = "",
                 **env: str) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "CVSM_DATA_DIR": str(data_dir),
                    "CVSM_CHECKPOINT": str(checkpoint), "CVSM_DATABASE_URL": db_url,
                    "CVSM_SEED_DEMO": "false",
                    "CVSM_REFRESH_SECONDS": "0", "CVSM_MAP_REFRESH_SECONDS": "0", **env}
        self.cwd = data_dir.parent
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> ServeProcess:
        cmd = [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port), "--no-demo"]
        self.proc = subprocess.Popen(cmd, env=self.env, cwd=self.cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cvsm serve exited: {self.proc.communicate()[0][-2000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.kill()
        raise TimeoutError("cvsm serve did not become ready")

    def kill(self) -> str:
        """SIGKILL: no shutdown hook, no index save. Returns the process output."""
        if self.proc is None:
            return ""
        self.proc.send_signal(signal.SIGKILL)
        out, _ = self.proc.communicate(timeout=30)
        return out

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)


def sql_rows(db_url: str, fingerprint: str) -> dict[str, tuple[int, int]]:
    """external id -> (vector id, content tag) of every live row."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(Track.external_id, Track.vector_id, Track.content_hash)
                                .where(live_rows(fingerprint))).all()
    finally:
        engine.dispose()
    return {eid: (vid, content_tag(h)) for eid, vid, h in rows}


def assert_index_matches_sql(data_dir: Path, db_url: str, fingerprint: str) -> int:
    """The saved FAISS index (read as is, no reconciliation) holds exactly SQL's live rows."""
    index = VectorIndex.load(data_dir / "index", fingerprint)
    assert index is not None
    want = {vid: tag for vid, tag in sql_rows(db_url, fingerprint).values()}
    assert sorted(index.ids().tolist()) == sorted(want)
    assert index.tags == want
    return len(want)


class TcpProxy:
    """A loopback TCP forwarder to `target` that can be cut (listener closed and every open
    connection reset) and restored on the same port: a database outage, seen from the service,
    without touching the shared database server."""

    def __init__(self, target: tuple[str, int]) -> None:
        import socket

        self.target = target
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._listener = None
        self._conns: list = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        import socket

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener) -> None:
        import socket

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by stop()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def stop(self) -> None:
        import socket

        if self._listener is not None:
            try:  # wakes the thread blocked in accept() (close alone would not, on Linux)
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
