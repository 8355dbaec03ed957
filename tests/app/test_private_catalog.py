"""Private catalogs: a read key covers search, listing, map and audio (health and metrics
stay open), audio links are signed and expire, and search has a per-client limit."""

from __future__ import annotations

import time

import pytest

from app.settings import Settings
from tests.live_server import LiveServer
from tests.service_fixtures import assert_error, copy_data_dir

READ, WRITE = {"X-API-Key": "read-key"}, {"X-API-Key": "write-key"}


@pytest.fixture(scope="module")
def live(tmp_path_factory, seeded_dir, embedder, init_checkpoint):
    settings = Settings(data_dir=copy_data_dir(seeded_dir, tmp_path_factory.mktemp("priv") / "d"),
                        checkpoint=init_checkpoint, api_key="write-key",
                        read_api_key="read-key", audio_url_ttl_s=2, refresh_seconds=0,
                        search_rate_limit="3 per 2 seconds", _env_file=None)
    with LiveServer(settings, embedder) as server:
        yield server


@pytest.fixture(scope="module")
def client(live):
    with live.client() as c:
        yield c


def test_reads_need_the_key_health_and_metrics_do_not(client) -> None:
    track = client.get("/v1/tracks", headers=READ).json()["items"][0]["id"]
    for method, url, kw in (("GET", "/v1/tracks", {}), ("GET", f"/v1/tracks/{track}", {}),
                            ("GET", "/v1/map", {}), ("GET", f"/v1/tracks/{track}/audio", {}),
                            ("POST", "/v1/search", {"data": {"track_id": track}})):
        assert_error(client.request(method, url, **kw), 401)
        assert_error(client.request(method, url, headers={"X-API-Key": "wrong"}, **kw), 401)
    assert client.get("/v1/map", headers=READ).status_code == 200
    assert client.get("/v1/tracks", headers=WRITE).status_code == 200  # the write key reads
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_signed_audio_links_play_without_the_key_and_expire(client) -> None:
    url = client.get("/v1/tracks", headers=READ).json()["items"][1]["audio_url"]
    assert "sig=" in url and "read-key" not in url
    played = client.get(url)
    assert played.status_code == 200 and played.content[:4] == b"RIFF"
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    assert_error(client.get(tampered), 401, "unauthorized")
    other = url.replace("/v1/tracks/", "/v1/tracks/x", 1)  # the link names one track only
    assert client.get(other).status_code in (401, 404)
    time.sleep(3.1)
    assert_error(client.get(url), 401, "link_expired")
    assert client.get(url.split("?")[0], headers=READ).status_code == 200


def test_search_limit_answers_429_then_clears(client) -> None:
    track = client.get("/v1/tracks", headers=READ).json()["items"][0]["id"]
    time.sleep(2.1)  # a fresh window for this client

    def search():
        return client.post("/v1/search", headers=READ, data={"track_id": track, "k": "3"})

    assert [search().status_code for _ in range(3)] == [200, 200, 200]
    refused = search()
    body = assert_error(refused, 429, "rate_limited")
    retry = int(refused.headers["Retry-After"])
    assert 1 <= retry <= 2 and "try again" in body["error"]["message"]
    time.sleep(retry + 0.2)
    assert search().status_code == 200
