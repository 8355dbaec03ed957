"""The study API on a live service (issue 16): results match the numbers of
index/study_results.py for votes stored in the service's own database; a participant walks
through every trial, voting once each (a second vote is 409, the stored winner is the model
that was on the left when "left" was chosen); unknown studies and trials are 404, bad choices
422, votes without the participant cookie 400; the read key is required on a private catalog."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.settings import Settings
from index import db, studies
from index.schema import StudyVote
from index.studies import TrialSpec
from index.uploads import UploadStore, content_digest
from model.data.manifest import read_manifest
from tests.live_server import LiveServer
from tests.service_fixtures import assert_error, copy_data_dir

READ = {"X-API-Key": "read-key"}


@pytest.fixture(scope="module")
def live(tmp_path_factory, seeded_dir, embedder, init_checkpoint):
    data_dir = copy_data_dir(seeded_dir, tmp_path_factory.mktemp("study") / "d")
    settings = Settings(data_dir=data_dir, checkpoint=init_checkpoint, api_key="write-key",
                        read_api_key="read-key", refresh_seconds=0, _env_file=None)
    with LiveServer(settings, embedder) as server:
        engine = db.make_engine(db.sqlite_url(data_dir))
        sessions = db.session_factory(engine)
        models = ["m1", "m2", "m3"]
        pairs = [("m1", "m2"), ("m1", "m3"), ("m2", "m3")]
        trials = [TrialSpec(f"q{i}", a, b, f"x{i}", f"y{i}") for i in range(4) for a, b in pairs]
        studies.create_study(sessions, "abx", models, trials)
        for n, trial in enumerate(trials, start=1):  # model a always wins; one tie on m2-m3
            outcome = "tie" if (trial.model_a, n) == ("m2", 3) else "a"
            studies.record_vote(sessions, n, f"p{n % 2}", outcome)
        engine.dispose()
        yield server


def test_results_report_pairs_and_ranking(live) -> None:
    with live.client() as client:
        body = client.get("/v1/studies/abx/results", headers=READ).json()
    assert body["models"] == ["m1", "m2", "m3"] and body["votes"] == 12
    assert body["participants"] == 2
    by_pair = {(p["first"], p["second"]): p for p in body["pairs"]}
    m1m2 = by_pair[("m1", "m2")]
    assert (m1m2["first_wins"], m1m2["second_wins"], m1m2["ties"]) == (4, 0, 0)
    assert m1m2["win_rate"] == 1.0 and 0.4 < m1m2["ci_low"] < 0.6
    assert [r["model"] for r in body["ranking"]] == ["m1", "m2", "m3"]


def test_unknown_study_and_missing_key(live) -> None:
    with live.client() as client:
        assert_error(client.get("/v1/studies/nope/results", headers=READ), 404, "not_found")
        assert_error(client.get("/v1/studies/abx/results"), 401, "unauthorized")


def test_a_participant_votes_through_the_study_once_per_trial(live, tmp_path) -> None:
    with live.client() as client:
        client.headers.update(READ)
        first = client.get("/v1/studies/abx/next").json()
        assert first["done"] == 0 and first["total"] == 12 and len(first["candidates"]) == 2
        me = client.cookies.get("cvsm_participant")
        assert me and first["query_audio_url"].startswith("/v1/tracks/q")
        answers = 0
        trial = first
        while trial is not None:
            ok = client.post("/v1/studies/abx/votes",
                             data={"trial_id": trial["trial_id"], "choice": "left"})
            assert ok.status_code == 201 and ok.json()["done"] == answers + 1
            again = client.post("/v1/studies/abx/votes",
                                data={"trial_id": trial["trial_id"], "choice": "right"})
            assert_error(again, 409, "already_voted")
            answers += 1
            trial = client.get("/v1/studies/abx/next").json()
        assert answers == 12
        body = client.get("/v1/studies/abx/results").json()
    assert body["votes"] == 24 and body["participants"] == 3
    engine = db.make_engine(db.sqlite_url(live.settings.data_dir))
    with db.session_factory(engine)() as session:
        mine = list(session.scalars(select(StudyVote).where(StudyVote.participant == me)))
    engine.dispose()
    # "left" was always chosen: the stored winner is the model that was on the left
    assert len(mine) == 12 and all(v.outcome == v.left for v in mine)
    assert {v.left for v in mine} == {"a", "b"}  # sides were mixed


def test_bad_votes_are_4xx(live) -> None:
    with live.client() as client:
        client.headers.update(READ)
        assert_error(client.post("/v1/studies/abx/votes", data={"trial_id": 1, "choice": "left"}),
                     400, "no_participant")
        client.cookies.set("cvsm_participant", "x" * 65)  # not one the server hands out
        assert_error(client.post("/v1/studies/abx/votes", data={"trial_id": 1, "choice": "tie"}),
                     400, "no_participant")
        client.cookies.clear()
        client.get("/v1/studies/abx/next")
        assert client.post("/v1/studies/abx/votes",
                           data={"trial_id": 1, "choice": "up"}).status_code == 422
        assert_error(client.post("/v1/studies/abx/votes",
                                 data={"trial_id": 999, "choice": "tie"}), 404, "not_found")
        assert_error(client.post("/v1/studies/nope/votes",
                                 data={"trial_id": 1, "choice": "tie"}), 404, "not_found")


def test_an_outside_query_clip_plays_by_its_signed_link(live, synth_manifest) -> None:
    """A study whose query is a clip from outside the catalog: `next` links to the study's
    copy of it, signed, so a player without the key can fetch it; nothing else can."""
    clip = read_manifest(synth_manifest)[2].mixture.read_bytes()
    uploads = UploadStore(live.settings.data_dir)
    source = uploads.source_of(uploads.store(clip, content_digest(clip), "outside.wav"))
    engine = db.make_engine(db.sqlite_url(live.settings.data_dir))
    studies.create_study(db.session_factory(engine), "clip",
                         ["m1", "m2"], [TrialSpec(source, "m1", "m2", "x", "y", "upload")])
    engine.dispose()
    with live.client() as client:
        trial = client.get("/v1/studies/clip/next", headers=READ).json()
        url = trial["query_audio_url"]
        assert url.startswith(f"/v1/studies/clip/trials/{trial['trial_id']}/query-audio?")
        played = client.get(url)  # no key: the signature is enough
        assert played.status_code == 200 and played.content == clip
        assert_error(client.get(url.split("?")[0]), 401, "unauthorized")
        assert_error(client.get(url[:-1] + ("0" if url[-1] != "0" else "1")), 401)
        other = url.replace(f"/trials/{trial['trial_id']}/", "/trials/1/")
        assert_error(client.get(other), 401)  # the link names one trial only
        assert_error(client.get("/v1/studies/abx/trials/999/query-audio", headers=READ), 404)
