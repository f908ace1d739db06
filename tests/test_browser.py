"""End to end in headless Chromium, as a user meets the page: the first view, an encode and its
progress, an error after a result, the phone layout, the blind study by keyboard and its export,
a photo added to the study, and the files the app leaves when it stops. Screenshots go to
test-artifacts/.

One app (small random-weight models, tests/app_server.py) and one browser serve the module; each
test opens its own browser context, i.e. its own session and annotator id. Before a page closes,
the app is left to finish the model work the page started (`wait_until_idle`), so that no test
slows the next and nothing is cut off when the server stops.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from PIL import Image

from hyperthumb.study.pool import box_around
from tests.app_server import CHROMIUM, chromium, running_app, wait_until_idle
from tests.conftest import photo_like

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
STUDY_TAB = "Label"
FORMULA_NAME = '=HYPERLINK("http://x","y")'
ADMIN_TOKEN = "s3cret-for-the-browser-test"

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")
pytestmark = [pytest.mark.server, pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (apt-get install chromium)")]

# Every visible component that shows nothing: Gradio's empty box (an image, plot or file with no
# value), a drop zone other than the photo's, an image that did not load, a plot with no data, a
# table with no rows, a slider other than the thumbnail size (the viewers' split lines).
EMPTY_PLACEHOLDERS = """() => {
  const shown = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden";
  const name = (e) => { const block = e.parentElement.closest("[id]");
                        return `${e.tagName.toLowerCase()}.${String(e.className).split(" ")[0]} in #${block ? block.id : "?"}`; };
  const found = [], add = (what) => (e) => found.push(`${what}: ${name(e)}`);
  const all = (selector, test) => [...document.querySelectorAll(selector)].filter((e) => shown(e) && test(e));
  const outsidePhoto = (e) => !e.closest("#photo");
  all('[aria-label="Empty value"]', outsidePhoto).forEach(add("empty box"));
  all('[data-testid="upload-text"]', outsidePhoto).forEach(add("drop zone"));
  all("img", (e) => outsidePhoto(e) && !e.naturalWidth).forEach(add("image not loaded"));
  all(".js-plotly-plot", (e) => !(e.data && e.data.length)).forEach(add("plot without data"));
  all("table", (e) => ![...e.tBodies].some((body) => body.rows.length)).forEach(add("table without rows"));
  all('input[type="range"]', (e) => !e.closest("#target-bpp")).forEach(add("slider"));
  return found;
}"""

# The progress Gradio 6 draws over the Encode tab's status line: `progress(desc=...)` as
# ".progress-level-inner" ("RDBUnet: encoding - 5.0%"), beside the timer (".progress-text").
PROGRESS = """() => [[...document.querySelectorAll('#encode-status .progress-level-inner')]
                     .map((e) => e.textContent.trim()).filter(Boolean),
                     document.querySelector('#result .ht-compare') !== null]"""


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app, served once for the module: (URL, its vote file, its folder)."""
    folder = tmp_path_factory.mktemp("app")
    with running_app(folder / "labels.sqlite") as url:
        yield url, folder / "labels.sqlite", folder
        wait_until_idle(url)


@contextmanager
def opened(browser, url: str, width: int = 1440, height: int = 900, **options) -> Iterator:
    """A page of the app in a browser context of its own (a new session, a new annotator id);
    when done, it closes and the app finishes what the page started."""
    context = browser.new_context(viewport={"width": width, "height": height}, **options)
    try:
        page = context.new_page()
        page.goto(url)
        page.locator("#encode").wait_for()
        yield page
    finally:
        context.close()
        wait_until_idle(url)


def _screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True, animations="disabled")


def _not_an_image(folder: Path) -> Path:
    path = folder / "notimage.jpg"
    path.write_bytes(b"A text file with a photo's name, not a photo.\n" * 20)
    return path


def _wait_for_figures(page) -> None:
    """Until the quality figures replace "measuring ..." in the table."""
    page.wait_for_function("() => { const t = document.querySelector('#metrics table');"
                           " return t && !t.innerText.includes('measuring'); }", timeout=120_000)


def _wait_for_chart(page) -> None:
    """Until the chart is drawn and the status line is cleared: the last step of an encode."""
    page.locator("#chart .js-plotly-plot").wait_for(timeout=180_000)
    page.wait_for_function("() => !document.querySelector('#encode-status').innerText.trim()", timeout=60_000)


def _error_after_a_result_is_shown(page, url: str, bad: Path) -> None:
    """Uploads `bad` and presses Encode; the error is said and nothing of the last result stays."""
    page.locator("#photo input[type=file]").set_input_files(str(bad))
    page.locator("#encode-status .ht-error", has_text="notimage.jpg").wait_for(timeout=60_000)  # said on upload
    page.locator("#encode").click()
    page.locator("#encode-status .ht-error", has_text="Could not use notimage.jpg").wait_for(timeout=60_000)
    assert not page.locator("#result").is_visible() and not page.locator("#charts").is_visible()
    wait_until_idle(url)  # whatever the earlier result still had running has run
    page.wait_for_timeout(300)  # its last answer drawn
    _screenshot(page, "app_error_after_result.png")
    status = page.locator("#encode-status")
    assert "Could not use notimage.jpg" in status.inner_text(), f"the error was replaced by {status.inner_text()!r}"
    assert page.locator("#encode-status .ht-error").is_visible()
    assert not page.locator("#result").is_visible(), "the last result is shown again"
    assert not page.locator("#charts").is_visible(), "the last result's chart is shown again"
    assert not page.locator(".ht-compare").count()


# -- After the app stops: first in the module, while no other app of this process runs (they share
# -- the process's folder, webapp.sessions.APP_ROOT).

def test_the_upload_cache_is_empty_after_the_app_stops(browser, tmp_path, monkeypatch):
    from webapp import sessions

    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)  # the app's own upload cache, as when served alone
    photo = tmp_path / "garden.jpg"
    photo_like(640, 480, seed=2).save(photo, quality=90)
    with running_app(tmp_path / "labels.sqlite") as url:
        assert os.environ["GRADIO_TEMP_DIR"] == str(sessions.UPLOADS)
        with opened(browser, url) as page:
            page.locator("#photo input[type=file]").set_input_files(str(photo))
            page.get_by_text("garden.jpg: 640x480 pixels. Press Encode.").wait_for(timeout=60_000)  # its first answer
            assert list(sessions.UPLOADS.rglob("garden.jpg")), "the upload is not in the app's upload cache"
            page.locator("#encode").click()
            page.locator("#result .ht-compare").wait_for(timeout=120_000)
            _wait_for_chart(page)
            assert list(sessions.SESSIONS.rglob("*.png")), "the session's files are not under APP_ROOT"
    left = [str(path) for path in sessions.APP_ROOT.rglob("*") if path.is_file()] if sessions.APP_ROOT.exists() else []
    assert not left, f"the stopped app left {len(left)} files: {left[:5]}"


# -- The Encode tab.

def test_the_first_view_has_no_empty_placeholder(browser, served):
    url, _database, _folder = served
    with opened(browser, url) as page:
        page.locator(".gallery-item img").first.wait_for()
        page.wait_for_function("() => [...document.images].every((img) => img.complete)")
        _screenshot(page, "app_first_view.png")
        assert page.locator("#photo [data-testid='upload-text']").is_visible()  # the one drop zone
        assert not page.locator("#result").is_visible()
        assert not page.locator("#charts").is_visible()
        assert page.evaluate(EMPTY_PLACEHOLDERS) == []


def test_an_error_after_a_result_leaves_no_stale_result(browser, served, tmp_path):
    url, _database, _folder = served
    with opened(browser, url) as page:
        page.locator(".gallery-item").first.click()  # an example encodes at once
        page.locator("#result .ht-compare").wait_for(timeout=120_000)
        _wait_for_figures(page)
        _wait_for_chart(page)
        assert page.locator("#charts").is_visible()
        _error_after_a_result_is_shown(page, url, _not_an_image(tmp_path))


def test_an_error_while_the_figures_are_made_leaves_no_stale_result(browser, served, tmp_path):
    url, _database, _folder = served
    with opened(browser, url) as page:
        page.locator(".gallery-item").nth(1).click()
        page.locator("#result .ht-compare").wait_for(timeout=120_000)  # its figures and chart still to come
        _error_after_a_result_is_shown(page, url, _not_an_image(tmp_path))


def test_the_progress_names_the_stages_of_a_12_megapixel_encode(browser, served, tmp_path):
    url, _database, _folder = served
    photo = tmp_path / "big.jpg"
    photo_like(1000, 750, seed=3).resize((4000, 3000), Image.BICUBIC).save(photo, quality=90)  # 12 MP in 0.5 s
    with opened(browser, url) as page:
        page.locator("#photo input[type=file]").set_input_files(str(photo))
        page.get_by_text("big.jpg: 4000x3000 pixels. Press Encode.").wait_for(timeout=60_000)  # the upload's first answer
        # Only the encode is let through: the figures and the chart it chains take a minute on a
        # 12 MP photo and are not what this test is about. Their requests are held, then refused.
        joined = []

        def only_the_encode(route) -> None:
            joined.append(route)
            if len(joined) == 1:
                route.continue_()  # the others stay pending until the page closes
        page.route("**/gradio_api/queue/join*", only_the_encode)
        page.locator("#encode").click()
        seen = []  # the progress texts in the order they were shown, each once
        for _ in range(6000):  # every ~50 ms, up to 5 minutes
            texts, shown = page.evaluate(PROGRESS)
            for text in texts:
                stage = re.sub(r"\s*-\s*[\d.]+%$", "", text)
                if stage not in seen:
                    seen.append(stage)
            if shown:
                break
            page.wait_for_timeout(50)
        else:
            pytest.fail(f"no result after 5 minutes; progress seen: {seen}")
        _screenshot(page, "app_12mp_result.png")
        for route in joined[1:]:
            route.abort()  # the held requests answered before the page closes (the page reloads)
        stages = [stage for stage in seen if stage.startswith("RDBUnet: ")]
        print("progress seen:", seen)
        assert len(stages) >= 2, f"one stage or none was shown before the result: {seen}"
        order = ["loading the model", "encoding", "sizing the file", "restoring", "writing the files"]
        assert [order.index(stage.removeprefix("RDBUnet: ")) for stage in stages] == \
            sorted(order.index(stage.removeprefix("RDBUnet: ")) for stage in stages)  # in the order they run


def test_the_phone_layout_shows_the_whole_metrics_table(browser, served):
    url, _database, _folder = served
    with opened(browser, url, width=390, height=844, is_mobile=True) as page:
        page.get_by_label("Both, side by side").check()  # the widest table: a column per encoder
        wait_until_idle(url)  # the encoder's change, with no photo yet, has been answered
        page.locator(".gallery-item").first.click()
        page.locator("#result .ht-compare").nth(1).wait_for(timeout=120_000)
        _wait_for_figures(page)
        table = page.locator("#metrics table")
        assert table.locator("thead th").all_inner_texts()[1:] == ["RDBUnet", "Transformer"]
        table.scroll_into_view_if_needed()
        _screenshot(page, "app_phone_metrics.png")
        box = table.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, f"the table spans {box}"
        page_width = page.evaluate("() => document.documentElement.scrollWidth")
        assert page_width <= 390, f"the page scrolls sideways: {page_width} px wide"


def test_the_viewer_fits_each_new_pair_of_images_and_shows_100_percent(browser, served):
    """Gradio updates a viewer in place when a result changes (the thumbnail, then the restored photo,
    then another decoder's): each new pair is fitted, and 100 % shows one photo pixel per CSS pixel."""
    url, _database, _folder = served
    with opened(browser, url) as page:
        page.locator(".gallery-item").first.click()
        viewer = page.locator("#result .ht-compare").first
        viewer.locator("img[alt='Restored from the thumbnail']").wait_for(timeout=120_000)
        _wait_for_figures(page)
        page.locator("#restore-with").get_by_label("Sharp").check()
        # the sharp pair's thumbnail comes first (its file name names the decoder too), then its restoration
        page.wait_for_function("() => /sharp.*_restored/.test(document.querySelector('#result .ht-compare')"
                               ".dataset.key)", timeout=120_000)
        zoom = viewer.locator(".ht-zoom")
        page.wait_for_function("() => /^[0-9]+ %$/.test(document.querySelector('#result .ht-zoom').textContent)")
        fitted = int(zoom.inner_text().split()[0])
        width = int(viewer.get_attribute("data-width"))
        shown = viewer.locator(".ht-after img").evaluate("img => img.getBoundingClientRect().width")
        assert 0 < fitted <= 100 and abs(shown - width * fitted / 100) <= 0.02 * width  # the image is fitted
        viewer.locator("[data-view='100']").click()
        assert zoom.inner_text() == "100 %"
        shown = viewer.locator(".ht-after img").evaluate("img => img.getBoundingClientRect().width")
        assert abs(shown - width) <= 1


# -- The blind study.

def _count(database: Path, query: str, *args) -> int:
    with sqlite3.connect(database) as connection:
        return connection.execute(query, args).fetchone()[0]


def _votes(database: Path) -> int:
    return _count(database, "SELECT COUNT(*) FROM votes")


def _study(page) -> None:
    """Opens the study tab, which opens on a trial: the practice one for a new annotator."""
    page.get_by_role("tab", name=STUDY_TAB).click()
    page.locator("#study-status", has_text="Practice trial").wait_for(timeout=30_000)
    page.wait_for_function("() => [...document.querySelectorAll('#study-crops img')]"
                           ".every((img) => img.complete && img.naturalWidth)")


def _next_trial_shown(page, votes: int) -> None:
    """Waits until the session's vote count reads `votes`, the next trial has replaced "Vote
    recorded.", and its crops are loaded with no event pending (Gradio fades pending outputs)."""
    page.wait_for_function(
        "(votes) => document.querySelector('#study-progress').innerText.includes(`session: ${votes}.`)"
        " && document.querySelector('#study-status').innerText.includes('Which side')"
        " && !document.querySelector('.pending')"
        " && [...document.querySelectorAll('#study-crops img')].every((img) => img.complete && img.naturalWidth)",
        arg=votes, timeout=30_000)


def _practice_answer(database: Path, annotator: str = "") -> str:
    """The key that passes the last practice trial issued (to `annotator` where given)."""
    with sqlite3.connect(database) as connection:
        expected, = connection.execute(
            "SELECT expected FROM trials WHERE practice = 1 AND (? = '' OR annotator = ?) ORDER BY issued_at DESC"
            " LIMIT 1", (annotator, annotator)).fetchone()
    return {"left": "a", "right": "b"}[expected]


def test_study_keys_act_only_on_the_study_and_the_practice_outcome_is_said(browser, served):
    url, database, _folder = served
    with opened(browser, url) as page:
        _study(page)  # the tab opens on a trial, the practice one: no empty crops
        assert page.evaluate(EMPTY_PLACEHOLDERS) == []
        votes_before = _votes(database)
        page.keyboard.press("Control+a")  # the browser's shortcut, not a vote
        page.evaluate("() => getSelection().removeAllRanges()")  # what it selected, out of the screenshots
        page.get_by_role("tab", name="Make a thumbnail").click()
        page.keyboard.press("a")  # the study's keys act on its own tab only
        page.keyboard.press("b")
        page.get_by_role("tab", name=STUDY_TAB).click()
        page.wait_for_timeout(500)
        wait_until_idle(url)
        assert _votes(database) == votes_before
        assert "session: 0." in page.locator("#study-progress").inner_text()

        page.keyboard.press(_practice_answer(database))
        _next_trial_shown(page, 1)
        assert "Practice trial passed" in page.locator("#study-status").inner_text()  # its outcome, said
        assert _votes(database) == votes_before + 1
        _screenshot(page, "study_trial.png")
        page.keyboard.press("=")
        _next_trial_shown(page, 2)
        page.keyboard.press("u")  # undo: the last vote goes, its trial comes back
        page.get_by_text("Your last vote was removed").wait_for()
        assert "session: 1." in page.locator("#study-progress").inner_text()
        assert _votes(database) == votes_before + 1


def test_enter_on_a_focused_vote_button_casts_nothing(browser, served):
    url, database, _folder = served
    with opened(browser, url) as page:
        _study(page)
        votes_before = _votes(database)
        button = page.locator("#study-left-better")
        button.click()  # one vote
        _next_trial_shown(page, 1)
        assert _votes(database) == votes_before + 1
        button.focus()
        assert page.evaluate("() => document.activeElement.id") == "study-left-better"
        for _ in range(3):
            page.keyboard.press("Enter")
        page.wait_for_timeout(500)
        wait_until_idle(url)
        assert "Votes in this session: 1." in page.locator("#study-progress").inner_text()
        assert _votes(database) == votes_before + 1


def test_the_csv_export_escapes_a_formula_name(browser, served, monkeypatch):
    url, database, _folder = served
    monkeypatch.setenv("HYPERTHUMB_ADMIN_TOKEN", ADMIN_TOKEN)  # read by the export, as it runs
    with opened(browser, url) as page:
        _study(page)
        page.get_by_label("Your name").fill(FORMULA_NAME)
        page.locator("#study-next").click()  # a trial issued under the name (its practice trial)
        page.wait_for_function("() => !document.querySelector('.pending')")
        wait_until_idle(url)
        assert _count(database, "SELECT COUNT(*) FROM trials WHERE annotator = ?", FORMULA_NAME) == 1
        page.keyboard.press(_practice_answer(database, FORMULA_NAME))
        _next_trial_shown(page, 1)
        assert _count(database, "SELECT COUNT(*) FROM votes v JOIN trials t ON t.id = v.trial_id"
                                " WHERE t.annotator = ?", FORMULA_NAME) == 1

        page.get_by_text("Export or reset the votes (admin)").click()
        page.get_by_label("Admin token").fill(ADMIN_TOKEN)
        page.get_by_role("button", name="Export", exact=True).click()
        page.get_by_text(re.compile(r"Exported \d+ votes")).wait_for(timeout=60_000)
        link = page.locator(".block", has_text="Votes (CSV)").locator("a[href*='.csv']").first
        response = page.request.get(link.get_attribute("href"))
        assert response.ok
        rows = list(csv.DictReader(io.StringIO(response.text())))
        assert len(rows) == _votes(database)
        cells = [row["annotator"] for row in rows if "HYPERLINK" in row["annotator"]]
        assert cells == ["'" + FORMULA_NAME], cells  # plain text in a spreadsheet, never a formula


def test_a_photo_clicked_on_and_added_joins_the_study(browser, served, tmp_path):
    url, _database, folder = served
    photo = tmp_path / "garden.png"
    photo_like(448, 416, seed=5).save(photo)
    with opened(browser, url, height=1300) as page:
        _study(page)
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
        _screenshot(page, "study_crop_picked.png")
        page.locator("#study-add").click()
        page.get_by_text("Added garden.png to the study pool").wait_for(timeout=180_000)
    manifest = json.loads((folder / "study_uploads" / "manifest.json").read_text())
    (crop,) = [c for c in manifest["crops"] if c["photo"] == "garden.png"]
    assert crop["box"] == list(box_around((x, y), (448, 416), 384))  # the shipped pool's crop size
