"""The web app, served for real on a local port and driven through gradio_client."""
from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from hyperthumb.evaluation import photo_curves
from hyperthumb.jpeg.marker import find_marker
from hyperthumb.study.pool import STUDY_METHODS
from hyperthumb.study.ranking import preference_percent
from hyperthumb.study.votes import VoteStore
from hyperthumb.zoo import METHODS
from tests.app_server import running_app
from tests.conftest import photo_like
from tests.test_robustness import scan_cut_short, with_marker
from tests.test_study import reference_fit
from webapp import encode_tab, sessions
from webapp.config import BOTH, ENCODERS
from webapp.decode_tab import DecodeTab
from webapp.encode_tab import EncodeTab
from webapp.errors import UserError

pytestmark = pytest.mark.server

WIDTH, HEIGHT = 320, 240
ERROR_CLASS = re.compile(r"\b\w*(Error|Exception)\b")

# The outputs of the Encode and Decode endpoints as the server sends them, the columns' updates and the
# state included (the `raw` client keeps them; gradio_client leaves layouts and states out by default).
ENCODE_OUTPUTS = ("status", "result", "verdict", "figures", "expert", "charts", "state")
PANEL_OUTPUTS = ("column", "heading", "viewer", "thumbnail_file", "restored_file", "thumbnail")
METRICS_OUTPUTS = ("verdict", "figures", "expert", "status", "state")
CHART_OUTPUTS = ("charts", "chart", "reference_chart", "chart_note", "region", "status", "state")
DECODE_OUTPUTS = ("status", "result", "viewer", "restored_file")
BPP_ROW, PSNR_ROW, UPSCALED_ROW = ("Bits per pixel (target)", "Restored photo: closeness (PSNR, higher is better)",
                                   "Thumbnail only upscaled: closeness (PSNR)")
LPIPS_ROW, SSIM_ROW = ("Restored photo: visible difference (LPIPS, lower is better)",
                       "SSIM of the restored photo (1 = identical)")
FILE_ROW, THUMBNAIL_PSNR_ROW = "Thumbnail file", "Thumbnail PSNR against a bicubic downscale (dB)"


def label(method: str) -> str:
    return METHODS[method].label


# The page's HTML, read with the standard library.
class _Fragment(HTMLParser):
    """An HTML fragment's text, its tags with their attributes, and its tables' rows of cells."""

    def __init__(self, fragment: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text, self.tags, self.tables = [], [], []
        self._row, self._cell = None, None
        self.feed(fragment)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
            self.tables[-1].append(self._row)
        elif tag in ("th", "td"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("th", "td"):
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def text(fragment: str) -> str:
    """What a reader sees of an HTML fragment (or of Markdown): its text, spaces collapsed."""
    return " ".join("".join(_Fragment(fragment).text).split())


def _status(fragment: str) -> tuple[set[str], dict, str]:
    tag, attrs = _Fragment(fragment).tags[0]
    classes = set(attrs.get("class", "").split())
    assert tag == "div" and "ht-status" in classes, fragment
    return classes, attrs, text(fragment)


def error(fragment: str) -> str:
    """The text of an error-styled status line (announced to screen readers); fails on any other."""
    classes, attrs, said = _status(fragment)
    assert "ht-error" in classes and attrs.get("role") == "alert", fragment
    return said


def info(fragment: str) -> str:
    """The text of a status line that is no error; fails on an error."""
    classes, attrs, said = _status(fragment)
    assert "ht-error" not in classes and "role" not in attrs, fragment
    return said


def table(fragment: str) -> tuple[list[str], dict[str, list[str]]]:
    """(header, {row name: cells}) of a figures table."""
    assert fragment.startswith("<table class='ht-figures'>"), fragment
    header, *rows = _Fragment(fragment).tables[0]
    assert all(len(row) == len(header) for row in rows)
    return header, {row[0]: row[1:] for row in rows}


def column(fragment: str, heading: str) -> dict[str, str]:
    """{row name: cell} of one encoder's column of a figures table."""
    header, rows = table(fragment)
    index = header.index(heading) - 1
    return {name: cells[index] for name, cells in rows.items()}


def achieved_bpp(expert: str, method: str) -> float:
    return float(column(expert, label(method))[BPP_ROW].split()[0])


def viewer(fragment: str) -> tuple[tuple[int, int], dict[str, str]]:
    """((width, height), {alt text: image URL}) of a before/after viewer."""
    tags = _Fragment(fragment).tags
    (_, frame), = [attrs for attrs in tags if "ht-compare" in attrs[1].get("class", "").split()]
    images = {attrs["alt"]: attrs["src"] for tag, attrs in tags if tag == "img"}
    assert len(images) == 2 and all(src.startswith("/gradio_api/file=") for src in images.values())
    return (int(frame["data-width"]), int(frame["data-height"])), images


def fetch(client: Client, url: str) -> bytes:
    """A file the page loads, from the server as the browser gets it."""
    response = httpx.get(client.src.rstrip("/") + url)
    assert response.status_code == 200, url
    return response.content


def skipped(value) -> bool:
    """True where an output was left as it was (an update that changes nothing)."""
    return (isinstance(value, dict) and value.get("__type__") == "update"
            and set(value) <= {"__type__", "props"} and set(value.get("props", {})) <= {"__type__"})


def shown(update) -> bool:
    assert isinstance(update, dict) and "visible" in update, update
    return update["visible"]


# The served app and its endpoints.
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("app")
    with running_app(folder / "labels.sqlite") as url:
        yield url, folder


@pytest.fixture(scope="module")
def client(served) -> Client:
    return Client(served[0], verbose=False, download_files=str(served[1] / "downloads"))


@pytest.fixture(scope="module")
def raw(served) -> Client:
    """A client that gets every output the page gets: the columns' updates too (a session of its own)."""
    return Client(served[0], verbose=False, download_files=str(served[1] / "downloads"), _skip_components=False)


@pytest.fixture(scope="module")
def photo_path(served) -> str:
    path = served[1] / "photo.png"
    photo_like(WIDTH, HEIGHT, seed=3).save(path)
    return str(path)


def encode(raw: Client, photo: str, choice: str = "RDBUnet", target: object = 0.3, lite: bool = False,
           api: str = "/encode", decoder: str = "Faithful") -> dict:
    """/encode's outputs by name, each encoder's panel under "panels" by method; every panel is in
    the outputs, shown or not."""
    outputs = raw.predict(handle_file(photo), choice, target, lite, None, decoder, api_name=api)  # None: the state
    named = dict(zip(ENCODE_OUTPUTS, outputs))
    panels = outputs[len(ENCODE_OUTPUTS):]
    assert len(panels) == len(PANEL_OUTPUTS) * len(ENCODERS)
    named["panels"] = {method: dict(zip(PANEL_OUTPUTS, panels[index * len(PANEL_OUTPUTS):]))
                       for index, method in enumerate(ENCODERS.values())}
    return named


def metrics(raw: Client) -> dict:
    return dict(zip(METRICS_OUTPUTS, raw.predict(None, api_name="/metrics")))


def chart(raw: Client) -> dict:
    return dict(zip(CHART_OUTPUTS, raw.predict(None, api_name="/rate_distortion")))


def decode(raw: Client, thumbnail: str, decoder: str = "Faithful") -> dict:
    return dict(zip(DECODE_OUTPUTS, raw.predict(handle_file(thumbnail), decoder, api_name="/decode")))


def assert_cleared(outputs: dict, raw: Client) -> None:
    """An Encode error hides the last result and its chart, and forgets it: /metrics has nothing to measure."""
    assert not shown(outputs["result"]) and not shown(outputs["charts"])
    assert all(skipped(value) for name, value in metrics(raw).items() if name != "state")


@pytest.fixture(scope="module")
def encoded(raw, photo_path) -> dict:
    """Encodes with both encoders at two targets: {(method, target): (thumbnail path, restored path, bpp)}."""
    results = {}
    for target in (0.2, 0.45):
        outputs = encode(raw, photo_path, BOTH, target)
        for method in ENCODERS.values():
            panel = outputs["panels"][method]
            assert f"({target:.2f})" in column(outputs["expert"], label(method))[BPP_ROW]
            results[method, target] = (panel["thumbnail_file"], panel["restored_file"],
                                       achieved_bpp(outputs["expert"], method))
    return results


@pytest.mark.parametrize("method", ["rdbunet", "transformer"])
@pytest.mark.parametrize("target", [0.2, 0.45])
def test_encode_meets_the_target_with_a_real_file(encoded, method, target):
    thumbnail, restored, bpp = encoded[method, target]
    assert abs(bpp - target) <= 0.05 * target
    jpeg = Path(thumbnail).read_bytes()
    assert len(jpeg) * 8 / (WIDTH * HEIGHT) == pytest.approx(bpp, abs=1e-4)  # the table reports the real file
    assert Image.open(io.BytesIO(jpeg)).size == (WIDTH // 4, HEIGHT // 4)  # the exact quarter, no padding shown
    assert Image.open(restored).size == (WIDTH, HEIGHT)


def test_the_panel_shows_the_thumbnail_at_its_true_size_and_both_photos_in_the_viewer(raw, photo_path):
    outputs = encode(raw, photo_path, "Transformer", 0.3)
    assert shown(outputs["result"]) and not shown(outputs["panels"]["rdbunet"]["column"])
    panel = outputs["panels"]["transformer"]
    assert shown(panel["column"]) and panel["heading"] == "### Transformer"
    jpeg = Path(panel["thumbnail_file"]).read_bytes()
    (_, image), = [(tag, attrs) for tag, attrs in _Fragment(panel["thumbnail"]).tags if tag == "img"]
    assert (image["width"], image["height"]) == (str(WIDTH // 4), str(HEIGHT // 4))
    assert base64.b64decode(image["src"].removeprefix("data:image/jpeg;base64,")) == jpeg  # the file itself
    assert re.search(r"\.ht-thumbnail img\s*\{[^}]*max-width:\s*none", raw.config["css"])  # never scaled down
    assert f"{WIDTH // 4}x{HEIGHT // 4} pixels" in text(panel["thumbnail"])
    size, images = viewer(panel["viewer"])
    assert size == (WIDTH, HEIGHT)
    original = Image.open(io.BytesIO(fetch(raw, images["Your photo"])))
    assert np.array_equal(np.asarray(original), np.asarray(Image.open(photo_path).convert("RGB")))
    assert fetch(raw, images["Restored from the thumbnail"]) == Path(panel["restored_file"]).read_bytes()


def test_the_viewer_loads_photos_whose_names_need_quoting_in_a_url(raw, served):
    path = _write(served[1], "holiday #1.png", lambda path: photo_like(WIDTH, HEIGHT, seed=4).save(path))
    panel = encode(raw, path, "RDBUnet", 0.3)["panels"]["rdbunet"]
    _size, images = viewer(panel["viewer"])
    assert fetch(raw, images["Restored from the thumbnail"]) == Path(panel["restored_file"]).read_bytes()


def test_the_figures_compare_with_the_upload_and_quality_follows(raw, photo_path):
    outputs = encode(raw, photo_path, BOTH, 0.3)
    upload = os.path.getsize(photo_path)
    header, _rows = table(outputs["figures"])
    assert header == ["", "RDBUnet", "Transformer"] and table(outputs["expert"])[0] == header
    assert f"your {upload / 1024:.1f} KB photo ({WIDTH}x{HEIGHT})" in text(outputs["verdict"])
    for method in ENCODERS.values():
        size = os.path.getsize(outputs["panels"][method]["thumbnail_file"])
        cells = column(outputs["figures"], label(method))
        assert cells[FILE_ROW] == f"{size / 1024:.1f} KB, {upload / size:.0f}x smaller than your upload"
        assert f"**{label(method)}**" in outputs["verdict"] and f"**{size / 1024:.1f} KB** thumbnail" in outputs["verdict"]
        assert cells[PSNR_ROW] == "measuring ..." and column(outputs["expert"], label(method))[SSIM_ROW] == "measuring ..."
    assert info(outputs["status"]).startswith("Measuring")
    measured = metrics(raw)  # the session's last result
    for method in ENCODERS.values():
        cells, expert = column(measured["figures"], label(method)), column(measured["expert"], label(method))
        restored, upscaled = (float(cells[row].removesuffix(" dB")) for row in (PSNR_ROW, UPSCALED_ROW))
        assert 10 < restored < 60 and 10 < upscaled < 60 and 10 < float(expert[THUMBNAIL_PSNR_ROW]) < 80
        assert 0 < float(expert[SSIM_ROW]) <= 1
        assert cells[LPIPS_ROW] == "not available" or 0 <= float(cells[LPIPS_ROW]) < 1
        assert f"({restored:.1f} against {upscaled:.1f} dB of PSNR" in measured["verdict"]  # the verdict's figures
    lpips_missing = column(measured["figures"], "RDBUnet")[LPIPS_ROW] == "not available"
    assert lpips_missing == ("lpips-weights" in info(measured["status"]))
    again = metrics(raw)  # measured already: nothing to do
    assert all(skipped(value) for name, value in again.items() if name != "state")


def test_a_thumbnail_that_saves_nothing_is_called_so(raw, served):
    path = served[1] / "small.jpg"
    photo_like(WIDTH, HEIGHT, seed=5).save(path, quality=10)
    outputs = encode(raw, str(path), "RDBUnet", 0.8)
    assert column(outputs["figures"], "RDBUnet")[FILE_ROW].endswith("x larger than your upload")
    assert "It is not smaller than your upload" in outputs["verdict"]


def test_the_lite_switch_encodes_with_the_lite_models(raw, photo_path):
    """Each architecture's panel shows its lite model's real file, which names that model, and the
    switch itself re-encodes."""
    outputs = encode(raw, photo_path, BOTH, 0.3, True, api="/encode_on_lite_change")
    assert table(outputs["expert"])[0] == ["", "RDBUnet lite", "Transformer lite"]
    for architecture, method in (("rdbunet", "rdbunet-lite"), ("transformer", "transformer-lite")):
        panel = outputs["panels"][architecture]
        thumbnail = panel["thumbnail_file"]
        assert method in Path(thumbnail).name and find_marker(Path(thumbnail).read_bytes()).encoder == method
        assert shown(panel["column"]) and panel["heading"] == f"### {label(method)}"  # the panel says which model
        assert f'alt="{label(method)} thumbnail' in panel["thumbnail"]
        assert column(outputs["expert"], label(method))["Model"].startswith(f"{method}, trained ")
    outputs = encode(raw, photo_path, "RDBUnet", 0.3, False)
    assert table(outputs["expert"])[0] == ["", "RDBUnet"] and outputs["panels"]["rdbunet"]["heading"] == "### RDBUnet"


def test_releasing_the_slider_or_changing_the_encoder_gives_a_new_result(raw, photo_path):
    first = encode(raw, photo_path, "RDBUnet", 0.2)
    second = encode(raw, photo_path, "RDBUnet", 0.45, api="/encode_on_release")
    assert achieved_bpp(second["expert"], "rdbunet") > achieved_bpp(first["expert"], "rdbunet") * 1.5
    assert (Path(second["panels"]["rdbunet"]["thumbnail_file"]).read_bytes()
            != Path(first["panels"]["rdbunet"]["thumbnail_file"]).read_bytes())
    third = encode(raw, photo_path, "Transformer", 0.45, api="/encode_on_encoder_change")
    assert table(third["expert"])[0] == ["", "Transformer"]
    assert shown(third["panels"]["transformer"]["column"]) and not shown(third["panels"]["rdbunet"]["column"])


@pytest.mark.parametrize("region_side", [None, 128])
def test_chart_stars_lie_on_their_lines_and_carry_the_tables_figures(raw, photo_path, monkeypatch, region_side):
    if region_side:
        monkeypatch.setattr(photo_curves, "REGION_SIDE", {"cpu": region_side, "cuda": region_side})
    encode(raw, photo_path, BOTH, 0.3)
    measured = metrics(raw)
    drawn = chart(raw)
    assert shown(drawn["charts"]) and drawn["status"] == ""
    figure, reference = (json.loads(drawn[name]["plot"]) for name in ("chart", "reference_chart"))
    traces = {trace["name"]: trace for trace in figure["data"]}
    for name in ("RDBUnet thumbnail, restored", "RDBUnet thumbnail, only upscaled", "Transformer thumbnail, restored",
                 "plain JPEG thumbnail, only upscaled", "plain JPEG thumbnail, restored by a decoder"):
        assert len(traces[name]["x"]) == len(photo_curves.CURVE_RATES), name
    references = {trace["name"]: trace for trace in reference["data"]}
    for name in ("the whole photo as JPEG", "the whole photo as WebP", "the whole photo as AVIF"):
        assert references[name]["line"]["dash"] == "dash"
    assert "RDBUnet thumbnail, restored" in references
    kilobytes = WIDTH * HEIGHT / 8 / 1000  # per bpp: the x axis is the whole photo's file size
    for method in ENCODERS.values():
        star, line = traces[f"{label(method)}: your setting"], traces[f"{label(method)} thumbnail, restored"]
        assert star["marker"]["symbol"] == "star" and references[f"{label(method)}: your setting"] == star
        assert any(abs(star["x"][0] - x) < 1e-9 and abs(star["y"][0] - y) < 1e-9 for x, y in zip(line["x"], line["y"]))
        if not region_side:  # measured on the whole photo, as the table's figures are
            assert abs(star["x"][0] / kilobytes - achieved_bpp(measured["expert"], method)) < 1e-3
            psnr = float(column(measured["figures"], label(method))[PSNR_ROW].removesuffix(" dB"))
            assert abs(star["y"][0] - psnr) < 0.01
    title = figure["layout"]["title"]["text"]
    if region_side:
        assert title.endswith(f"the centre {region_side}x{region_side} pixels (outlined)")
        assert "measured on the same region as the lines" in drawn["chart_note"]
        assert shown(drawn["region"])
        preview = Image.open(drawn["region"]["value"]).convert("RGB")
        left, top = (WIDTH - region_side) // 2 // 8 * 8, (HEIGHT - region_side) // 2 // 8 * 8  # on the JPEG grid
        assert preview.size == (WIDTH, HEIGHT)  # small enough to be shown as it is
        assert preview.getpixel((left, top + region_side // 2)) == preview.getpixel((left + region_side, top)) \
            == (255, 40, 40)  # the region outlined
    else:
        assert title.endswith("your whole photo") and not shown(drawn["region"])


def test_decode_tab_restores_a_downloaded_thumbnail_and_names_the_model(raw, encoded):
    thumbnail, _, _ = encoded["transformer", 0.2]
    for decoder, checkpoint in (("Faithful", "transformer"), ("Fast", "transformer-fast"),
                                ("Sharp", "transformer-sharp")):
        outputs = decode(raw, thumbnail, decoder)
        assert shown(outputs["result"]) and Image.open(outputs["restored_file"]).size == (WIDTH, HEIGHT)
        note = info(outputs["status"])
        assert f"Restored a {WIDTH}x{HEIGHT} photo from {Path(thumbnail).name}" in note
        assert f"with the {decoder.lower()} decoder of {checkpoint}, trained " in note
        assert outputs["restored_file"].endswith(f"_restored_{decoder.lower()}.png")
        size, images = viewer(outputs["viewer"])
        assert size == (WIDTH, HEIGHT)
        assert fetch(raw, images["The thumbnail, scaled up"]) == Path(thumbnail).read_bytes()
        assert fetch(raw, images["Restored"]) == Path(outputs["restored_file"]).read_bytes()
    refused = decode(raw, thumbnail, "Blurry")
    assert error(refused["status"]).startswith("Choose the decoder: Faithful, Fast, Sharp")
    assert not shown(refused["result"])


def test_the_encode_tab_restores_the_same_thumbnail_with_the_decoder_chosen(raw, photo_path):
    faithful = encode(raw, photo_path, "RDBUnet", 0.3)["panels"]["rdbunet"]
    for decoder, label in (("Sharp", "RDBUnet, sharp decoder"), ("Fast", "RDBUnet, fast decoder")):
        outputs = encode(raw, photo_path, "RDBUnet", 0.3, api="/encode_on_decoder_change", decoder=decoder)
        panel = outputs["panels"]["rdbunet"]
        assert panel["heading"] == f"### {label}" and f"**{label}**" in outputs["verdict"]
        assert Path(panel["thumbnail_file"]).read_bytes() == Path(faithful["thumbnail_file"]).read_bytes()
        checkpoint = f"rdbunet-{decoder.lower()}"  # the decoder that restored it (the test models' stand-ins)
        assert column(outputs["expert"], label)["Model"].startswith(f"{checkpoint}, trained ")
    lite = encode(raw, photo_path, "RDBUnet", 0.3, lite=True, decoder="Sharp")["panels"]["rdbunet"]
    assert lite["heading"] == "### RDBUnet lite"  # no sharp decoder: the lite model's own


@pytest.fixture(scope="module")
def tabs():
    """The Encode and Decode tabs built as the page builds them, to call their upload handlers (the
    page's own events, not in the API)."""
    with gr.Blocks():
        return EncodeTab(), DecodeTab()


def test_uploads_are_answered_from_their_headers(served, tabs, encoded, photo_path):
    encode_tab_, decode_tab_ = tabs
    answer = encode_tab_.check_upload(photo_path)
    assert info(answer[encode_tab_.status]) == f"photo.png: {WIDTH}x{HEIGHT} pixels. Press Encode."
    assert not answer[encode_tab_.result_box].visible and answer[encode_tab_.encoded] is None  # a new photo
    assert encode_tab_.check_upload(None) == {encode_tab_.status: ""}
    with pytest.raises(UserError, match=r"^Could not use text\.txt: the file is not a readable image"):
        encode_tab_.check_upload(_write(served[1], "text.txt", b"this is not a photo"))
    thumbnail = encoded["rdbunet", 0.2][0]
    size = os.path.getsize(thumbnail)
    answer = decode_tab_.check_thumbnail(thumbnail)
    assert info(answer[decode_tab_.status]).endswith(
        f"a {size / 1024:.1f} KB rdbunet thumbnail of a {WIDTH}x{HEIGHT} photo. Press Restore.")
    plain = _write(served[1], "plain.jpg", lambda path: photo_like(64, 64).save(path, "JPEG"))
    with pytest.raises(UserError, match=r"^Could not use plain\.jpg: this JPEG has no HyperThumb marker"):
        decode_tab_.check_thumbnail(plain)


def test_decode_tab_restores_a_lite_thumbnail_with_either_decoder(raw, served):
    """A lite model's thumbnail (made by the library) decodes with its own decoder, a fast one."""
    import hyperthumb

    path = served[1] / "lite.jpg"
    path.write_bytes(hyperthumb.load_model("rdbunet-lite", device="cpu").encode(
        photo_like(WIDTH, HEIGHT, seed=6), target_bpp=0.3).jpeg)
    for decoder in ("Faithful", "Fast"):
        outputs = decode(raw, str(path), decoder)
        assert Image.open(outputs["restored_file"]).size == (WIDTH, HEIGHT)
        assert "decoder of rdbunet-lite, trained " in info(outputs["status"])


def test_decode_tab_refuses_a_plain_jpeg(raw, served):
    path = served[1] / "plain.jpg"
    photo_like(WIDTH, HEIGHT).save(path, quality=80)
    outputs = decode(raw, str(path))
    message = error(outputs["status"])
    assert "plain.jpg" in message and "marker" in message
    assert not shown(outputs["result"]) and skipped(outputs["viewer"]) and skipped(outputs["restored_file"])


def _trial(client: Client, shown_trial: str = "") -> tuple[str, str, str, str]:
    """(trial id, original, A, B) of a new trial for the client's session, other than `shown_trial`'s."""
    inputs = ("tester", "", shown_trial) if shown_trial else ("tester", "")  # the shown trial is an optional input
    trial_id, original, left, right, _progress, status = client.predict(*inputs, api_name="/study_trial")
    assert info(status).endswith("Which side is closer to the original? a, b, = (the same); space for another crop.")
    return trial_id, original, left, right


def test_study_votes_land_once_each_and_only_from_their_session(client, served):
    trial_id, original, left, right = _trial(client)
    assert Image.open(original).size == Image.open(left).size == Image.open(right).size  # one crop, 1:1
    assert "rdbunet" not in trial_id + left + right and "transformer" not in left + right  # blind
    progress, status = client.predict(trial_id, "left", api_name="/study_vote")
    # the session's first trial is the practice one, whose answer is known: the status says how it went
    assert info(status).startswith(("Practice trial passed", "That was the practice trial"))
    assert "session: 1." in progress
    replay = client.predict(trial_id, "right", api_name="/study_vote")
    assert "already" in error(replay[-1]) and skipped(replay[0])
    assert "not issued to this session" in error(client.predict("forged", "left", api_name="/study_vote")[-1])
    other = Client(client.src, verbose=False)  # another browser session cannot answer this one's trial
    second_id, *_ = _trial(client)
    assert "not issued to this session" in error(other.predict(second_id, "left", api_name="/study_vote")[-1])
    with sqlite3.connect(served[1] / "labels.sqlite") as connection:
        rows = connection.execute("SELECT trial_id, choice FROM votes").fetchall()
    assert rows == [(trial_id, "left")]


def test_a_missed_practice_trial_is_told_to_the_annotator(client, served):
    newcomer = Client(client.src, verbose=False)
    trial_id, *_ = newcomer.predict("newcomer", "", api_name="/study_trial")
    with sqlite3.connect(served[1] / "labels.sqlite") as connection:
        expected, = connection.execute("SELECT expected FROM trials WHERE id = ?", (trial_id,)).fetchone()
    _progress, status = newcomer.predict(trial_id, "right" if expected == "left" else "left", api_name="/study_vote")
    assert info(status).startswith("That was the practice trial") and "left out of the results" in text(status)


def test_the_study_undo_frees_the_last_trial(client):
    trial_id, *_ = _trial(client)
    client.predict(trial_id, "same", api_name="/study_vote")
    shown_again, *_crops, _progress, status = client.predict(api_name="/study_undo")
    assert shown_again == trial_id and "judge this trial again" in info(status)
    assert info(client.predict(trial_id, "right", api_name="/study_vote")[-1]) == "Vote recorded."
    fresh = Client(client.src, verbose=False).predict(api_name="/study_undo")
    assert "no vote to undo" in error(fresh[-1]) and all(map(skipped, fresh[:-1]))


def test_another_crop_shows_another_pair_of_sides(client):
    client.predict(_trial(client)[0], "left", api_name="/study_vote")  # past the practice trial, shown until answered
    first = _trial(client)
    second = _trial(client, shown_trial=first[0])
    pixels = [[np.asarray(Image.open(side)) for side in trial[2:]] for trial in (first, second)]
    assert second[0] != first[0] and not all(map(np.array_equal, *pixels))


SCORE_HEADERS = ["method", "size", "preferred (%)", "95 % range (%)", "votes"]


def _overall(scores: dict) -> dict:
    """{method: (preferred %, (low %, high %), votes)} of the results table's rows over all sizes."""
    assert scores["headers"] == SCORE_HEADERS
    rows = {}
    for method, size, preferred, interval, votes in scores["data"]:
        low, high = map(int, interval.split("-"))
        assert size == "all sizes" or re.fullmatch(r"[0-9.]+ bpp", size)
        assert 0 <= low <= preferred <= high <= 100
        if size == "all sizes":
            rows[method] = (preferred, (low, high), votes)
    return rows


def test_study_results_are_public_and_the_export_needs_the_token(client, served, monkeypatch):
    for _ in range(6):
        trial_id, *_ = _trial(client)
        client.predict(trial_id, "left", api_name="/study_vote")
    prankster = Client(client.src, verbose=False)  # a name that a spreadsheet would run as a formula
    prank_trial, *_ = prankster.predict("=1+1", "", api_name="/study_trial")
    prankster.predict(prank_trial, "left", api_name="/study_vote")
    scores_plot, matrix_plot, scores, pairs, summary = client.predict(api_name="/study_results")
    assert set(_overall(scores)) <= set(STUDY_METHODS)
    assert "votes" in summary and json.loads(matrix_plot["plot"])["data"][0]["type"] == "heatmap"
    assert json.loads(scores_plot["plot"])["layout"]["yaxis"]["range"] == [0, 100]  # percentages
    assert pairs["headers"][:3] == ["method_a", "method_b", "bpp"]
    monkeypatch.delenv("HYPERTHUMB_ADMIN_TOKEN", raising=False)
    assert "needs the admin token" in error(client.predict("", api_name="/study_export")[-1])
    monkeypatch.setenv("HYPERTHUMB_ADMIN_TOKEN", "s3cret")
    refused = client.predict("guess", api_name="/study_export")
    assert all(map(skipped, refused[:-1])) and "needs the admin token" in error(refused[-1])
    csv_path, parquet_path, status = client.predict("s3cret", api_name="/study_export")
    assert info(status).startswith("Exported") and Path(csv_path).read_text().startswith("vote_id,trial_id")
    assert ",'=1+1," in Path(csv_path).read_text()  # plain text in a spreadsheet
    parquet = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed")
    with sqlite3.connect(served[1] / "labels.sqlite") as connection:
        stored = connection.execute("SELECT id, trial_id, choice FROM votes ORDER BY id").fetchall()
    exported = parquet.read_table(parquet_path).to_pylist()
    assert [(row["vote_id"], row["trial_id"], row["choice"]) for row in exported] == stored


def test_a_reset_needs_the_token_and_keeps_a_copy(client, served, monkeypatch):
    trial_id, *_ = _trial(client)
    client.predict(trial_id, "left", api_name="/study_vote")
    database = served[1] / "labels.sqlite"
    with sqlite3.connect(database) as connection:
        before = connection.execute("SELECT COUNT(*) FROM votes").fetchone()[0]
    monkeypatch.setenv("HYPERTHUMB_ADMIN_TOKEN", "s3cret")
    assert "needs the admin token" in error(client.predict("guess", api_name="/study_reset"))
    status = info(client.predict("s3cret", api_name="/study_reset"))
    assert status.startswith(f"Removed {before} votes")
    copy = served[1] / re.search(r"as (\S+\.sqlite)", status).group(1)
    with sqlite3.connect(database) as connection, sqlite3.connect(copy) as kept:
        assert connection.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == 0
        assert kept.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == before


def test_the_results_endpoint_recovers_a_scripted_ranking_as_a_reference_fit_does(client, served, monkeypatch):
    """Votes cast through the API by a scripted annotator who always prefers the method ranked
    higher in RANKING (the test reads each issued trial's methods from SQLite, the page never
    shows them): /study_results gives the reference fit's scores, as percentages, in that order."""
    monkeypatch.setenv("HYPERTHUMB_ADMIN_TOKEN", "s3cret")
    client.predict("s3cret", api_name="/study_reset")  # only this test's votes
    ranking = ["transformer", "bicubic-jpeg", "rdbunet-sharp", "rdbunet", "transformer-sharp", "bicubic-jpeg-sr"]
    assert sorted(ranking) == sorted(STUDY_METHODS)
    database, pairs = served[1] / "labels.sqlite", len(ranking) * (len(ranking) - 1) // 2
    for _ in range(1 + pairs * 3):  # the practice trial, then each method pair at each bpp once (balanced drawing)
        trial_id, *_ = _trial(client)
        with sqlite3.connect(database) as connection:
            left, right, expected = connection.execute(
                "SELECT method_left, method_right, expected FROM trials WHERE id = ?", (trial_id,)).fetchone()
        choice = expected or ("left" if ranking.index(left) < ranking.index(right) else "right")
        status = info(client.predict(trial_id, choice, api_name="/study_vote")[-1])
        assert status == ("Vote recorded." if expected is None else
                          f"Practice trial passed (side {'B' if expected == 'left' else 'A'} was the blurred one): "
                          "your votes count from now on.")
    *_charts, scores, _pairs, summary = client.predict(api_name="/study_results")
    assert summary.startswith(f"**{pairs * 3} votes**")
    overall = _overall(scores)
    assert [overall[method][0] for method in ranking] == sorted((row[0] for row in overall.values()), reverse=True)
    assert len({row[0] for row in overall.values()}) == len(ranking)  # told apart, in that order
    counted = [vote for vote in VoteStore(database).votes() if not vote["practice"]]
    reference = reference_fit(counted, STUDY_METHODS, prior=0.5)
    for method, expected_score in zip(STUDY_METHODS, reference):
        preferred, _interval, votes = overall[method]
        assert abs(preferred - preference_percent(expected_score)) <= 0.5 + 0.2 and votes == (len(ranking) - 1) * 3


def test_study_endpoints_name_every_output(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    study = {name: endpoint for name, endpoint in endpoints.items() if name.startswith("/study_")}
    assert len(study) == 7
    for name, endpoint in study.items():
        assert all(not output["label"].startswith("value_") for output in endpoint["returns"]), name


STUDY_CROP = 384  # the shipped pool's


def test_a_photo_added_to_the_study_is_cut_where_asked(client, served):
    path = served[1] / "street.png"
    photo_like(STUDY_CROP + 16, STUDY_CROP + 8, seed=7).save(path)
    status = info(client.predict(handle_file(str(path)), 392, 0, api_name="/study_add_photo"))
    assert status.startswith("Added street.png to the study pool: 1 crop(s)")
    manifest = json.loads((served[1] / "study_uploads" / "manifest.json").read_text())
    assert [crop["box"] for crop in manifest["crops"]] == [[16, 0, 400, 384]]  # centred on (392, 0), moved inside
    assert len(manifest["crops"][0]["reconstructions"]) == len(STUDY_METHODS) * 3  # every method at every bpp of the pool
    again = client.predict(handle_file(str(path)), None, None, api_name="/study_add_photo")
    assert error(again) == "Could not add street.png: this photo is in the study pool already."
    small = served[1] / "small.png"
    photo_like(STUDY_CROP - 1, 500).save(small)
    refused = client.predict(handle_file(str(small)), None, None, api_name="/study_add_photo")
    assert error(refused).startswith("Could not use small.png: the photo is 383x500; the study's crops are 384x384")


def test_an_unexpected_failure_is_a_short_message(raw, photo_path, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    encode(raw, photo_path, "RDBUnet", 0.3)  # a result on the page, which the failure clears
    monkeypatch.setattr(encode_tab, "method_codec", broken)
    outputs = encode(raw, photo_path, "RDBUnet", 0.3)
    message = error(outputs["status"])
    assert "Something went wrong" in message and "simulated bug" not in message  # the details go to the log only
    assert "simulated bug" in caplog.text
    assert_cleared(outputs, raw)


def test_a_session_folder_and_its_uploads_go_with_its_session():
    request = SimpleNamespace(session_hash="test-session")
    folder = sessions.request_folder(request)
    assert folder.parent == sessions.SESSIONS / "test-session" and folder.is_dir()
    uploads = sessions.use_own_upload_folder()  # Gradio's upload cache: a folder per file
    example, upload = uploads / "test-example", uploads / "test-upload"
    example.mkdir(parents=True)
    (example / "photo.png").write_bytes(b"photo")
    sessions.keep_page_files()  # the page's own files so far (the examples'), which no session owns
    upload.mkdir()
    (upload / "photo.png").write_bytes(b"photo")
    try:
        for cached in (example, upload):
            assert sessions.upload({"path": str(cached / "photo.png"), "orig_name": "My photo.png"}, request) == \
                (cached / "photo.png", "My photo.png")
        sessions.end_session(request)
        assert not folder.parent.exists() and not upload.exists()
        assert example.is_dir()  # other sessions show the example too
    finally:
        shutil.rmtree(example, ignore_errors=True)
        shutil.rmtree(upload, ignore_errors=True)


def test_session_folders_are_bounded_in_age_and_size(monkeypatch, tmp_path):
    monkeypatch.setattr(sessions, "SESSIONS", tmp_path)
    monkeypatch.setattr(sessions, "OUTPUT_MAX_BYTES", 1500)
    for age, name, size in ((2 * 3600, "abandoned", 10), (30, "old", 1000), (20, "middle", 1000), (10, "new", 1000)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "file.png").write_bytes(bytes(size))
        os.utime(tmp_path / name, (time.time() - age,) * 2)
    sessions.request_folder(SimpleNamespace(session_hash="current"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["current", "new"]


def _write(folder, name: str, data) -> str:
    path = folder / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        data(path)
    return str(path)


def _truncated_jpeg(path):
    buffer = io.BytesIO()
    photo_like(WIDTH, HEIGHT).save(buffer, "JPEG", quality=90)
    path.write_bytes(buffer.getvalue()[:len(buffer.getvalue()) // 3])


BAD_INPUTS = {
    "text.txt": (b"this is not a photo", "not a readable image"),
    "empty.jpg": (b"", "empty"),
    "garbage.png": (b"\x89PNG\r\n\x1a\nnot really", "not a readable image"),
    "truncated.jpg": (_truncated_jpeg, "not a readable image"),
    "bomb.png": (lambda path: Image.new("1", (12000, 9000)).save(path), "over the limit"),
    "tiny.png": (lambda path: photo_like(20, 40).save(path), "at least 32 pixels"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_gets_a_sentence_and_clears_the_last_result(raw, served, encoded, photo_path, name, caplog):
    data, reason = BAD_INPUTS[name]
    path = _write(served[1], name, data)
    encode(raw, photo_path, "RDBUnet", 0.3)  # a result on the page
    with caplog.at_level(logging.INFO, logger="hyperthumb.app"):
        outputs = encode(raw, path, "RDBUnet", 0.3)
    message = error(outputs["status"])
    assert message.startswith(f"Could not use {name}: ") and reason in message and message.endswith(".")
    assert not ERROR_CLASS.search(message) and "/" not in message and "Traceback" not in message
    assert str(served[1]) not in message and tempfile.gettempdir() not in message
    logged = [r for r in caplog.records if r.name == "hyperthumb.app"]
    assert len(logged) == 1 and logged[0].exc_info is None  # one line, no traceback
    assert_cleared(outputs, raw)  # a result of another photo is not left beside the error
    restored = decode(raw, encoded["rdbunet", 0.2][0])["restored_file"]  # the server goes on
    assert Image.open(restored).size == (WIDTH, HEIGHT)


def test_a_bad_thumbnail_is_named_plainly(raw, served):
    path = _write(served[1], "holiday.jpg", b"\xff\xd8\xff\xe0 broken")
    message = error(decode(raw, path)["status"])
    assert message.startswith("Could not use holiday.jpg: ") and not ERROR_CLASS.search(message)
    assert "/" not in message


def test_thumbnails_the_decode_tab_cannot_restore_are_named(raw, served, encoded, caplog):
    jpeg = Path(encoded["rdbunet", 0.2][0]).read_bytes()
    cases = {"huge.jpg": (with_marker(jpeg, width=10000, height=6000), "over this server's limit of 50 MP"),
             "unknown.jpg": (with_marker(jpeg, encoder="no-such-model"), "which this server does not have"),
             "cut.jpg": (scan_cut_short(jpeg), "damaged")}
    for name, (data, reason) in cases.items():
        with caplog.at_level(logging.INFO, logger="hyperthumb.app"):
            outputs = decode(raw, _write(served[1], name, data))
        message = error(outputs["status"])
        assert message.startswith(f"Could not use {name}: ") and reason in message, message
        assert "/" not in message and not ERROR_CLASS.search(message)
        assert not shown(outputs["result"]) and skipped(outputs["restored_file"])
    assert all(record.exc_info is None for record in caplog.records)  # user errors: no traceback logged


BAD_SETTINGS = {"bpp 0": ("RDBUnet", 0, "target bpp"), "bpp as text": ("RDBUnet", "abc", "target bpp"),
                "bpp huge": ("RDBUnet", 1e308, "target bpp"), "no such encoder": ("Nonsense", 0.3, "encoder")}


@pytest.mark.parametrize("case", BAD_SETTINGS)
def test_api_settings_beyond_the_page_controls_get_a_sentence(raw, photo_path, case, caplog):
    choice, bpp, reason = BAD_SETTINGS[case]
    with caplog.at_level(logging.INFO, logger="hyperthumb.app"):
        outputs = encode(raw, photo_path, choice, bpp)
    message = error(outputs["status"])
    assert reason in message and "went wrong" not in message
    assert not shown(outputs["result"]) and not shown(outputs["charts"])
    assert all(record.exc_info is None for record in caplog.records)


def _exif_rotated(path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: viewers rotate it 90 degrees clockwise
    photo_like(WIDTH, HEIGHT).save(path, "JPEG", quality=90, exif=exif)


def _sixteen_bit(path):
    grey = np.asarray(photo_like(WIDTH, HEIGHT).convert("L"), dtype=np.uint16) * 257
    Image.fromarray(grey).save(path)


UNUSUAL_INPUTS = {
    "rgba.png": (lambda path: photo_like(WIDTH, HEIGHT).convert("RGBA").save(path), (WIDTH, HEIGHT)),
    "sixteen_bit.png": (_sixteen_bit, (WIDTH, HEIGHT)),
    "grey.png": (lambda path: photo_like(WIDTH, HEIGHT).convert("L").save(path), (WIDTH, HEIGHT)),
    "cmyk.jpg": (lambda path: photo_like(WIDTH, HEIGHT).convert("CMYK").save(path, quality=90), (WIDTH, HEIGHT)),
    "exif_rotated.jpg": (_exif_rotated, (HEIGHT, WIDTH)),
}


@pytest.mark.parametrize("name", UNUSUAL_INPUTS)
def test_unusual_photos_are_encoded_upright_in_rgb(raw, served, name):
    make, size = UNUSUAL_INPUTS[name]
    panel = encode(raw, _write(served[1], name, make), "RDBUnet", 0.3)["panels"]["rdbunet"]
    restored = Image.open(panel["restored_file"])
    assert (restored.mode, restored.size) == ("RGB", size)
    assert viewer(panel["viewer"])[0] == size  # the viewer shows it upright too
