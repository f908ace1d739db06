"""End to end in headless Chromium: upload an example, move the slider, encode, see the result."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.app_server import running_app

CHROMIUM = "/usr/bin/chromium"  # Debian's; tests never download a browser
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "plasma_Path.jpg"

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is missing (apt-get install chromium)")


def test_upload_slide_encode_and_see_the_result(tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    with running_app(tmp_path / "labels.sqlite") as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.goto(url)
            page.locator("#photo input[type=file]").set_input_files(str(EXAMPLE))
            page.get_by_text(EXAMPLE.name).first.wait_for()  # the upload has landed
            slider = page.locator("#target-bpp input[type=range]")
            slider.fill("0.4")
            assert page.locator("#target-bpp input[type=number]").input_value() == "0.4"
            page.locator("#encode").click()
            page.locator("#thumbnail-rdbunet img").wait_for(timeout=120_000)
            page.locator("#slider-rdbunet img").first.wait_for(timeout=30_000)
            page.get_by_text("achieved bpp").wait_for()
            page.screenshot(path=str(ARTIFACTS / "app_encode.png"), full_page=True)
            page.get_by_text("measuring ...").first.wait_for(state="detached", timeout=120_000)
            page.locator("#chart .js-plotly-plot").wait_for(timeout=300_000)
            page.screenshot(path=str(ARTIFACTS / "app_encode_with_chart.png"), full_page=True)
        finally:
            browser.close()
