"""End to end in headless Chromium, as a user meets the page; screenshots go to test-artifacts/."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.app_server import running_app

CHROMIUM = "/usr/bin/chromium"  # Debian's; tests never download a browser
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "plasma_Path.jpg"

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")
pytestmark = [pytest.mark.server, pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (apt-get install chromium)")]


def _visible_in(page, inner: str, outer: str) -> bool:
    """True where `inner`'s box lies inside `outer`'s, i.e. it is not scrolled or pushed out of view."""
    a, b = page.locator(inner).first.bounding_box(), page.locator(outer).first.bounding_box()
    return a is not None and b is not None and b["x"] <= a["x"] and a["x"] + a["width"] <= b["x"] + b["width"] + 1


def test_a_user_encodes_compares_and_survives_a_bad_upload(tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    broken = tmp_path / "holiday.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a photo")
    with running_app(tmp_path / "labels.sqlite") as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.goto(url)
            page.get_by_text("Device:").wait_for()
            page.screenshot(path=str(ARTIFACTS / "app_first_view.png"), full_page=True)

            page.locator("#photo input[type=file]").set_input_files(str(EXAMPLE))
            page.locator("#photo img").first.wait_for()  # the preview of the upload
            page.get_by_label("Both, side by side").check()  # changing the encoder encodes
            page.locator("#thumbnail-transformer img").wait_for(timeout=120_000)
            page.locator("#slider-transformer img").first.wait_for(timeout=30_000)
            page.get_by_text("measuring ...").first.wait_for(state="detached", timeout=120_000)
            header = "#metrics th:has-text('transformer')"
            assert _visible_in(page, header, "#metrics")  # both columns in view, none pushed out
            page.screenshot(path=str(ARTIFACTS / "app_both_mode.png"), full_page=True)

            page.locator("#chart .js-plotly-plot").wait_for(timeout=300_000)
            page.locator("#chart").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "app_chart_star_matches_table.png"), full_page=True)
            figure = page.evaluate("() => document.querySelector('#chart .js-plotly-plot').data"
                                   ".filter(t => t.name.includes('this result')).map(t => [t.name, t.x[0], t.y[0]])")
            assert sorted(name.split(":")[0] for name, _, _ in figure) == ["rdbunet", "transformer"]
            table = page.locator("#metrics").inner_text()
            for _name, bpp, psnr in figure:  # the stars carry the table's own figures
                assert f"{bpp:.4f}" in table and f"{psnr:.2f}" in table

            page.locator("#photo button[aria-label='Remove Image']").first.click()
            page.locator("#photo input[type=file]").set_input_files(str(broken))
            page.locator("#encode").click()
            page.get_by_text("Could not use holiday.jpg").wait_for(timeout=60_000)
            assert page.locator("#thumbnail-rdbunet img").is_visible()  # the previous result stays
            assert page.locator("#metrics").is_visible()
            page.screenshot(path=str(ARTIFACTS / "app_bad_upload_keeps_result.png"), full_page=True)
        finally:
            browser.close()
