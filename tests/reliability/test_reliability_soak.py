"""Concurrency soak on loopback: several clients search (by upload and by id), add, delete and
read at once. Zero 5xx besides the documented 503 `busy` back-pressure (counted apart), no lost
or duplicated track (SQL, the API listing and FAISS all equal the acknowledged history), and
latency per operation recorded. CI runs ~20 s on each backend; `-m slow` runs 3 minutes."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict

import httpx
import pytest
import soundfile as sf

from app.settings import Settings
from index import db
from model.data.manifest import read_manifest
from tests.live_server import LiveServer
from tests.reliability.harness import (
    assert_index_matches_sql,
    percentiles,
    record_figures,
    sql_rows,
)
from tests.service_fixtures import copy_data_dir, wav_bytes


class Soak:
    """Shared tallies of the client threads."""

    def __init__(self, seeded: set[str]) -> None:
        self.lock = threading.Lock()
        self.statuses: Counter[str] = Counter()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.present = set(seeded)  # acknowledged adds minus acknowledged deletes
        self.errors: list[str] = []

    def note(self, op: str, resp: httpx.Response | None, seconds: float,
             ok: tuple[int, ...]) -> bool:
        with self.lock:
            if resp is None:
                self.errors.append(f"{op}: transport error")
                return False
            self.statuses[f"{op} {resp.status_code}"] += 1
            if resp.status_code == 503 and resp.json()["error"]["code"] == "busy":
                return False  # documented back-pressure: refused before any work, retried later
            self.latency[op].append(seconds)
            if resp.status_code not in ok:
                self.errors.append(f"{op} {resp.status_code}: {resp.text[:200]}")
                return False
            return True


def _timed(client: httpx.Client, method: str, path: str, **kw):
    start = time.monotonic()
    try:
        resp = client.request(method, path, **kw)
    except httpx.TransportError:
        resp = None
    elapsed = time.monotonic() - start
    if resp is not None and resp.status_code == 503:
        time.sleep(random.uniform(0.1, 0.4))  # a polite client backs off (Retry-After: 1)
    return resp, elapsed


def _searcher(live, soak: Soak, clips: list[bytes], ids: list[str], until: float, seed: int):
    rng = random.Random(seed)
    with live.client() as c:
        while time.monotonic() < until:
            if rng.random() < 0.5:
                resp, dt = _timed(c, "POST", "/v1/search", data={"k": str(rng.randint(1, 20))},
                                  files={"file": ("q.wav", rng.choice(clips))})
                soak.note("search-upload", resp, dt, (200,))
            else:
                resp, dt = _timed(c, "POST", "/v1/search",
                                  data={"track_id": rng.choice(ids), "exclude_artist": "singer01"})
                soak.note("search-id", resp, dt, (200,))


def _writer(live, soak: Soak, clips: list[bytes], until: float, n: int):
    rng = random.Random(100 + n)
    mine: list[str] = []
    with live.client() as c:
        i = 0
        while time.monotonic() < until:
            if mine and rng.random() < 0.35:
                tid = mine.pop(rng.randrange(len(mine)))
                resp, dt = _timed(c, "DELETE", f"/v1/tracks/{tid}")
                if soak.note("delete", resp, dt, (204,)):
                    with soak.lock:
                        soak.present.discard(tid)
                continue
            tid, i = f"soak{n}-{i}", i + 1
            resp, dt = _timed(c, "POST", "/v1/tracks", files={"file": ("t.wav", rng.choice(clips))},
                              data={"id": tid, "artist": f"soak{n}", "metadata": '{"n": 1}'})
            if soak.note("add", resp, dt, (201,)):
                mine.append(tid)
                with soak.lock:
                    soak.present.add(tid)


def _reader(live, soak: Soak, ids: list[str], until: float):
    rng = random.Random(7)
    with live.client() as c:
        while time.monotonic() < until:
            op = rng.choice(["list", "get", "audio", "map"])
            path = {"list": "/v1/tracks?limit=100", "get": f"/v1/tracks/{rng.choice(ids)}",
                    "audio": f"/v1/tracks/{rng.choice(ids)}/audio", "map": "/v1/map"}[op]
            resp, dt = _timed(c, "GET", path)
            soak.note(op, resp, dt, (200,))
            time.sleep(0.02)


def run_soak(live, synth_manifest, seconds: float) -> dict:
    tracks = read_manifest(synth_manifest)
    ids = [t.track_id for t in tracks]
    clips = [t.mixture.read_bytes() for t in tracks]
    # 2 s queries keep the shared CPU for everyone
    short = [wav_bytes(sf.read(t.mixture, dtype="float32")[0][:2 * 16_000]) for t in tracks[:4]]
    soak = Soak(set(ids))
    until = time.monotonic() + seconds
    workers = [threading.Thread(target=_searcher, args=(live, soak, short, ids, until, s))
               for s in range(2)]
    workers += [threading.Thread(target=_writer, args=(live, soak, clips, until, n))
                for n in range(2)]
    workers.append(threading.Thread(target=_reader, args=(live, soak, ids, until)))
    started = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join(seconds + 120)
    elapsed = time.monotonic() - started
    return {"soak": soak, "elapsed": elapsed}


@pytest.mark.parametrize("seconds", [pytest.param(20, id="ci"),
                                     pytest.param(180, id="long", marks=pytest.mark.slow)])
def test_soak(seconds, service_db_url, tmp_path, synth_manifest, seeded_dir, embedder,
              init_checkpoint):
    data_dir = tmp_path / "data"
    if not service_db_url:  # SQLite: start from the seeded 12-track catalog
        copy_data_dir(seeded_dir, data_dir)
    settings = Settings(data_dir=data_dir, database_url=service_db_url,
                        checkpoint=init_checkpoint, embed_workers=1, embed_queue=2,
                        refresh_seconds=0, map_refresh_seconds=2, _env_file=None)
    url = service_db_url or db.sqlite_url(data_dir)
    with LiveServer(settings, embedder) as live, live.client() as c:
        if service_db_url:  # PostgreSQL: seed the same 12 tracks through the API
            for t in read_manifest(synth_manifest):
                resp = c.post("/v1/tracks", files={"file": ("m.wav", t.mixture.read_bytes())},
                              data={"id": t.track_id, "artist": t.track_id.split("_")[0]})
                assert resp.status_code == 201, resp.text
        result = run_soak(live, synth_manifest, seconds)
        soak: Soak = result["soak"]
        assert not soak.errors, soak.errors[:10]
        fivexx = {k: n for k, n in soak.statuses.items() if k.split()[-1].startswith("5")}
        busy = sum(fivexx.values())  # every 5xx seen was a 503 busy (else it is in errors)
        listing = []
        for offset in range(0, 10_000, 500):
            page = c.get("/v1/tracks", params={"offset": offset, "limit": 500}).json()["items"]
            listing += [t["id"] for t in page]
            if len(page) < 500:
                break
        assert len(listing) == len(set(listing)), "duplicated track ids in the listing"
        assert set(listing) == soak.present
        assert set(sql_rows(url, embedder.fingerprint)) == soak.present
        assert c.get("/readyz").json()["tracks"] == len(soak.present)
        live.app.state.service.catalog.save()
        assert assert_index_matches_sql(data_dir, url, embedder.fingerprint) == len(soak.present)
    requests = sum(soak.statuses.values())
    backend = "postgresql" if service_db_url else "sqlite"
    record_figures(f"soak_{backend}_{seconds}s", {
        "seconds": round(result["elapsed"], 1), "clients": 5, "requests": requests,
        "statuses": dict(sorted(soak.statuses.items())), "http_5xx_other_than_busy": 0,
        "busy_503": busy, "tracks_final": len(soak.present), "tracks_lost": 0,
        "tracks_duplicated": 0,
        "latency": {op: percentiles(v) for op, v in sorted(soak.latency.items())}})
    assert requests > seconds  # it did real work
