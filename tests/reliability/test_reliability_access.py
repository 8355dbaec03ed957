"""Access control: the API key on writes, audio served only from registered files (no path
traversal, no symlink escape), parameterised SQL (classic injection payloads are inert), upload
size and duration caps, and error bodies without stack traces or file-system paths."""

from __future__ import annotations

import hashlib
import http.client
import os
from pathlib import Path

import pytest

from app.settings import Settings
from model.data.manifest import read_manifest
from tests.live_server import LiveServer
from tests.reliability.harness import SR, record_figures, seeded_server, sf_bytes, tone
from tests.service_fixtures import LEAKS, assert_error

KEY = "k3y-for-reliability"
AUTH = {"X-API-Key": KEY}
SECRET = "root:x:0:0"  # what /etc/passwd starts with
INJECTIONS = ["' OR '1'='1", "x'; DROP TABLE tracks; --", "1 UNION SELECT external_id FROM tracks",
              "\" OR \"\"=\"", "%' OR 1=1 --", "singer00_song00' --", "'; DELETE FROM tracks; --",
              "${jndi:ldap://x}", "\\x00'", "admin'/*"]
TRAVERSALS = ["../../etc/passwd", "..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
              "%252e%252e%252fetc%252fpasswd", "..%5c..%5cetc%5cpasswd", "....//....//etc/passwd",
              "%2fetc%2fpasswd", "/etc/passwd", "..%00/etc/passwd", "%c0%ae%c0%ae/etc/passwd",
              "singer00_song00%2f..%2f..%2f..%2fetc%2fpasswd", "."]


@pytest.fixture(scope="module")
def live(tmp_path_factory, seeded_dir, embedder, init_checkpoint):
    with seeded_server(tmp_path_factory.mktemp("access"), seeded_dir, embedder, init_checkpoint,
                       api_key=KEY, max_upload_mb=1, max_query_seconds=5,
                       max_track_seconds=8) as server:
        yield server


@pytest.fixture(scope="module")
def client(live):
    with live.client() as c:
        yield c


def raw_get(live, path: str) -> tuple[int, bytes]:
    """GET with the path sent byte for byte (httpx would normalise `..`)."""
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def no_leak(body: bytes | str) -> None:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    for leak in (*LEAKS, SECRET):
        assert leak not in text, text


# --- API key ----------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": ""}, {"X-API-Key": "wrong"},
                                     {"X-API-Key": KEY.upper()}, {"X-API-Key": KEY[:-1]},
                                     {"Authorization": f"Bearer {KEY}"}],
                         ids=["none", "empty", "wrong", "other-case", "prefix", "bearer"])
@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/tracks"), ("POST", "/v1/tracks/"),
                                              ("DELETE", "/v1/tracks/singer00_song00"),
                                              ("DELETE", "/v1/tracks/singer00_song00/")])
def test_writes_need_the_key(client, headers, method, path):
    files = {"file": ("a.wav", sf_bytes(tone(), SR))} if method == "POST" else None
    resp = client.request(method, path, headers=headers, files=files)
    assert resp.status_code in (401, 404, 405), resp.text
    assert resp.status_code != 404 or "singer00" not in path or path.endswith("/")
    no_leak(resp.text)
    assert client.get("/v1/tracks/singer00_song00").status_code == 200


def test_reads_stay_public_and_key_works(client):
    assert client.get("/v1/tracks").status_code == 200
    assert client.post("/v1/search", data={"track_id": "singer01_song00"}).status_code == 200
    resp = client.post("/v1/tracks", headers=AUTH, files={"file": ("a.wav", sf_bytes(tone(), SR))},
                       data={"id": "keyed"})
    assert resp.status_code == 201, resp.text
    assert client.delete("/v1/tracks/keyed", headers=AUTH).status_code == 204


# --- audio files ------------------------------------------------------------------------------
@pytest.mark.parametrize("evil", TRAVERSALS)
def test_audio_path_traversal_is_404(live, evil):
    status, body = raw_get(live, f"/v1/tracks/{evil}/audio")
    assert status in (400, 404), (status, body[:200])
    no_leak(body)
    status, body = raw_get(live, f"/v1/tracks/{evil}")
    assert status in (400, 404) and SECRET.encode() not in body


def test_audio_serves_the_registered_file(client, synth_manifest):
    track = read_manifest(synth_manifest)[3]
    resp = client.get(f"/v1/tracks/{track.track_id}/audio")
    assert resp.status_code == 200 and resp.content == track.mixture.read_bytes()


def test_symlink_planted_in_data_dir_is_not_followed(client, live, tmp_path):
    """A link planted where an upload will be stored (content address known in advance) is
    replaced by the upload, and a link swapped in after the upload is refused (404)."""
    outside = tmp_path / "secret.txt"
    outside.write_text(SECRET + " top secret\n")
    data = sf_bytes(tone(seconds=2.5), SR)
    audio_dir = Path(live.settings.data_dir) / "audio"
    audio_dir.mkdir(exist_ok=True)
    planted = audio_dir / f"{hashlib.sha256(data).hexdigest()}.wav"
    planted.unlink(missing_ok=True)
    os.symlink(outside, planted)
    resp = client.post("/v1/tracks", headers=AUTH, files={"file": ("take.wav", data)},
                       data={"id": "linked"})
    assert resp.status_code == 201, resp.text
    served = client.get("/v1/tracks/linked/audio")
    assert served.status_code == 200 and served.content == data
    assert not planted.is_symlink()
    # swapped for a link after the fact: refused
    planted.unlink()
    os.symlink(outside, planted)
    assert_error(client.get("/v1/tracks/linked/audio"), 404, "audio_unavailable")
    assert client.delete("/v1/tracks/linked", headers=AUTH).status_code == 204
    assert outside.read_text().startswith(SECRET)  # deleting the track left the target alone


def test_upload_filename_never_becomes_a_path(client, live):
    data = sf_bytes(tone(seconds=2.2), SR)
    for name in ("../../../../tmp/evil.wav", "/etc/cron.d/x.wav", "..\\..\\x.wav", "a\x00b.wav"):
        resp = client.post("/v1/tracks", headers=AUTH, files={"file": (name, data)},
                           data={"id": "named"})
        assert resp.status_code == 201, resp.text
    stored = list((Path(live.settings.data_dir) / "audio").iterdir())
    assert all(p.parent.name == "audio" and p.name[:64].isalnum() for p in stored
               if not p.name.startswith(".")), stored
    assert not Path("/tmp/evil.wav").exists()
    assert client.delete("/v1/tracks/named", headers=AUTH).status_code == 204


# --- SQL injection ----------------------------------------------------------------------------
def inject(client, anchor: str) -> int:
    """Every payload through every SQL-backed input; `anchor` is a catalog track id. Returns
    the number of probes; asserts nothing changed and payloads round-trip as plain data."""
    total = client.get("/v1/tracks").json()["total"]
    base = client.post("/v1/search", data={"track_id": anchor, "k": "5"}).json()
    probes = 0
    for payload in INJECTIONS:
        for resp in (client.get(f"/v1/tracks/{payload}"),
                     client.delete(f"/v1/tracks/{payload}", headers=AUTH),
                     client.post("/v1/search", data={"track_id": payload})):
            assert_error(resp, 404, "not_found")
            probes += 1
        resp = client.post("/v1/search", data={"track_id": anchor, "k": "5",
                                                "exclude_artist": payload})
        assert resp.status_code == 200 and resp.json()["results"] == base["results"]
        resp = client.post("/v1/tracks", headers=AUTH, files={"file": ("a.wav", b"x")},
                           data={"id": payload})
        assert_error(resp, 422, "invalid_parameters")
        probes += 2
    meta = '{"note": "' + "'; DROP TABLE tracks; --" + '", "x": "\\" OR 1=1"}'
    resp = client.post("/v1/tracks", headers=AUTH, data={"id": "meta-inj", "title": INJECTIONS[1],
                                                         "artist": INJECTIONS[0], "metadata": meta},
                       files={"file": ("a.wav", sf_bytes(tone(seconds=2.1), SR))})
    assert resp.status_code == 201, resp.text
    back = client.get("/v1/tracks/meta-inj").json()
    assert back["metadata"]["note"] == "'; DROP TABLE tracks; --"
    assert back["title"] == INJECTIONS[1] and back["artist"] == INJECTIONS[0]
    hits = client.post("/v1/search", data={"track_id": anchor, "k": "100",
                                           "exclude_artist": INJECTIONS[0]}).json()["results"]
    assert "meta-inj" not in {h["id"] for h in hits}  # compared as a plain string
    assert client.delete("/v1/tracks/meta-inj", headers=AUTH).status_code == 204
    assert client.get("/v1/tracks").json()["total"] == total
    return probes + 4


def test_sql_injection_payloads_are_inert(client):
    probes = inject(client, "singer00_song00")
    record_figures("sql_injection", {"payloads": len(INJECTIONS), "probes": probes,
                                     "rows_changed": 0})


@pytest.mark.parametrize("service_db_url", ["postgresql"], indirect=True)
def test_sql_injection_on_postgresql(service_db_url, tmp_path, embedder, init_checkpoint,
                                     synth_manifest):
    settings = Settings(data_dir=tmp_path / "data", database_url=service_db_url, api_key=KEY,
                        checkpoint=init_checkpoint, refresh_seconds=0, _env_file=None)
    with LiveServer(settings, embedder) as live, live.client() as c:
        for t in read_manifest(synth_manifest)[:3]:
            assert c.post("/v1/tracks", headers=AUTH, data={"id": t.track_id},
                          files={"file": ("m.wav", t.mixture.read_bytes())}).status_code == 201
        inject(c, read_manifest(synth_manifest)[0].track_id)


# --- size and duration caps -------------------------------------------------------------------
def test_size_and_duration_caps(client):
    assert client.post("/v1/search", files={"file": ("q.wav", sf_bytes(tone(4.0), SR))}
                       ).status_code == 200
    assert_error(client.post("/v1/search", files={"file": ("q.wav", sf_bytes(tone(6.0), SR))}),
                 422, "too_long")
    assert_error(client.post("/v1/tracks", headers=AUTH, data={"id": "long"},
                             files={"file": ("t.wav", sf_bytes(tone(10.0), SR))}), 422, "too_long")
    assert_error(client.post("/v1/search", files={"file": ("q.wav", sf_bytes(tone(0.3), SR))}),
                 422, "too_short")
    big = sf_bytes(tone(40.0), SR)  # 1.3 MB > 1 MB
    assert_error(client.post("/v1/search", files={"file": ("q.wav", big)}), 413,
                 "payload_too_large")
    assert_error(client.post("/v1/tracks", headers=AUTH, files={"file": ("q.wav", big)}), 413,
                 "payload_too_large")


# --- error bodies -----------------------------------------------------------------------------
ERROR_CASES = [
    ("GET", "/nope", {}, 404), ("GET", "/v1/tracks/none-such", {}, 404),
    ("GET", "/v1/tracks/none-such/audio", {}, 404), ("PUT", "/v1/tracks", {}, 401),
    ("PATCH", "/v1/map", {}, 405),
    ("GET", "/v1/tracks?limit=0", {}, 422), ("GET", "/v1/tracks?offset=-1", {}, 422),
    ("GET", "/v1/tracks?limit=abc", {}, 422),
    ("GET", "/v1/tracks?offset=9223372036854775808", {}, 422),
    ("POST", "/v1/search", {"data": {"k": "5"}}, 422),
    ("POST", "/v1/search", {"data": {"track_id": "x", "k": "1e9"}}, 422),
    ("POST", "/v1/search", {"data": {"track_id": "x", "min_score": "nan"}}, 422),
    ("POST", "/v1/search", {"files": {"file": ("a.wav", b"RIFF0000WAVEjunk")}}, 415),
    ("POST", "/v1/search", {"files": {"file": ("a.mp3", os.urandom(3000))}}, 415),
    ("POST", "/v1/search", {"content": b"--x\r\nbroken", "headers": {
        "Content-Type": "multipart/form-data; boundary=x"}}, 422),
    ("POST", "/v1/search", {"content": b"{}", "headers": {"Content-Type": "application/json"}},
     422),
    ("POST", "/v1/tracks", {"headers": AUTH, "data": {"metadata": "[1]"},
                            "files": {"file": ("a.wav", b"x")}}, 422),
    ("POST", "/v1/tracks", {"headers": AUTH, "data": {"metadata": "{bad json"},
                            "files": {"file": ("a.wav", b"x")}}, 422),
    ("POST", "/v1/tracks", {"headers": AUTH, "data": {"title": "t" * 600},
                            "files": {"file": ("a.wav", b"x")}}, 422),
    ("POST", "/v1/tracks", {"headers": AUTH}, 422),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), ERROR_CASES,
                         ids=[f"{m} {p} {s}" for m, p, _, s in ERROR_CASES])
def test_error_bodies_leak_nothing(client, method, path, kwargs, status):
    resp = client.request(method, path, **kwargs)
    body = assert_error(resp, status)
    no_leak(resp.text)
    assert str(Path.cwd()) not in resp.text and "site-packages" not in resp.text
    assert body["error"]["message"]
