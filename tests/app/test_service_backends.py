"""Catalog writes through the API on each SQL backend (SQLite file, PostgreSQL if reachable)."""

from __future__ import annotations

from app.settings import Settings
from tests.live_server import LiveServer
from tests.service_fixtures import assert_error, mixture_of


def test_crud_and_search_round_trip(service_db_url, tmp_path, synth_manifest, embedder,
                                    init_checkpoint):
    """Open API (no key): add three tracks to an empty catalog, read, search, delete, reopen."""
    settings = Settings(data_dir=tmp_path / "data", database_url=service_db_url,
                        checkpoint=init_checkpoint, refresh_seconds=0, map_refresh_seconds=0,
                        _env_file=None)
    clips = [mixture_of(synth_manifest, i) for i in (0, 4, 8)]
    with LiveServer(settings, embedder) as live, live.client() as c:
        assert c.get("/v1/tracks").json()["total"] == 0
        empty = c.get("/v1/map").json()
        assert empty["points"] == [] and empty["total"] == 0
        for tid, path in clips:
            resp = c.post("/v1/tracks", files={"file": (path.name, path.read_bytes())},
                          data={"id": tid, "artist": tid.split("_")[0], "title": tid})
            assert resp.status_code == 201, resp.text
        page = c.get("/v1/tracks", params={"limit": 2}).json()
        assert page["total"] == 3 and [t["id"] for t in page["items"]] == [clips[0][0],
                                                                           clips[1][0]]
        hits = c.post("/v1/search", files={"file": ("q.wav", clips[1][1].read_bytes())},
                      data={"k": "3"}).json()["results"]
        assert hits[0]["id"] == clips[1][0] and len(hits) == 3
        by_id = c.post("/v1/search", data={"track_id": clips[0][0]}).json()["results"]
        assert len(by_id) == 2
        assert c.delete(f"/v1/tracks/{clips[2][0]}").status_code == 204
        assert_error(c.get(f"/v1/tracks/{clips[2][0]}"), 404, "not_found")
        assert c.get(f"/v1/tracks/{clips[0][0]}/audio").content == clips[0][1].read_bytes()
        assert len(c.get("/v1/map").json()["points"]) == 2
    with LiveServer(settings, embedder) as again, again.client() as c:
        assert c.get("/readyz").json()["tracks"] == 2
        assert c.get("/v1/tracks").json()["total"] == 2
