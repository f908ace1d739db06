"""Screenshots of the HyperThumb web app, for reviewing its design (docs/screenshots/after/).

Serve the app first, then run this script against it:

    python app.py --port 7960 &
    python tools/screenshots.py --url http://127.0.0.1:7960/ --out docs/screenshots/after --widths 1440 390

For each width (1440x900 desktop, or a 390x844 phone) it writes `{view}-{width}.png` (a JPEG, quality
85, where a PNG would pass 1.5 MB) for these views, in this order:
  first-view          the page as it opens (full page)
  result, result-full the first example clicked, its result and figures shown (viewport; full page)
  sharp               "Restore with: Sharp" chosen, its new result shown (viewport); Faithful is then chosen again
  result-100          the viewer's "100 %" pressed (viewport, scrolled to the viewer)
  both                encoder "Both, side by side", both panels and their figures (full page)
  chart, chart-element  the chart drawn (viewport, scrolled to it; the #charts element alone)
  error-after-result  a text file named notimage.jpg encoded over the result (full page)
  decode              the result's thumbnail restored in the "Restore" tab (full page)
  study               the "Label" tab with its crops (full page)
A view that fails is reported and skipped (with the views that need it); the others are still taken.
It drives Debian's Chromium (/usr/bin/chromium) through Playwright; it never downloads a browser.
"""
from __future__ import annotations

import argparse
import tempfile
import time
import traceback
from pathlib import Path
from urllib.parse import unquote, urljoin

from playwright.sync_api import Page, sync_playwright

PNG_LIMIT = 1_500_000
LONG_MS = 240_000

# Gradio lazy-loads images and a full-page screenshot does not scroll: load them all first.
LOAD_IMAGES_JS = "() => document.querySelectorAll('img[loading=lazy]').forEach(i => { i.loading = 'eager'; })"
IMAGES_LOADED_JS = ("() => [...document.images].every(i => i.complete || !i.getAttribute('src')"
                    " || i.getClientRects().length === 0)")
# Every viewer in `panels` shows its restored photo, and the figures table has a column for each
# method and no "measuring ..." left in it.
RESULT_SHOWN_JS = """(panels) => {
  const restored = panels.every(p => { const tag = document.querySelector(p + ' .ht-compare .ht-tag-after');
                                       return tag && !/restoring/i.test(tag.textContent); });
  const table = document.querySelector('#metrics table');
  return restored && table && !/measuring/i.test(table.innerText)
         && table.querySelectorAll('thead th, tr:first-child th').length >= panels.length + 1; }"""
# The viewers are marked before a setting changes; the new result's HTML drops the mark (Gradio updates
# the element in place or replaces it).
MARK_SHOWN_JS = "() => document.querySelectorAll('#result .ht-compare').forEach(v => { v.dataset.htOld = '1'; })"
REPLACED_JS = "() => !document.querySelector('#result .ht-compare[data-ht-old]')"
# The chart is drawn and the status line under Encode has nothing left to say (no progress either).
CHART_DONE_JS = """() => !!document.querySelector('#chart .js-plotly-plot .main-svg')
  && document.querySelector('#encode-status').innerText.trim() === ''"""


def shoot(page: Page, out: Path, name: str, width: int, full_page: bool = False, element: str = "") -> None:
    """Saves a screenshot of the viewport, the full page or one element, as PNG or (if large) JPEG."""
    page.evaluate(LOAD_IMAGES_JS)
    page.wait_for_function(IMAGES_LOADED_JS, timeout=30_000)
    page.wait_for_timeout(500)  # let layout and fonts settle
    target = page.locator(element) if element else page
    options = {} if element else {"full_page": full_page}
    data, suffix = target.screenshot(type="png", **options), ".png"
    if len(data) > PNG_LIMIT:
        data, suffix = target.screenshot(type="jpeg", quality=85, **options), ".jpg"
    for stale in out.glob(f"{name}-{width}.*"):
        stale.unlink()
    path = out / f"{name}-{width}{suffix}"
    path.write_bytes(data)
    print(f"  wrote {path} ({len(data) / 1024:.0f} KiB)", flush=True)


def open_tab(page: Page, name: str) -> None:
    """Clicks a tab; on a narrow screen Gradio moves the other tabs into a "More tabs" menu."""
    tab = page.get_by_role("tab", name=name)
    if not tab.is_visible():
        page.get_by_label("More tabs").click()
        tab = page.locator(".overflow-dropdown button", has_text=name)
    tab.click()


def views(page: Page, url: str, out: Path, width: int, scratch: Path) -> list:
    """The views as (name, steps, name of the view it needs on screen or None)."""
    def first_view():
        page.goto(url, wait_until="load")
        page.wait_for_selector("#encode", state="visible")
        page.wait_for_selector(".gallery-item", state="visible")
        shoot(page, out, "first-view", width, full_page=True)

    def result():
        page.locator(".gallery-item").first.click()
        page.wait_for_function(RESULT_SHOWN_JS, arg=["#result"], timeout=LONG_MS, polling=500)
        shoot(page, out, "result", width)
        shoot(page, out, "result-full", width, full_page=True)
        link = urljoin(url, page.locator("#result a[href*='.jpg']").first.get_attribute("href"))  # the thumbnail
        (scratch / "thumbnail").mkdir()
        (scratch / "thumbnail" / unquote(link.rsplit("/", 1)[-1])).write_bytes(page.request.get(link).body())

    def restore_with(option: str) -> None:
        page.evaluate(MARK_SHOWN_JS)
        page.locator("#restore-with").get_by_label(option, exact=True).check()
        page.wait_for_function(REPLACED_JS, timeout=LONG_MS, polling=500)
        page.wait_for_function(RESULT_SHOWN_JS, arg=["#result"], timeout=LONG_MS, polling=500)

    def sharp():
        restore_with("Sharp")
        shoot(page, out, "sharp", width)
        restore_with("Faithful")  # the views after it show the default decoder's result

    def result_100():
        page.locator('#result .ht-compare [data-view="100"]').first.click()
        page.locator("#result .ht-compare").first.scroll_into_view_if_needed()
        shoot(page, out, "result-100", width)

    def both():
        page.locator("#encoder").get_by_label("Both, side by side").check()
        page.wait_for_function(RESULT_SHOWN_JS, arg=["#viewer-rdbunet", "#viewer-transformer"], timeout=LONG_MS,
                               polling=500)
        shoot(page, out, "both", width, full_page=True)

    def chart():
        page.wait_for_function(CHART_DONE_JS, timeout=LONG_MS, polling=1000)
        page.evaluate("() => document.querySelector('#charts').scrollIntoView({block: 'start'})")
        shoot(page, out, "chart", width)
        shoot(page, out, "chart-element", width, element="#charts")

    def error_after_result():
        notimage = scratch / "notimage.jpg"
        notimage.write_text("This is a plain text file, not a JPEG photo.\n" * 20)
        page.locator("#photo input[type=file]").set_input_files(str(notimage))
        page.locator("#encode").click()
        page.wait_for_selector("#encode-status .ht-error", timeout=120_000)
        shoot(page, out, "error-after-result", width, full_page=True)

    def decode():
        page.evaluate("() => window.scrollTo(0, 0)")
        open_tab(page, "Restore")
        page.locator("#thumbnail input[type=file]").set_input_files(next((scratch / "thumbnail").iterdir()))
        page.wait_for_selector("#decode-status .ht-status", timeout=60_000)  # the file's first answer
        page.locator("#decode").click()
        page.wait_for_selector("#decode-result .ht-compare", state="visible", timeout=LONG_MS)
        shoot(page, out, "decode", width, full_page=True)

    def study():
        page.evaluate("() => window.scrollTo(0, 0)")
        open_tab(page, "Label")
        page.wait_for_function("() => { const imgs = [...document.querySelectorAll('#study-crops img')];"
                               " return imgs.length >= 3 && imgs.every(i => i.complete && i.naturalWidth > 0); }",
                               timeout=120_000)
        shoot(page, out, "study", width, full_page=True)

    return [("first-view", first_view, None), ("result", result, None), ("sharp", sharp, "result"),
            ("result-100", result_100, "result"), ("both", both, "result"), ("chart", chart, "both"),
            ("error-after-result", error_after_result, "result"), ("decode", decode, "result"),
            ("study", study, None)]


def run_width(playwright, url: str, out: Path, width: int) -> dict:
    """Takes every view at one width in a fresh browser; returns {view: "ok" or why it failed}."""
    phone = width < 800
    browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                         args=["--disable-gpu", "--disable-dev-shm-usage"])
    context = browser.new_context(viewport={"width": width, "height": 844 if phone else 900},
                                  is_mobile=phone, has_touch=phone, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(60_000)
    outcome = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, steps, needs in views(page, url, out, width, Path(scratch)):
            if needs and outcome.get(needs) != "ok":
                outcome[name] = f"skipped: {needs} failed"
                continue
            print(f"[{width}] {name} ...", flush=True)
            started = time.time()
            try:
                steps()
                outcome[name] = "ok"
            except Exception as exc:  # noqa: BLE001 (one view failing must not cost the others)
                traceback.print_exc()
                outcome[name] = f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            print(f"  {outcome[name]} ({time.time() - started:.0f} s)", flush=True)
    browser.close()
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:7960/", help="the running app")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots/after"), help="folder for the shots")
    parser.add_argument("--widths", type=int, nargs="+", default=[1440, 390], help="viewport widths (<800: a phone)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    url = args.url if args.url.endswith("/") else args.url + "/"
    with sync_playwright() as playwright:
        report = {width: run_width(playwright, url, args.out, width) for width in args.widths}
    for width, outcome in report.items():
        for name, result in outcome.items():
            print(f"{width:>5} {name:<20} {result}")


if __name__ == "__main__":
    main()
