"""The search service over a real uvicorn on loopback: every route and every error answer."""

from __future__ import annotations

import json
import select
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from sqlalchemy import create_engine
from sqlalchemy import select as sql_select

from app.settings import Settings
from index import db
from index.schema import Track
from tests.live_server import LiveServer
from tests.service_fixtures import assert_error, copy_data_dir, mixture_of, mp3_of, wav_bytes

KEY = "s3cret-key"
AUTH = {"X-API-Key": KEY}
ORIGIN = "http://allowed.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory, seeded_dir, embedder, init_checkpoint):
    data_dir = copy_data_dir(seeded_dir, tmp_path_factory.mktemp("api") / "data")
    settings = Settings(data_dir=data_dir, checkpoint=init_checkpoint, api_key=KEY,
                        cors_origins=[ORIGIN], max_upload_mb=2, refresh_seconds=0,
                        _env_file=None)
    with LiveServer(settings, embedder) as live:
        yield live


@pytest.fixture(scope="module")
def client(server):
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def clip(synth_manifest) -> tuple[str, bytes]:
    tid, path = mixture_of(synth_manifest, 0)
    return tid, path.read_bytes()


def search(client, data: bytes, name: str = "q.wav", **fields) -> httpx.Response:
    return client.post("/v1/search", files={"file": (name, data)},
                       data={k: str(v) for k, v in fields.items()})


# --- health, metrics, docs -------------------------------------------------------------------
def test_health_and_ready(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["tracks"] == 12 and len(ready["model"]) == 16


def test_docs_and_openapi_examples(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/search", "/v1/tracks", "/v1/tracks/{track_id}", "/v1/tracks/{track_id}/audio",
            "/v1/map", "/healthz", "/readyz"} <= set(spec["paths"])
    assert "examples" in str(spec["components"]["schemas"]["Hit"])


def test_metrics_after_traffic(client, clip):
    search(client, clip[1]).raise_for_status()
    client.get("/v1/tracks/nope")
    text = client.get("/metrics").text
    assert 'cvsm_http_requests_total{method="POST",route="/v1/search",status="200"}' in text
    assert 'route="/v1/tracks/{track_id}",status="404"' in text
    assert "cvsm_http_request_duration_seconds_bucket" in text
    assert "cvsm_index_tracks 12.0" in text or "cvsm_index_tracks 1" in text


def test_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="file"' in page.text
    assert client.get("/static/app.js").status_code == 200


# --- search ----------------------------------------------------------------------------------
def test_search_upload_ranks_the_same_track_first(client, clip):
    tid, data = clip
    body = search(client, data, k=5).json()
    assert body["query"]["duration_s"] == pytest.approx(6.0, abs=0.05)
    assert len(body["query"]["point"]) == 2
    results = body["results"]
    assert len(results) == 5 and results[0]["id"] == tid
    assert results[0]["score"] == pytest.approx(1.0, abs=1e-3)
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert {"id", "title", "artist", "metadata", "score", "audio_url"} <= set(results[0])


def test_search_mp3_filters_and_k(client, synth_manifest):
    tid, path = mixture_of(synth_manifest, 0)
    artist = tid.split("_")[0]
    body = search(client, mp3_of(path), name="q.mp3", k=100, exclude_artist=artist).json()
    assert len(body["results"]) == 9 and all(r["artist"] != artist for r in body["results"])
    top = search(client, mp3_of(path), name="q.mp3", min_score=0.999).json()["results"]
    assert all(r["score"] >= 0.999 for r in top)


def test_search_by_track_id(client, clip):
    tid = clip[0]
    body = client.post("/v1/search", data={"track_id": tid, "k": "3"}).json()
    assert body["query"]["track_id"] == tid and len(body["results"]) == 3
    assert tid not in [r["id"] for r in body["results"]]
    assert_error(client.post("/v1/search", data={"track_id": "missing"}), 404, "not_found")


@pytest.mark.parametrize("fields", [{"k": "0"}, {"k": "101"}, {"k": "ten"},
                                    {"min_score": "2"}])
def test_search_bad_parameters(client, clip, fields):
    resp = client.post("/v1/search", files={"file": ("q.wav", clip[1])}, data=fields)
    assert_error(resp, 422, "invalid_parameters")


def test_search_needs_exactly_one_query(client, clip):
    assert_error(client.post("/v1/search", data={"k": "3"}), 422, "invalid_parameters")
    both = client.post("/v1/search", files={"file": ("q.wav", clip[1])},
                       data={"track_id": clip[0]})
    assert_error(both, 422, "invalid_parameters")
    raw = client.post("/v1/search", content=b"\x00\xff" * 100,
                      headers={"Content-Type": "application/octet-stream"})
    assert_error(raw, 422)


# --- undecodable and unusable audio ----------------------------------------------------------
def test_garbage_named_mp3_is_415(client):
    garbage = np.random.default_rng(0).bytes(50_000)
    assert_error(search(client, garbage, name="song.mp3"), 415, "unsupported_format")
    assert_error(search(client, b"ID3\x03\x00" + garbage, name="song.mp3"), 415)


def test_truncated_wav_is_415(client, clip):
    assert_error(search(client, clip[1][:20_000]), 415, "corrupt_audio")


def test_empty_silent_and_short_audio_are_422(client):
    assert_error(search(client, b""), 422, "empty_audio")
    assert_error(search(client, wav_bytes(np.zeros(32_000, np.float32))), 422, "empty_audio")
    tone = 0.3 * np.sin(np.arange(3200) / 16_000 * 2 * np.pi * 220).astype(np.float32)
    assert_error(search(client, wav_bytes(tone)), 422, "too_short")


def test_query_longer_than_cap_is_422(client):
    """Declared length over the cap: refused from the header, nothing decoded (121 s > 120 s)."""
    long = np.zeros(121 * 16_000 // 8, np.float32)
    long[::50] = 0.1
    data = wav_bytes(long, rate=2_000)
    assert_error(search(client, data), 422, "too_long")


# --- upload size cap -------------------------------------------------------------------------
def _multipart_head(boundary: str) -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            "filename=\"big.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode()


def _send_big(port: int, chunked: bool, total: int = 50 * 1024 * 1024) -> tuple[int, bytes]:
    """Stream up to `total` bytes until the server answers; (bytes sent, response)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    boundary = "cvsmboundary"
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    sock.sendall(f"POST /v1/search HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; "
                 f"boundary={boundary}\r\n{framing}\r\n\r\n".encode())
    piece, sent = b"\x01" * 65_536, 0
    first = _multipart_head(boundary)
    while sent < total and not select.select([sock], [], [], 0)[0]:
        data = first + piece if sent == 0 else piece
        try:
            sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data)
        except OSError:
            break
        sent += len(data)
    response = b""
    try:
        while chunk := sock.recv(65_536):
            response += chunk
    except OSError:
        pass
    sock.close()
    return sent, response


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_50mb_upload_refused_without_reading_it(server, chunked):
    sent, response = _send_big(server.port, chunked)
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b'"code": "payload_too_large"' in response
    assert sent < 12 * 1024 * 1024, f"the client pushed {sent} bytes before the 413"


def test_upload_just_over_cap_via_http_client(client):
    resp = search(client, b"\0" * (2 * 1024 * 1024 + 10), name="big.wav")
    assert_error(resp, 413, "payload_too_large")


# --- tracks ----------------------------------------------------------------------------------
def test_list_get_and_audio(client, clip):
    page = client.get("/v1/tracks", params={"offset": 10, "limit": 5}).json()
    assert page["total"] == 12 and len(page["items"]) == 2 and page["offset"] == 10
    track = client.get(f"/v1/tracks/{clip[0]}").json()
    assert track["id"] == clip[0] and track["artist"] and track["duration_s"] == 6.0
    assert "source" not in track
    audio = client.get(track["audio_url"])
    assert audio.status_code == 200 and audio.content == clip[1]
    assert audio.headers["content-type"].startswith("audio/")
    part = client.get(track["audio_url"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == clip[1][:100]  # players can seek
    assert_error(client.get("/v1/tracks", params={"limit": 0}), 422, "invalid_parameters")


def test_unknown_tracks_are_404(client):
    assert_error(client.get("/v1/tracks/nope"), 404, "not_found")
    assert_error(client.get("/v1/tracks/nope/audio"), 404, "not_found")
    assert_error(client.delete("/v1/tracks/nope", headers=AUTH), 404, "not_found")
    assert_error(client.get("/v1/nothing-here"), 404)


def test_writes_need_the_api_key(client, clip):
    files = {"file": ("a.wav", clip[1])}
    assert_error(client.post("/v1/tracks", files=files), 401, "unauthorized")
    assert_error(client.post("/v1/tracks", files=files, headers={"X-API-Key": "wrong"}), 401)
    assert_error(client.delete(f"/v1/tracks/{clip[0]}"), 401, "unauthorized")
    assert client.get(f"/v1/tracks/{clip[0]}").status_code == 200  # reads stay public


def test_unauthenticated_write_refused_before_the_body(server):
    """A keyless 50 MB-declared POST gets its 401 at once; the body is never read."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/tracks HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data;"
                     b" boundary=b\r\nContent-Length: 1000000\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 401")


def test_add_bad_inputs(client, clip):
    bad_meta = client.post("/v1/tracks", files={"file": ("a.wav", clip[1])},
                           data={"metadata": "[1, 2]"}, headers=AUTH)
    assert_error(bad_meta, 422, "invalid_parameters")
    bad_id = client.post("/v1/tracks", files={"file": ("a.wav", clip[1])},
                         data={"id": "../etc/passwd"}, headers=AUTH)
    assert_error(bad_id, 422, "invalid_parameters")
    garbage = client.post("/v1/tracks", files={"file": ("a.mp3", b"not audio" * 100)},
                          headers=AUTH)
    assert_error(garbage, 415, "unsupported_format")
    assert client.get("/readyz").json()["tracks"] == 12


def test_add_search_delete_while_searching(client, synth_manifest):
    """Adds and deletes interleaved with a stream of searches: all succeed, none see garbage."""
    _, path = mixture_of(synth_manifest, 5)
    query = path.read_bytes()
    stop, failures, served = threading.Event(), [], []

    def searcher() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=60) as c:
            while not stop.is_set():
                r = search(c, query, k=20)
                (served if r.status_code == 200 else failures).append(r.status_code)

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(searcher) for _ in range(2)]
        added = []
        for i in range(3):
            resp = client.post("/v1/tracks", headers=AUTH,
                               files={"file": (f"new{i}.mp3", mp3_of(path))},
                               data={"id": f"added-{i}", "title": f"Added {i}", "artist": "newbie",
                                     "metadata": f'{{"take": {i}}}'})
            assert resp.status_code == 201, resp.text
            added.append(resp.json())
        stop.set()
        for f in futures:
            f.result()
    assert not failures and served
    assert added[0]["id"] == "added-0" and added[0]["metadata"] == {"take": 0}
    hits = search(client, query, k=20).json()["results"]
    assert {"added-0", "added-1", "added-2"} <= {h["id"] for h in hits}
    assert client.get("/v1/tracks/added-1/audio").status_code == 200
    assert client.delete("/v1/tracks/added-2", headers=AUTH).status_code == 204
    assert_error(client.get("/v1/tracks/added-2"), 404)
    assert "added-2" not in {h["id"] for h in search(client, query, k=20).json()["results"]}


def test_map_and_query_point(client, clip):
    body = client.get("/v1/map").json()
    assert body["total"] >= 12 and len(body["points"]) == body["total"]
    point = {p["id"]: p for p in body["points"]}[clip[0]]
    query = search(client, clip[1]).json()["query"]
    assert query["map_version"] == body["version"] >= 0
    assert query["point"] == pytest.approx([point["x"], point["y"]], abs=1e-3)


def test_cors(client):
    pre = client.options("/v1/search", headers={"Origin": ORIGIN,
                                                 "Access-Control-Request-Method": "POST"})
    assert pre.headers.get("access-control-allow-origin") == ORIGIN
    other = client.get("/healthz", headers={"Origin": "http://evil.test"})
    assert "access-control-allow-origin" not in other.headers


def test_added_track_survives_a_restart(server, client, clip, embedder):
    """Durable before the 201: a second server opened on the same files sees the new track."""
    resp = client.post("/v1/tracks", headers=AUTH, files={"file": ("d.wav", clip[1])},
                       data={"id": "durable-1", "artist": "keeper"})
    assert resp.status_code == 201
    with LiveServer(server.settings, embedder) as second, second.client() as c2:
        assert c2.get("/v1/tracks/durable-1").json()["artist"] == "keeper"
        ids = {h["id"] for h in search(c2, clip[1], k=30).json()["results"]}
        assert "durable-1" in ids


def test_uploaded_and_batch_indexed_rows_agree(server, client, clip):
    """One writer of track rows: the seeded row (written by `cvsm index`'s job) and the same
    file uploaded through POST /v1/tracks with the same title, artist and metadata agree in
    every field but the id, where the audio lives and the job's run id."""
    seeded = client.get(f"/v1/tracks/{clip[0]}").json()
    resp = client.post("/v1/tracks", headers=AUTH, files={"file": ("same.wav", clip[1])},
                       data={"id": "same-file", "title": seeded["title"],
                             "artist": seeded["artist"],
                             "metadata": json.dumps(seeded["metadata"])})
    assert resp.status_code == 201, resp.text
    engine = create_engine(db.sqlite_url(server.settings.data_dir))
    with db.session_factory(engine)() as session:
        by_job, by_api = (session.scalar(sql_select(Track).where(Track.external_id == tid))
                          for tid in (clip[0], "same-file"))
    engine.dispose()
    same = ("title", "artist", "extra", "duration", "content_hash", "status", "error",
            "model_fingerprint")
    assert {f: getattr(by_api, f) for f in same} == {f: getattr(by_job, f) for f in same}
    np.testing.assert_allclose(np.frombuffer(by_api.vector, "<f4"),
                               np.frombuffer(by_job.vector, "<f4"), atol=1e-5)
    assert by_job.run_id is not None and by_api.run_id is None
    assert by_api.source != by_job.source and by_api.vector_id != by_job.vector_id
