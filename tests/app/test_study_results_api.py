"""GET /v1/studies/<name>/results on a live service (issue 16): the numbers of
index/study_results.py for votes stored in the service's own database, 404 for an unknown
study, the read key required on a private catalog."""

from __future__ import annotations

import pytest

from app.settings import Settings
from index import db, studies
from index.studies import TrialSpec
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
