"""The browser restore end to end in headless Chromium: the /viewer/ page of the real app restores
what the Python decode restores, refuses what it cannot read with one sentence and keeps working,
the gallery upgrades a thumbnail in place, and the app's Restore tab restores a file in the browser
without sending it to the server. Screenshots go to test-artifacts/.

The site (graphs of the real weights, onnxruntime-web, the gallery) is made once per session with
`build_site()`, which keeps what is up to date. The thumbnails are made with the real weights before
the app starts: the app's zoo holds small random-weight models (tests/app_server.py), whose encoders
the page's models would refuse.
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hyperthumb import zoo
from hyperthumb.evaluation.metrics import psnr
from hyperthumb.jpeg.marker import find_marker
from tests.app_server import CHROMIUM, chromium, running_app, wait_until_idle
from tests.conftest import example_crop, photo_like

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
# (model, target bpp, example photo, crop width, height): one landscape, one portrait photo.
AGREEMENT_CASES = [("rdbunet", 0.1, "Bridge_by_Sander_Klootwijk.jpg", 768, 512),
                   ("transformer", 0.3, "plasma_Path.jpg", 512, 768)]
RESTORE_TIMEOUT_MS = 180_000  # a 768x512 restore takes seconds; the first also loads 15 MB of WebAssembly

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")
pytestmark = [pytest.mark.server, pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (apt-get install chromium)")]

# The restored RGBA pixels, out of the page as base64 (a Uint8ClampedArray does not cross as is).
RESTORE_IN_PAGE = """async ([b64, options]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const out = await window.hyperthumb.restore(bytes, options);
  let text = "";
  for (let i = 0; i < out.data.length; i += 0x8000) text += String.fromCharCode(...out.data.subarray(i, i + 0x8000));
  return {width: out.width, height: out.height, rgba: btoa(text), backend: out.backend, threads: out.threads,
          decoder: out.decoder, model: out.model, seconds: out.seconds};
}"""


# -- Fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site():
    """The /viewer/ site, made (or found up to date) in the repository's web/ folder."""
    from hyperthumb.release.web_site import build_site

    return build_site()


@pytest.fixture(scope="module")
def cases(site, tmp_path_factory):
    """(name -> (thumbnail bytes, original RGB, Python's restore RGB)) for the agreement cases, made
    with the real weights before the app (and its small-model zoo) starts."""
    made, folder = {}, tmp_path_factory.mktemp("photos")
    for model, bpp, photo, width, height in AGREEMENT_CASES:
        path = example_crop(photo, width, height, folder)
        jpeg = zoo.load_model(model).encode(path, target_bpp=bpp).jpeg
        with Image.open(path) as image:
            original = np.asarray(image.convert("RGB"))
        made[f"{model}-{bpp}-{path.stem}"] = (jpeg, original, np.asarray(zoo.decode(jpeg, decoder="faithful")))
    return made


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def served(tmp_path_factory, cases):
    """The app (after the thumbnails are made: see `cases`), serving the site at /viewer/."""
    folder = tmp_path_factory.mktemp("app")
    with running_app(folder / "labels.sqlite") as url:
        yield url
        wait_until_idle(url)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    try:
        yield page
    finally:
        context.close()


def _viewer(page, url: str, path: str = "viewer/"):
    page.goto(url + path)
    page.wait_for_function("() => window.hyperthumb && typeof window.hyperthumb.restore === 'function'",
                           timeout=30_000)
    return page


def _screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True, animations="disabled")


def _restore_in_page(page, jpeg: bytes, **options) -> tuple[dict, np.ndarray]:
    result = page.evaluate(RESTORE_IN_PAGE, [base64.b64encode(jpeg).decode(), options])
    rgba = np.frombuffer(base64.b64decode(result.pop("rgba")), np.uint8).reshape(result["height"], result["width"], 4)
    return result, rgba


# -- Files the page must refuse ------------------------------------------------------------------

def _with_encoder(jpeg: bytes, encoder: str) -> bytes:
    """The same thumbnail, its marker's JSON naming another model (the APP11 length kept right)."""
    at = jpeg.index(b"HyperThumb\x00") - 4  # after the APP11 marker and its length
    assert jpeg[at:at + 2] == b"\xff\xeb"
    length = struct.unpack(">H", jpeg[at + 2:at + 4])[0]
    payload = jpeg[at + 4:at + 2 + length]
    fields = json.loads(payload[len(b"HyperThumb\x00"):])
    fields["encoder"] = encoder
    new = b"HyperThumb\x00" + json.dumps(fields, separators=(",", ":")).encode()
    edited = jpeg[:at] + b"\xff\xeb" + struct.pack(">H", len(new) + 2) + new + jpeg[at + 2 + length:]
    assert find_marker(edited).encoder == encoder
    return edited


def _plain_jpeg() -> bytes:
    buffer = io.BytesIO()
    photo_like(640, 480, seed=3).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _first_scan(jpeg: bytes) -> int:
    return jpeg.index(b"\xff\xda")


REFUSALS = {  # name -> (file name, a function of a real thumbnail's bytes)
    "plain-jpeg": ("holiday.jpg", lambda jpeg: _plain_jpeg()),
    "truncated-in-image-data": ("cut.jpg", lambda jpeg: jpeg[:_first_scan(jpeg) + (len(jpeg) - _first_scan(jpeg)) // 2]),
    "truncated-in-header": ("cut-early.jpg", lambda jpeg: jpeg[:_first_scan(jpeg) - 40]),
    "unknown-model": ("other-model.jpg", lambda jpeg: _with_encoder(jpeg, "nosuchmodel")),
    "not-an-image": ("notes.jpg", lambda jpeg: b"A text file with a photo's name, not a photo.\n" * 20),
}
# What a sentence for people must not show: a stack frame, a JavaScript value's name, an error's class.
NOT_FOR_PEOPLE = re.compile(r"undefined|\bnull\b|NaN|\[object|\bat \S+:\d+|\.m?js:\d+|\b\w*Error\b:|Traceback")


def _outcome(page, previous: str) -> str:
    """Waits until the page leaves `previous` for "restored" or "error", and returns which."""
    page.wait_for_function(
        "(previous) => ['restored', 'error'].includes(document.body.dataset.state) && document.body.dataset.state !== previous",
        arg=previous, timeout=RESTORE_TIMEOUT_MS)
    return page.evaluate("document.body.dataset.state")


# -- Tests ---------------------------------------------------------------------------------------

def test_the_viewer_restores_what_python_restores(browser, served, cases, page):
    """WebAssembly restores against `zoo.decode`: >= 45 dB between the two photos, and their PSNR
    against the original within 0.05 dB."""
    _viewer(page, served)
    assert page.evaluate("self.crossOriginIsolated"), "the viewer is not cross-origin isolated: one thread only"
    cores = page.evaluate("navigator.hardwareConcurrency")
    report = []
    for name, (jpeg, original, python) in cases.items():
        result, rgba = _restore_in_page(page, jpeg, decoder="full", backend="wasm")
        assert (result["backend"], result["decoder"]) == ("wasm", "full")
        assert result["model"] == name.split("-")[0]
        assert result["threads"] == min(cores, 8) and result["threads"] >= 1
        assert (result["height"], result["width"]) == original.shape[:2]
        assert (rgba[..., 3] == 255).all()
        browser_rgb = rgba[..., :3]
        between = psnr(browser_rgb, python)
        browser_db, python_db = psnr(browser_rgb, original), psnr(python, original)
        report.append(f"{name}: {between:.1f} dB between, HR {browser_db:.3f} vs {python_db:.3f} dB, "
                      f"{result['seconds']:.1f} s on {result['threads']} threads")
        assert between >= 45.0, report[-1]
        assert abs(browser_db - python_db) <= 0.05, report[-1]
    print("\n".join(report))
    assert not page.errors, page.errors


def test_the_viewer_refuses_with_one_sentence_and_keeps_working(browser, served, cases, page, tmp_path):
    """Each file it cannot restore, chosen as a user chooses it: one sentence in #status (class
    error), the page in state "error"; then a real thumbnail restores on the same page."""
    _viewer(page, served)
    jpeg = next(iter(cases.values()))[0]
    good = tmp_path / "real.jpg"
    good.write_bytes(jpeg)
    state, said = page.evaluate("document.body.dataset.state"), {}
    assert state == "idle"
    for name, (file_name, make) in REFUSALS.items():
        bad = tmp_path / file_name
        bad.write_bytes(make(jpeg))
        page.locator("#file").set_input_files(str(bad))
        state = _outcome(page, state)
        status = page.locator("#status")
        text = status.inner_text().strip()
        _screenshot(page, f"web_viewer_refuses_{name}.png")
        assert state == "error", f"{name}: the page restored it ({text!r})"
        assert "error" in (status.get_attribute("class") or "").split(), f"{name}: #status is not marked an error"
        assert status.is_visible(), name
        assert text and "\n" not in text, f"{name}: {text!r}"
        assert len(re.findall(r"[.!?](?=\s|$)", text)) == 1 and text[-1] in ".!?", f"{name}: not one sentence: {text!r}"
        assert not NOT_FOR_PEOPLE.search(text), f"{name}: {text!r}"
        said[name] = text

        page.locator("#file").set_input_files(str(good))  # the page still works
        state = _outcome(page, state)
        assert state == "restored", f"after {name}: {page.locator('#status').inner_text()!r}"
        assert "error" not in (page.locator("#status").get_attribute("class") or "").split()
    _screenshot(page, "web_viewer_restored_after_refusals.png")
    print(json.dumps(said, indent=1))
    assert len(set(said.values())) >= 4, f"refusals of different files read the same: {said}"
    assert not page.errors, page.errors


def test_the_viewers_open_shows_the_restored_photo(browser, served, cases, page):
    """`window.hyperthumb.open` runs the page's flow: the result, the split, the download, the timing."""
    _viewer(page, served)
    jpeg, original, _ = next(iter(cases.values()))
    result = page.evaluate("async (b64) => { const out = await window.hyperthumb.open("
                           "Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)), 'photo.jpg');"
                           " return {width: out.width, height: out.height}; }", base64.b64encode(jpeg).decode())
    assert (result["height"], result["width"]) == original.shape[:2]
    assert page.evaluate("document.body.dataset.state") == "restored"
    for part in ("#compare", "#split", "#download", "#timing"):
        assert page.locator(part).is_visible(), f"{part} is not shown after a restore"
    assert page.locator("#timing").inner_text().strip()
    _screenshot(page, "web_viewer_restored.png")
    assert not page.errors, page.errors


def test_the_gallery_upgrades_a_thumbnail_in_place(browser, served, site, page):
    page.goto(served + "viewer/gallery/")
    thumbnails = page.locator("img[data-hyperthumb]")
    thumbnails.first.wait_for(timeout=30_000)
    page.wait_for_function("() => [...document.querySelectorAll('img[data-hyperthumb]')].every((i) => i.complete"
                           " && i.naturalWidth > 0)", timeout=30_000)
    first = thumbnails.first
    source = first.get_attribute("src")
    marker = find_marker((site / "gallery" / source).read_bytes())
    assert first.evaluate("(img) => img.naturalWidth") == -(-marker.width // marker.scale)
    first.click()
    page.wait_for_function("(img) => img.dataset.restored === 'true' || img.dataset.error !== undefined",
                           arg=first.element_handle(), timeout=RESTORE_TIMEOUT_MS)
    _screenshot(page, "web_gallery_upgraded.png")
    assert first.get_attribute("data-error") is None, first.get_attribute("data-error")
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=first.element_handle())
    assert first.evaluate("(img) => [img.naturalWidth, img.naturalHeight]") == [marker.width, marker.height]
    assert thumbnails.nth(1).get_attribute("data-restored") != "true", "a thumbnail not clicked was upgraded"
    assert not page.errors, page.errors


def test_the_restore_tab_restores_in_the_browser_without_uploading(browser, served, cases, page, tmp_path):
    """The Restore tab's in-browser restore: the file is read by the page and restored there; no
    request carries it to the server (no POST, PUT or upload at all while it runs)."""
    jpeg, original, _ = next(iter(cases.values()))
    thumbnail = tmp_path / "photo-thumbnail.jpg"
    thumbnail.write_bytes(jpeg)
    page.goto(served)
    page.locator("#encode").wait_for()
    page.get_by_role("tab", name="Restore").click()
    block = page.locator("#browser-restore")
    block.wait_for(timeout=30_000)
    wait_until_idle(served)
    requests = []
    page.on("request", lambda request: requests.append(request))
    page.locator("#browser-restore-file").set_input_files(str(thumbnail))
    page.wait_for_function("() => ['restored', 'error'].includes(document.querySelector('#browser-restore').dataset.state)",
                           timeout=RESTORE_TIMEOUT_MS)
    status = page.locator("#browser-restore-status").inner_text().strip()
    _screenshot(page, "app_restore_in_browser.png")
    assert block.get_attribute("data-state") == "restored", status
    image = page.locator("#browser-restore-result img, img#browser-restore-result").first
    assert image.is_visible()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert image.evaluate("(img) => [img.naturalWidth, img.naturalHeight]") == [original.shape[1], original.shape[0]]
    assert status and not NOT_FOR_PEOPLE.search(status), status
    sent = [f"{r.method} {r.url}" for r in requests
            if r.method not in ("GET", "HEAD", "OPTIONS") or "upload" in r.url or (r.post_data_buffer or b"")]
    assert not sent, f"requests that could carry the file: {sent}"
    assert not any(jpeg[-2000:] in (r.post_data_buffer or b"") for r in requests)
    assert any("/viewer/models/" in r.url for r in requests) or any("/viewer/" in r.url for r in requests), \
        "the restore loaded nothing from /viewer/ (was it run by the server?)"
    assert not page.errors, page.errors
