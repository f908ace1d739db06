"""End to end in headless Chromium, as a user meets the page (the encoder comparison, the blind
study by keyboard, a photo added to the study); screenshots go to test-artifacts/."""
from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import pytest

from hyperthumb.study.pool import box_around
from tests.app_server import running_app
from tests.conftest import photo_like

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
            assert re.search(r"checkpoint at step [\d,]+, saved \d{4}-\d\d-\d\d", page.inner_text("body"))
            page.screenshot(path=str(ARTIFACTS / "app_first_view.png"), full_page=True)

            page.locator("#photo input[type=file]").set_input_files(str(EXAMPLE))
            page.locator("#photo img").first.wait_for()  # the preview of the upload
            page.get_by_text("1280x800 pixels. Choose the encoder").wait_for()  # its first answer, from its header
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

            page.get_by_label("Lite models").check()  # the switch encodes again, with the lite models
            page.locator("#metrics th:has-text('transformer-lite')").wait_for(timeout=120_000)
            assert page.locator("#heading-transformer").inner_text().strip() == "Transformer lite"
            page.screenshot(path=str(ARTIFACTS / "app_lite_models.png"), full_page=True)
            # The chart follows with the lite models' stars; waiting for it also lets the last model
            # work finish before the server stops (a thread killed inside torch aborts the process).
            page.wait_for_function("() => document.querySelector('#chart .js-plotly-plot').data"
                                   ".some(t => t.name.startsWith('transformer-lite: this result'))",
                                   timeout=300_000)

            page.locator("#photo button[aria-label='Remove Image']").first.click()
            page.locator("#photo input[type=file]").set_input_files(str(broken))
            page.get_by_text("Could not use holiday.jpg").wait_for(timeout=60_000)  # said on upload, before Encode
            page.locator("#encode").click()
            page.get_by_text("Could not use holiday.jpg").wait_for(timeout=60_000)
            assert page.locator("#thumbnail-rdbunet img").is_visible()  # the previous result stays
            assert page.locator("#metrics").is_visible()
            page.screenshot(path=str(ARTIFACTS / "app_bad_upload_keeps_result.png"), full_page=True)
        finally:
            browser.close()


@pytest.fixture(scope="module")
def study_app(tmp_path_factory):
    """The app, served once for the study's browser tests: (URL, its vote file, its folder)."""
    folder = tmp_path_factory.mktemp("study")
    with running_app(folder / "labels.sqlite") as url:
        yield url, folder / "labels.sqlite", folder


@pytest.fixture
def study_page(study_app):
    """A fresh browser (a new session and annotator id) on the app's study tab."""
    url, database, folder = study_app
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.goto(url)
            page.get_by_role("tab", name="Label (blind study)").click()
            yield page, database, folder
        finally:
            browser.close()


def _count(database: Path, query: str) -> int:
    with sqlite3.connect(database) as connection:
        return connection.execute(query).fetchone()[0]


def _next_trial_shown(page, votes: int) -> None:
    """Waits until the session's vote count reads `votes`, the next trial has replaced "Vote
    recorded.", and its crops are loaded with no event pending (Gradio fades pending outputs)."""
    page.wait_for_function(
        "(votes) => document.querySelector('#study-progress').innerText.includes(`session: ${votes}.`)"
        " && document.querySelector('#study-status').innerText.includes('Which side')"
        " && !document.querySelector('.pending')"
        " && [...document.querySelectorAll('#study-crops img')].every((img) => img.complete && img.naturalWidth)",
        arg=votes)


def test_an_annotator_votes_by_keyboard_undoes_one_and_reads_the_results(study_page):
    page, database, _folder = study_page
    ARTIFACTS.mkdir(exist_ok=True)
    votes_before = _count(database, "SELECT COUNT(*) FROM votes")
    page.get_by_text("Practice trial").wait_for()  # the tab opens on a trial, the practice one: no empty crops
    page.keyboard.press("Control+a")  # the browser's shortcut, not a vote
    page.evaluate("() => getSelection().removeAllRanges()")  # what it selected, out of the screenshots
    page.get_by_role("tab", name="Encode").click()
    page.keyboard.press("a")  # the study's keys act on its own tab only
    page.get_by_role("tab", name="Label (blind study)").click()
    page.wait_for_timeout(1000)
    assert _count(database, "SELECT COUNT(*) FROM votes") == votes_before
    practice = "SELECT expected FROM trials WHERE practice = 1 ORDER BY issued_at DESC LIMIT 1"
    with sqlite3.connect(database) as connection:
        page.keyboard.press({"left": "a", "right": "b"}[connection.execute(practice).fetchone()[0]])
    _next_trial_shown(page, 1)
    assert "Practice trial passed" in page.locator("#study-status").inner_text()
    page.screenshot(path=str(ARTIFACTS / "study_trial.png"), full_page=True, animations="disabled")
    sides = "() => ['#study-left img', '#study-right img'].map((s) => document.querySelector(s).src).join(' ')"
    shown = page.evaluate(sides)
    page.keyboard.press(" ")  # space again: another trial, no vote (a side may repeat, never both)
    page.wait_for_function(f"(shown) => ({sides})() !== shown", arg=shown)
    for count, key in enumerate("ab=ab=ab=", start=2):
        page.keyboard.press(key)
        _next_trial_shown(page, count)
    assert _count(database, "SELECT COUNT(*) FROM votes") == votes_before + 10  # in the real file, once each
    last = "SELECT trial_id, choice FROM votes ORDER BY id DESC LIMIT 1"
    with sqlite3.connect(database) as connection:
        undone_trial, undone_choice = connection.execute(last).fetchone()
    page.keyboard.press("u")
    page.get_by_text("Your last vote was removed").wait_for()
    assert "session: 9." in page.locator("#study-progress").inner_text()
    assert _count(database, "SELECT COUNT(*) FROM votes") == votes_before + 9
    page.keyboard.press("a")  # the undone trial, judged anew
    _next_trial_shown(page, 10)
    with sqlite3.connect(database) as connection:
        assert connection.execute(last).fetchone() == (undone_trial, "left") and undone_choice == "same"

    page.get_by_text("Results (public aggregate)").click()
    page.get_by_role("button", name="Show the results").click()
    page.get_by_text(f"{votes_before + 9} votes from").wait_for(timeout=60_000)  # the practice vote is not counted
    page.locator(".js-plotly-plot").first.wait_for()
    page.get_by_text("Results (public aggregate)").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "study_results.png"), full_page=True, animations="disabled")


def test_a_photo_clicked_on_and_added_joins_the_study(study_page, tmp_path):
    page, _database, folder = study_page
    ARTIFACTS.mkdir(exist_ok=True)
    photo = tmp_path / "garden.png"
    photo_like(448, 416, seed=5).save(photo)
    page.get_by_text("Add your own photo to the study").click()
    page.locator("#study-upload input[type=file]").set_input_files(str(photo))
    shown = page.locator("#study-upload img").first
    shown.wait_for()
    box = shown.bounding_box()
    shown.click(position={"x": box["width"] / 4, "y": box["height"] / 2})  # the photo's pixel (112, 208)
    page.get_by_text("The crop: 384x384 pixels centred at").wait_for()
    x, y = (float(page.locator(f"#study-centre-{axis} input").input_value()) for axis in "xy")
    assert abs(x - 112) <= 2 and abs(y - 208) <= 2
    page.locator("#study-picked img").wait_for()
    page.screenshot(path=str(ARTIFACTS / "study_crop_picked.png"), full_page=True, animations="disabled")
    page.locator("#study-add").click()
    page.get_by_text("Encoding with").first.wait_for(timeout=30_000)  # the progress of the encodings
    page.get_by_text("Added garden.png to the study pool").wait_for(timeout=120_000)
    manifest = json.loads((folder / "study_uploads" / "manifest.json").read_text())
    (crop,) = [c for c in manifest["crops"] if c["photo"] == "garden.png"]
    assert crop["box"] == list(box_around((x, y), (448, 416), 384))  # the shipped pool's crop size
