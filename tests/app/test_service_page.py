"""The web page in a real browser (Debian's headless Chromium via Playwright): upload a clip,
see the ranked matches and the map, play a match. Leaves a screenshot in test-artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings
from tests.live_server import LiveServer
from tests.service_fixtures import copy_data_dir, mixture_of

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--autoplay-policy=no-user-gesture-required"]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


DROP_JS = """async ([url, name]) => {
  const blob = await (await fetch(url)).blob();
  const data = new DataTransfer();
  data.items.add(new File([blob], name, {type: "audio/wav"}));
  document.querySelector("#drop").dispatchEvent(
    new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
}"""


def drop_file(page, url: str, name: str) -> None:
    """Drag-and-drop as the browser delivers it: a drop event carrying a File."""
    page.evaluate(DROP_JS, [url, name])


def test_upload_see_results_and_play(browser, tmp_path, seeded_dir, embedder, init_checkpoint,
                                     synth_manifest):
    settings = Settings(data_dir=copy_data_dir(seeded_dir, tmp_path / "data"),
                        checkpoint=init_checkpoint, refresh_seconds=0, _env_file=None)
    tid, clip = mixture_of(synth_manifest, 3)
    with LiveServer(settings, embedder) as live:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(live.url + "/")
        page.wait_for_selector("#map circle")
        assert page.locator("#map circle").count() == 12
        page.fill("#k", "5")
        page.set_input_files("#file", str(clip))
        page.wait_for_selector("#results li.result")
        items = page.locator("#results li.result")
        assert items.count() == 5
        assert tid.split("_")[0] in items.first.inner_text()
        assert float(items.first.locator(".score").inner_text()) == pytest.approx(1.0, abs=1e-3)
        page.wait_for_selector("#query-point")
        assert "5 matches" in page.inner_text("#status")
        # which seconds of the 6 s clip the voice came from; the artists' legend, matches first
        assert page.locator("#used .sec").count() == 6
        assert page.locator("#used .sec.on").count() >= 1
        legend = page.locator("#legend li")
        assert legend.count() == 4 and "matched" in legend.first.inner_text()
        assert page.locator("#map circle title").first.text_content()  # hover titles
        # drag and drop a second query: the list is replaced by its matches
        drop_file(page, "/v1/tracks/singer00_song01/audio", "dropped.wav")
        page.wait_for_function("() => document.querySelector('#status').textContent"
                               ".includes('matches for dropped.wav')", timeout=30_000)
        assert "singer00" in items.first.inner_text() and items.count() == 5
        items.first.locator("audio").evaluate("a => a.play()")
        page.wait_for_function("() => document.querySelector('#results audio').currentTime > 0",
                               timeout=15_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "service-page.png"), full_page=True)
        # a file that is not audio: the reason shows in the page, in the error style
        bad = tmp_path / "notes.wav"
        bad.write_bytes(b"these are not audio samples" * 100)
        page.set_input_files("#file", str(bad))
        page.wait_for_selector("#status.error")
        assert "Search failed" in page.inner_text("#status")
        assert page.locator("#results li").count() == 0
        assert not errors, errors
        page.close()


def test_api_docs_work_without_internet(browser, tmp_path, seeded_dir, embedder,
                                        init_checkpoint):
    """Every request that leaves the service is refused: /docs and /redoc still render the
    route list from assets the app serves itself."""
    settings = Settings(data_dir=copy_data_dir(seeded_dir, tmp_path / "data"),
                        checkpoint=init_checkpoint, refresh_seconds=0, _env_file=None)
    with LiveServer(settings, embedder) as live:
        context = browser.new_context()
        outside: list[str] = []

        def only_local(route) -> None:
            if route.request.url.startswith(live.url):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        context.route("**/*", only_local)
        page = context.new_page()
        page.goto(live.url + "/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any("/v1/search" in p for p in paths), paths
        page.goto(live.url + "/redoc")
        page.wait_for_function("() => document.body.innerText.includes('/v1/search')",
                               timeout=30_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "redoc-offline.png"))
        # ReDoc's bundle asks for its own badge logo from its CDN (a footer image; absent
        # offline); nothing the pages need leaves the service
        assert [u for u in outside if not u.endswith("/redoc/logo-mini.svg")] == [], outside
        context.close()


def test_private_catalog_page_asks_for_the_key(browser, tmp_path, seeded_dir, embedder,
                                               init_checkpoint, synth_manifest):
    """With a read key the page asks for it, then searches and plays through signed links."""
    settings = Settings(data_dir=copy_data_dir(seeded_dir, tmp_path / "data"),
                        checkpoint=init_checkpoint, read_api_key="read-key",
                        refresh_seconds=0, _env_file=None)
    _, clip = mixture_of(synth_manifest, 2)
    with LiveServer(settings, embedder) as live:
        page = browser.new_page()
        page.goto(live.url + "/")
        page.wait_for_selector("#key-box:not([hidden])")
        page.fill("#key", "read-key")
        page.click("#key-save")
        page.wait_for_selector("#map circle")
        page.set_input_files("#file", str(clip))
        page.wait_for_selector("#results li.result")
        src = page.locator("#results audio").first.get_attribute("src")
        assert "sig=" in src and "read-key" not in src
        page.locator("#results audio").first.evaluate("a => a.play()")
        page.wait_for_function("() => document.querySelector('#results audio').currentTime > 0",
                               timeout=15_000)
        page.close()
