"""Load test of `POST /v1/search` over loopback: p50/p95/p99 latency and throughput.

    python benchmarks/service_load.py                       # 10^4 and 10^5 tracks, full grid
    python benchmarks/service_load.py --sizes 10000 --duration 5 --clients 1,4

For each catalog size, random unit vectors are inserted directly as indexed catalog rows (SQL),
then a real `cvsm serve` subprocess opens the catalog (building the FAISS index the size calls
for) and the load runs: every (upload length, concurrent clients) cell for `--duration` seconds
of closed-loop clients (each sends its next request when the last one returns), after a warm-up.
The server's embedding queue is set to --queue (default 32, above the largest client count, so
the grid measures queueing latency); a 503 would be counted and retried after 200 ms. The clip
is an MP3 of synthetic singing (decode + embed + search: the whole query path). Data dirs are
cached in --work.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import insert

from app.bootstrap import untrained_checkpoint
from index import db
from index.schema import INDEXED, Track
from model import checkpoint as ckpt_io
from model.audio.encode import encode
from model.data.synth import accompany, make_singer, make_song, sing
from model.facts import EMBED_DIM
from model.weights import default_checkpoint

ROWS_PER_INSERT = 5_000


def model_file(work: Path) -> Path:
    try:
        return default_checkpoint()
    except FileNotFoundError:
        return untrained_checkpoint(work)  # same network, same inference cost


def fill_catalog(data_dir: Path, n: int, fingerprint: str, seed: int = 0) -> None:
    """`n` random unit vectors as indexed rows of model `fingerprint` (skipped if present)."""
    marker = data_dir / f".filled-{n}-{fingerprint}"
    if marker.is_file():
        return
    url = db.sqlite_url(data_dir)
    db.migrate(url)
    engine = db.make_engine(url)
    rng = np.random.default_rng(seed)
    with engine.begin() as conn:
        for start in range(0, n, ROWS_PER_INSERT):
            count = min(ROWS_PER_INSERT, n - start)
            vecs = rng.standard_normal((count, EMBED_DIM), dtype=np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            conn.execute(insert(Track), [_row(start + i, v, fingerprint)
                                         for i, v in enumerate(vecs)])
    engine.dispose()
    marker.touch()


def _row(i: int, vector: np.ndarray, fingerprint: str) -> dict:
    tid = f"bench-{i:07d}"
    return {"external_id": tid, "title": f"Track {i}", "artist": f"artist{i % 5000:04d}",
            "extra": {}, "source": "", "duration": 180.0, "status": INDEXED,
            "content_hash": hashlib.sha256(tid.encode()).hexdigest(),
            "vector_id": db.vector_id_for(tid), "vector": vector.astype("<f4").tobytes(),
            "model_fingerprint": fingerprint}


def clip(seconds: float) -> bytes:
    """An MP3 of one synthetic singer over accompaniment, as a typical music file: 44.1 kHz
    stereo at 128 kbit/s (the server decodes, resamples to 16 kHz and downmixes)."""
    voice, song = make_singer(0, 1), make_song(0, 1)
    vocals, _ = sing(voice, song, seconds, 1)
    return encode(vocals + accompany(song, seconds, 1), 16_000, "mp3", bit_rate=128_000,
                  channels=2, out_rate=44_100)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, model: Path, port: int, log: Path,
                 queue: int, backend: str = "auto") -> subprocess.Popen:
    env = {**os.environ, "CVSM_CHECKPOINT": str(model), "CVSM_REFRESH_SECONDS": "0",
           "CVSM_EMBED_QUEUE": str(queue), "CVSM_BACKEND": backend}
    cmd = [sys.executable, "-m", "app.cli", "serve", "--no-demo", "--data-dir", str(data_dir),
           "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                # steady state: the embedding map (a one-off read of 2000 vectors) is built
                httpx.get(f"http://127.0.0.1:{port}/v1/map", timeout=600).raise_for_status()
                return proc
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise TimeoutError("server not ready")


async def _client(http: httpx.AsyncClient, data: bytes, until: float, lat: list[float],
                  rejected: list[int]) -> None:
    while time.perf_counter() < until:
        t0 = time.perf_counter()
        resp = await http.post("/v1/search", files={"file": ("q.mp3", data)},
                               data={"k": "10"})
        if resp.status_code == 503:
            rejected.append(1)
            await asyncio.sleep(0.2)
            continue
        resp.raise_for_status()
        lat.append(time.perf_counter() - t0)


async def run_cell(url: str, data: bytes, clients: int, duration: float) -> dict:
    limits = httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        (await http.post("/v1/search", files={"file": ("q.mp3", data)})).raise_for_status()
        lat: list[float] = []
        rejected: list[int] = []
        start = time.perf_counter()
        until = start + duration
        await asyncio.gather(*(_client(http, data, until, lat, rejected) for _ in range(clients)))
        wall = time.perf_counter() - start
    ms = np.array(lat) * 1000
    return {"clients": clients, "requests": len(lat), "rejected_503": len(rejected),
            "throughput_rps": round(len(lat) / wall, 2),
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--seconds", default="10,30", help="upload lengths")
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per cell")
    ap.add_argument("--queue", type=int, default=32, help="CVSM_EMBED_QUEUE of the server")
    ap.add_argument("--work", type=Path, default=Path("/tmp/cvsm-bench"))
    ap.add_argument("--backend", default="auto", help="CVSM_BACKEND of the server")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args()
    model = model_file(args.work)
    fingerprint = ckpt_io.load(model)["fingerprint"]
    clips = {float(s): clip(float(s)) for s in args.seconds.split(",")}
    results = []
    for n in map(int, args.sizes.split(",")):
        data_dir = args.work / f"catalog-{n}"
        t0 = time.perf_counter()
        fill_catalog(data_dir, n, fingerprint)
        port = free_port()
        proc = start_server(data_dir, model, port, args.work / f"server-{n}.log", args.queue,
                            args.backend)
        ready_s = time.perf_counter() - t0
        print(f"# {n} tracks: ready after {ready_s:.0f} s (fill + open); load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        try:
            for seconds, data in clips.items():
                for c in map(int, args.clients.split(",")):
                    cell = asyncio.run(run_cell(f"http://127.0.0.1:{port}", data, c,
                                                args.duration))
                    cell = {"tracks": n, "upload_s": seconds, "upload_kb": len(data) // 1024,
                            **cell}
                    results.append(cell)
                    print(json.dumps(cell), flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        print(f"# load average after: {os.getloadavg()[0]:.1f}", flush=True)
    print_table(results)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


def print_table(results: list[dict]) -> None:
    print("| tracks | upload | clients | req/s | p50 ms | p95 ms | p99 ms | requests | 503s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['tracks']:,} | {r['upload_s']:g} s | {r['clients']} | "
              f"{r['throughput_rps']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | "
              f"{r['requests']} | {r['rejected_503']} |")


if __name__ == "__main__":
    main()
