"""The listening-study page in a real browser (Debian's headless Chromium via Playwright,
issue 16): a participant hears the query and both candidates, votes through every trial with
progress shown, and the votes land in SQL once each. Leaves a screenshot in test-artifacts/."""

from __future__ import annotations

import pytest

from app.settings import Settings
from index import db, studies
from index.studies import TrialSpec
from index.uploads import UploadStore, content_digest
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
    clip = read_manifest(synth_manifest)[5].mixture.read_bytes()  # a query from outside
    uploads = UploadStore(data_dir)
    stored = uploads.store(clip, content_digest(clip), "outside.wav")
    trials.append(TrialSpec(uploads.source_of(stored), "m1", "m2", ids[6], ids[7],
                            query_kind="upload"))
    studies.create_study(sessions, "pilot", ["m1", "m2"], trials)
    settings = Settings(data_dir=data_dir, checkpoint=init_checkpoint, refresh_seconds=0,
                        _env_file=None)
    with LiveServer(settings, embedder) as live:
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(live.url + "/study/pilot")
        for n in range(1, 5):
            page.wait_for_selector(f"#progress:has-text('Trial {n} of 4')")
            for player in ("#query", "#left", "#right"):  # every clip plays
                assert page.evaluate(f"document.querySelector('{player}').play()"
                                     ".then(() => true)") is True
            if n == 1:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "study-page.png"), full_page=True)
                page.fill("#comment", "the left one breathes the same way")
            page.click(["button[data-choice=left]", "button[data-choice=right]",
                        "button[data-choice=tie]", "button[data-choice=left]"][n - 1])
        page.wait_for_selector("#done", state="visible")
        page.click("#done a")  # the results page, as a person sees it
        page.wait_for_selector("#pairs tbody tr")
        row = page.inner_text("#pairs tbody tr")
        assert "m1 vs m2" in row or "m2 vs m1" in row
        assert "4 votes from 1 participant;" in page.inner_text("#summary")
        assert page.locator(".ci .rate").count() == 1
        page.screenshot(path=str(ARTIFACTS / "study-results.png"), full_page=True)
        assert not errors
    votes = studies.votes(sessions, "pilot")
    engine.dispose()
    assert len(votes) == 4 and len({v.participant for v in votes}) == 1
    assert [v.outcome == "tie" for v in votes] == [False, False, True, False]
