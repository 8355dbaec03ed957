"""The listening-study page in a real browser (Debian's headless Chromium via Playwright,
issue 16): a participant hears the query and both candidates, votes through every trial with
progress shown, and the votes land in SQL once each. Leaves a screenshot in test-artifacts/."""

from __future__ import annotations

import pytest

from app.settings import Settings
from index import db, studies
from index.studies import TrialSpec
from model.data.manifest import read_manifest
from tests.app.test_service_page import ARTIFACTS, browser  # noqa: F401 - the fixture
from tests.live_server import LiveServer
from tests.service_fixtures import copy_data_dir

pytestmark = pytest.mark.browser


def test_take_part_in_a_study(browser, tmp_path, seeded_dir, embedder,  # noqa: F811
                              init_checkpoint, synth_manifest):
    data_dir = copy_data_dir(seeded_dir, tmp_path / "data")
    ids = [t.track_id for t in read_manifest(synth_manifest)]
    engine = db.make_engine(db.sqlite_url(data_dir))
    sessions = db.session_factory(engine)
    trials = [TrialSpec(ids[i], "m1", "m2", ids[i + 1], ids[i + 2]) for i in range(3)]
    studies.create_study(sessions, "pilot", ["m1", "m2"], trials)
    settings = Settings(data_dir=data_dir, checkpoint=init_checkpoint, refresh_seconds=0,
                        _env_file=None)
    with LiveServer(settings, embedder) as live:
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(live.url + "/study/pilot")
        for n in range(1, 4):
            page.wait_for_selector(f"#progress:has-text('Trial {n} of 3')")
            for player in ("#query", "#left", "#right"):  # every clip plays
                assert page.evaluate(f"document.querySelector('{player}').play()"
                                     ".then(() => true)") is True
            if n == 1:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "study-page.png"), full_page=True)
                page.fill("#comment", "the left one breathes the same way")
            page.click(["button[data-choice=left]", "button[data-choice=right]",
                        "button[data-choice=tie]"][n - 1])
        page.wait_for_selector("#done", state="visible")
        assert not errors
    votes = studies.votes(sessions, "pilot")
    engine.dispose()
    assert len(votes) == 3 and len({v.participant for v in votes}) == 1
    assert [v.outcome == "tie" for v in votes] == [False, False, True]
