"""Several models side by side in the service (issue 16): a catalog indexed by the default model
and, with `cvsm index --extra-model`'s job, by a second one; the service serves both, a search
names its model, and uploads and deletions reach both models' indexes. Real uvicorn, SQLite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.settings import Settings
from index import db
from index.job import JobConfig
from index.model_job import run_model_index
from index.repository import TrackWrite, write_tracks
from model.audio.decode import load
from model.data.manifest import read_manifest
from model.inference.embedder import Embedder
from tests.live_server import LiveServer
from tests.service_fixtures import assert_error, copy_data_dir


@pytest.fixture(scope="module")
def other(other_checkpoint: Path) -> Embedder:
    return Embedder.from_checkpoint(other_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def expected(synth_manifest: Path, other: Embedder) -> dict[str, np.ndarray]:
    """The second model's vector of every catalog track, computed here."""
    return {t.track_id: other.embed_waveform(load(t.mixture.read_bytes()))
            for t in read_manifest(synth_manifest)}


@pytest.fixture(scope="module")
def client(tmp_path_factory, seeded_dir, synth_manifest, embedder, init_checkpoint,
           other_checkpoint, other):
    data_dir = copy_data_dir(seeded_dir, tmp_path_factory.mktemp("side") / "data")
    job = JobConfig(catalog=synth_manifest, data_dir=data_dir, progress=False)
    assert run_model_index(job, other).indexed == 12
    settings = Settings(data_dir=data_dir, checkpoint=init_checkpoint, backend="torch",
                        extra_models={"b": other_checkpoint}, refresh_seconds=0,
                        _env_file=None)
    with LiveServer(settings, embedder) as live, live.client() as c:
        c.data_dir = data_dir
        yield c


def test_models_are_listed(client, embedder, other) -> None:
    models = client.get("/v1/models").json()
    assert [(m["name"], m["fingerprint"], m["count"], m["default"]) for m in models] == [
        ("default", embedder.fingerprint, 12, True), ("b", other.fingerprint, 12, False)]


def test_search_by_track_with_the_second_model(client, expected) -> None:
    query = next(iter(expected))
    body = client.post("/v1/search", data={"track_id": query, "k": 5, "model": "b"}).json()
    assert body["model"] == "b" and len(body["results"]) == 5
    want = sorted((i for i in expected if i != query),
                  key=lambda i: -float(expected[query] @ expected[i]))[:5]
    assert [h["id"] for h in body["results"]] == want
    for hit in body["results"]:
        assert hit["score"] == pytest.approx(float(expected[query] @ expected[hit["id"]]),
                                             abs=1e-4)
        assert hit["same_singer"] is None  # the calibration is the default model's
    default = client.post("/v1/search", data={"track_id": query, "k": 5}).json()
    assert default["model"] == "default"
    assert [h["score"] for h in default["results"]] != [h["score"] for h in body["results"]]


def test_search_by_upload_with_the_second_model(client, synth_manifest) -> None:
    track = read_manifest(synth_manifest)[3]
    files = {"file": ("q.wav", track.mixture.read_bytes(), "audio/wav")}
    body = client.post("/v1/search", files=files, data={"k": 3, "model": "b"}).json()
    assert body["model"] == "b" and body["query"]["point"] is None
    assert body["results"][0]["id"] == track.track_id
    assert body["results"][0]["score"] == pytest.approx(1.0, abs=1e-3)


def test_unknown_model_is_a_422(client) -> None:
    resp = client.post("/v1/search", data={"track_id": "x", "model": "nope"})
    assert "default, b" in assert_error(resp, 422, "unknown_model")["error"]["message"]


def test_added_and_deleted_tracks_reach_both_models(client, synth_manifest, other) -> None:
    track = read_manifest(synth_manifest)[5]
    data = track.mixture.read_bytes()
    added = client.post("/v1/tracks", files={"file": ("n.wav", data, "audio/wav")},
                        data={"id": "new-one", "artist": "someone"})
    assert added.status_code == 201, added.text
    found = client.post("/v1/search", data={"track_id": "new-one", "k": 1, "model": "b"}).json()
    assert found["results"][0]["id"] == track.track_id  # the same audio, by the second model
    assert found["results"][0]["score"] == pytest.approx(1.0, abs=1e-3)
    assert [m["count"] for m in client.get("/v1/models").json()] == [13, 13]
    assert client.delete("/v1/tracks/new-one").status_code == 204
    assert [m["count"] for m in client.get("/v1/models").json()] == [12, 12]
    gone = client.post("/v1/search", data={"track_id": "new-one", "model": "b"})
    assert_error(gone, 404, "not_found")


def test_a_track_the_second_model_has_not_embedded_says_so(client, embedder) -> None:
    """A row committed by the default model's job after the second model's run: searching by
    it with the second model is a 404 that names the fix, not 'no such track'."""
    engine = db.make_engine(db.sqlite_url(client.data_dir))
    with db.session_factory(engine).begin() as session:
        write_tracks(session, [TrackWrite(
            external_id="late", model_fingerprint=embedder.fingerprint, content_hash="ab" * 32,
            source="", vector=np.eye(1, embedder.dim, dtype=np.float32)[0])])
    engine.dispose()
    resp = client.post("/v1/search", data={"track_id": "late", "model": "b"})
    assert "cvsm index --extra-model" in assert_error(resp, 404, "not_embedded")["error"]["message"]
    assert client.post("/v1/search", data={"track_id": "late"}).status_code == 200
