"""The web app, served for real on a local port and driven through gradio_client."""
from __future__ import annotations

import io
import json
import logging
import os
import re
import sqlite3
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from hyperthumb.jpeg.marker import find_marker
from hyperthumb.study.pool import STUDY_METHODS
from hyperthumb.study.votes import VoteStore
from tests.app_server import running_app
from tests.conftest import photo_like
from tests.test_robustness import scan_cut_short, with_marker
from tests.test_study import reference_fit

pytestmark = pytest.mark.server

WIDTH, HEIGHT = 320, 240


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("app")
    with running_app(folder / "labels.sqlite") as url:
        yield Client(url, verbose=False, download_files=str(folder / "downloads")), folder


@pytest.fixture(scope="module")
def client(served) -> Client:
    return served[0]


@pytest.fixture(scope="module")
def photo_path(served) -> str:
    path = served[1] / "photo.png"
    photo_like(WIDTH, HEIGHT, seed=3).save(path)
    return str(path)


ROWS_BPP = "bpp"
ERROR_CLASS = re.compile(r"\b\w*(Error|Exception)\b")


def column(table: dict, method: str) -> dict:
    """{row name: cell} of one column of the metrics table."""
    index = table["headers"].index(method)
    return {row[0]: row[index] for row in table["data"]}


def achieved_bpp(table: dict, method: str) -> float:
    return float(column(table, method)[ROWS_BPP].split()[0])


def panel(outputs: tuple, method: str) -> tuple:
    """One encoder's panel in /encode's outputs: (heading, thumbnail at true size, (original,
    restored), thumbnail file, restored file); every panel is in the outputs, shown or not."""
    import app

    start = list(app.ENCODERS.values()).index(method) * (app.PANEL_OUTPUTS - 1)  # the column is no output
    return tuple(outputs[start:start + app.PANEL_OUTPUTS - 1])


def untouched(outputs) -> bool:
    """True where every output but the status line was left as it was (a skipped update)."""
    return all(isinstance(o, dict) and o.get("__type__") == "update" and set(o) <= {"__type__", "props"}
               for o in outputs[:-1])


@pytest.fixture(scope="module")
def encoded(client, photo_path) -> dict:
    """Encodes with both encoders at two targets: {(method, target): (thumbnail path, restored path, bpp)}."""
    results = {}
    for target in (0.2, 0.45):
        outputs = client.predict(handle_file(photo_path), "Both, side by side", target, api_name="/encode")
        table = outputs[-2]
        for method in ("rdbunet", "transformer"):
            _heading, _shown, (_original, _restored), thumbnail_file, restored_file = panel(outputs, method)
            results[method, target] = (thumbnail_file, restored_file, achieved_bpp(table, method))
    return results


@pytest.mark.parametrize("method", ["rdbunet", "transformer"])
@pytest.mark.parametrize("target", [0.2, 0.45])
def test_encode_meets_the_target_with_a_real_file(encoded, method, target):
    thumbnail, restored, bpp = encoded[method, target]
    assert abs(bpp - target) <= 0.05 * target
    jpeg = open(thumbnail, "rb").read()
    assert len(jpeg) * 8 / (WIDTH * HEIGHT) == pytest.approx(bpp, abs=1e-4)  # the table reports the real file
    assert Image.open(io.BytesIO(jpeg)).size == (WIDTH // 4, HEIGHT // 4)  # the exact quarter, no padding shown
    assert Image.open(restored).size == (WIDTH, HEIGHT)


def test_the_thumbnail_is_shown_at_its_true_size(client, photo_path):
    shown = panel(client.predict(handle_file(photo_path), "Transformer", 0.3, api_name="/encode"), "transformer")[1]
    assert f'width="{WIDTH // 4}" height="{HEIGHT // 4}"' in shown and "max-width:none" in shown


def test_both_columns_fit_beside_the_upload_and_quality_follows(client, photo_path):
    *_, table, status = client.predict(handle_file(photo_path), "Both, side by side", 0.3, api_name="/encode")
    assert table["headers"] == ["", "your upload", "rdbunet", "transformer"]
    upload = column(table, "your upload")
    size = os.path.getsize(photo_path)
    assert float(upload[ROWS_BPP]) == pytest.approx(size * 8 / (WIDTH * HEIGHT), abs=1e-4)
    assert f"{size / 1024:.1f} KiB" in upload["file size"] and f"{size / 1024:.1f} KiB" in status
    assert column(table, "rdbunet")["HR SSIM"] == "measuring ..."
    table, status = client.predict(api_name="/metrics")  # the session's last result
    for method in ("rdbunet", "transformer"):
        cells = column(table, method)
        assert 10 < float(cells["HR PSNR, RGB (dB)"]) < 60 and 0 < float(cells["HR SSIM"]) <= 1
        assert cells["LPIPS, RGB"] == "n/a" or 0 <= float(cells["LPIPS, RGB"]) < 1
        assert max(len(cell) for cell in cells.values()) <= 24  # no cell pushes the other column away
    assert ("n/a" in column(table, "rdbunet")["LPIPS, RGB"]) == ("lpips-weights" in status)


def test_a_thumbnail_that_saves_nothing_is_called_so(client, served):
    path = served[1] / "small.jpg"
    photo_like(WIDTH, HEIGHT, seed=5).save(path, quality=10)
    *_, table, status = client.predict(handle_file(str(path)), "RDBUnet", 0.8, api_name="/encode")
    assert "x larger" in column(table, "rdbunet")["size vs upload"]
    assert "not smaller than your upload" in status


def test_the_lite_switch_encodes_with_the_lite_models(client, photo_path):
    """Each architecture's panel shows its lite model's real file, which names that model, and the
    switch itself re-encodes."""
    outputs = client.predict(handle_file(photo_path), "Both, side by side", 0.3, True,
                             api_name="/encode_on_lite_change")
    assert outputs[-2]["headers"] == ["", "your upload", "rdbunet-lite", "transformer-lite"]
    for architecture, method in (("rdbunet", "rdbunet-lite"), ("transformer", "transformer-lite")):
        heading, shown, _slider, thumbnail, _restored = panel(outputs, architecture)
        assert method in Path(thumbnail).name and find_marker(open(thumbnail, "rb").read()).encoder == method
        assert f"{method} thumbnail:" in shown and heading.endswith(" lite")  # the panel says which model made it
    *_, table, _status = client.predict(handle_file(photo_path), "RDBUnet", 0.3, False, api_name="/encode")
    assert table["headers"] == ["", "your upload", "rdbunet"]


def test_releasing_the_slider_gives_a_new_result(client, photo_path):
    first = client.predict(handle_file(photo_path), "RDBUnet", 0.2, api_name="/encode")
    second = client.predict(handle_file(photo_path), "RDBUnet", 0.45, api_name="/encode_on_release")
    assert achieved_bpp(second[-2], "rdbunet") > achieved_bpp(first[-2], "rdbunet") * 1.5
    assert open(panel(second, "rdbunet")[3], "rb").read() != open(panel(first, "rdbunet")[3], "rb").read()
    third = client.predict(handle_file(photo_path), "Transformer", 0.45, api_name="/encode_on_encoder_change")
    assert third[-2]["headers"] == ["", "your upload", "transformer"]


def _chart(client, photo_path, choice: str) -> tuple[dict, dict, str]:
    """(plotly figure, metrics table, region preview) for `choice` at 0.3 bpp."""
    client.predict(handle_file(photo_path), choice, 0.3, api_name="/encode")
    table, _ = client.predict(api_name="/metrics")
    figure, region, _ = client.predict(api_name="/rate_distortion")
    return json.loads(figure["plot"]), table, region


@pytest.mark.parametrize("region_side", [None, 128])
def test_chart_stars_carry_the_tables_figures(client, photo_path, monkeypatch, region_side):
    import app

    if region_side:
        monkeypatch.setattr(app, "CHART_SIDE", {"cpu": region_side, "cuda": region_side})
    figure, table, region = _chart(client, photo_path, "Both, side by side")
    traces = {trace["name"]: trace for trace in figure["data"]}
    for method in ("rdbunet", "transformer", "bicubic-jpeg", "jpeg-full", "webp-full", "avif-full"):
        assert method in traces
    assert traces["jpeg-full"]["line"]["dash"] == "dash"
    label = "this result, whole photo" if region_side else "this result"
    for method in ("rdbunet", "transformer"):
        star = traces[f"{method}: {label}"]
        cells = column(table, method)
        assert abs(star["x"][0] - float(cells[ROWS_BPP])) < 0.01
        assert abs(star["y"][0] - float(cells["HR PSNR, RGB (dB)"])) < 0.01
    title = figure["layout"]["title"]["text"]
    if region_side:
        assert f"centre {region_side}x{region_side} region of this {WIDTH}x{HEIGHT} photo" in title
    else:
        assert f"whole {WIDTH}x{HEIGHT} photo" in title
    assert Image.open(region).size[0] <= 640


def test_decode_tab_restores_a_downloaded_thumbnail_and_names_the_model(client, encoded):
    thumbnail, _, _ = encoded["transformer", 0.2]
    shown, download, note = client.predict(handle_file(thumbnail), api_name="/decode")
    assert Image.open(download).size == (WIDTH, HEIGHT)
    assert f"{WIDTH}x{HEIGHT}" in note and "with transformer (checkpoint" in note
    shown_fast, download_fast, note_fast = client.predict(handle_file(thumbnail), True, api_name="/decode")
    assert Image.open(download_fast).size == (WIDTH, HEIGHT) and "with transformer-fast (checkpoint" in note_fast
    assert download_fast.endswith("_restored_fast.png") and download.endswith("_restored.png")


def test_uploads_are_answered_from_their_headers(served, encoded, photo_path):
    import app

    assert app.check_upload(photo_path).endswith(f"{WIDTH}x{HEIGHT} pixels. Choose the encoder and the target bpp, "
                                                 "then Encode.")
    thumbnail = encoded["rdbunet", 0.2][0]
    assert f"a rdbunet thumbnail of a {WIDTH}x{HEIGHT} photo" in app.check_thumbnail(thumbnail)
    plain = _write(served[1], "plain.jpg", lambda path: photo_like(64, 64).save(path, "JPEG"))
    assert app.check_thumbnail(plain).startswith("Could not use plain.jpg: this JPEG has no HyperThumb marker")


def test_decode_tab_restores_a_lite_thumbnail_with_or_without_fast(client, served):
    """A lite model's thumbnail (made by the library) decodes with its own decoder, a fast one."""
    import hyperthumb

    path = served[1] / "lite.jpg"
    path.write_bytes(hyperthumb.load_model("rdbunet-lite", device="cpu").encode(
        photo_like(WIDTH, HEIGHT, seed=6), target_bpp=0.3).jpeg)
    for fast in (False, True):
        _, download, note = client.predict(handle_file(str(path)), fast, api_name="/decode")
        assert Image.open(download).size == (WIDTH, HEIGHT) and "with rdbunet-lite (checkpoint" in note


def test_decode_tab_refuses_a_plain_jpeg(client, served):
    path = served[1] / "plain.jpg"
    photo_like(WIDTH, HEIGHT).save(path, quality=80)
    outputs = client.predict(handle_file(str(path)), api_name="/decode")
    assert untouched(outputs) and "plain.jpg" in outputs[-1] and "marker" in outputs[-1]


def _trial(client: Client, shown: str = "") -> tuple[str, str, str, str]:
    """(trial id, original, A, B) of a new trial for the client's session, other than `shown`'s."""
    inputs = ("tester", "", shown) if shown else ("tester", "")  # the shown trial is an optional input
    trial_id, original, left, right, _progress, _status = client.predict(*inputs, api_name="/study_trial")
    return trial_id, original, left, right


def test_study_votes_land_once_each_and_only_from_their_session(client, served):
    trial_id, original, left, right = _trial(client)
    assert Image.open(original).size == Image.open(left).size == Image.open(right).size  # one crop, 1:1
    assert "rdbunet" not in trial_id + left + right and "transformer" not in left + right  # blind
    progress, status = client.predict(trial_id, "left", api_name="/study_vote")
    # the session's first trial is the practice one, whose answer is known: the status says how it went
    assert status.startswith(("Practice trial passed", "That was the practice trial")) and "session: 1." in progress
    replay = client.predict(trial_id, "right", api_name="/study_vote")
    assert "already" in replay[-1]
    assert "not issued to this session" in client.predict("forged", "left", api_name="/study_vote")[-1]
    other = Client(client.src, verbose=False)  # another browser session cannot answer this one's trial
    second_id, *_ = _trial(client)
    assert "not issued to this session" in other.predict(second_id, "left", api_name="/study_vote")[-1]
    with sqlite3.connect(served[1] / "labels.sqlite") as connection:
        rows = connection.execute("SELECT trial_id, choice FROM votes").fetchall()
    assert rows == [(trial_id, "left")]


def test_a_missed_practice_trial_is_told_to_the_annotator(client, served):
    newcomer = Client(client.src, verbose=False)
    trial_id, *_ = newcomer.predict("newcomer", "", api_name="/study_trial")
    with sqlite3.connect(served[1] / "labels.sqlite") as connection:
        expected, = connection.execute("SELECT expected FROM trials WHERE id = ?", (trial_id,)).fetchone()
    _progress, status = newcomer.predict(trial_id, "right" if expected == "left" else "left", api_name="/study_vote")
    assert status.startswith("That was the practice trial") and "left out of the results" in status


def test_the_study_undo_frees_the_last_trial(client):
    trial_id, *_ = _trial(client)
    client.predict(trial_id, "same", api_name="/study_vote")
    shown_again, *_crops, _progress, status = client.predict(api_name="/study_undo")
    assert shown_again == trial_id and "judge this trial again" in status
    assert client.predict(trial_id, "right", api_name="/study_vote")[-1] == "Vote recorded."


def test_another_crop_shows_another_pair_of_sides(client):
    client.predict(_trial(client)[0], "left", api_name="/study_vote")  # past the practice trial, shown until answered
    first = _trial(client)
    second = _trial(client, shown=first[0])
    pixels = [[np.asarray(Image.open(side)) for side in trial[2:]] for trial in (first, second)]
    assert second[0] != first[0] and not all(map(np.array_equal, *pixels))


def test_study_results_are_public_and_the_export_needs_the_token(client, served, monkeypatch):
    for _ in range(6):
        trial_id, *_ = _trial(client)
        client.predict(trial_id, "left", api_name="/study_vote")
    scores_plot, matrix_plot, scores, pairs, summary = client.predict(api_name="/study_results")
    assert scores["headers"] == ["method", "bpp", "score", "low", "high", "votes"]
    assert {row[0] for row in scores["data"]} <= {"rdbunet", "transformer", "bicubic-jpeg-sr", "bicubic-jpeg"}
    assert "votes" in summary and json.loads(matrix_plot["plot"])["data"][0]["type"] == "heatmap"
    monkeypatch.delenv("HYPERTHUMB_ADMIN_TOKEN", raising=False)
    assert "needs the admin token" in client.predict("", api_name="/study_export")[-1]
    monkeypatch.setenv("HYPERTHUMB_ADMIN_TOKEN", "s3cret")
    refused = client.predict("guess", api_name="/study_export")
    assert untouched(refused) and "needs the admin token" in refused[-1]
    csv_path, parquet_path, status = client.predict("s3cret", api_name="/study_export")
    assert status.startswith("Exported") and open(csv_path).readline().startswith("vote_id,trial_id")
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
    assert "needs the admin token" in client.predict("guess", api_name="/study_reset")
    status = client.predict("s3cret", api_name="/study_reset")
    assert status.startswith(f"Removed {before} votes")
    copy = served[1] / re.search(r"as (\S+\.sqlite)", status).group(1)
    with sqlite3.connect(database) as connection, sqlite3.connect(copy) as kept:
        assert connection.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == 0
        assert kept.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == before


def test_the_results_endpoint_recovers_a_scripted_ranking_as_a_reference_fit_does(client, served, monkeypatch):
    """Votes cast through the API by a scripted annotator who always prefers the method ranked
    higher in RANKING (the test reads each issued trial's methods from SQLite, the page never
    shows them): /study_results gives the reference fit's scores, in that order, within intervals."""
    monkeypatch.setenv("HYPERTHUMB_ADMIN_TOKEN", "s3cret")
    client.predict("s3cret", api_name="/study_reset")  # only this test's votes
    ranking, database = ["transformer", "bicubic-jpeg", "rdbunet", "bicubic-jpeg-sr"], served[1] / "labels.sqlite"
    for _ in range(1 + 6 * 3):  # the practice trial, then each method pair at each bpp once (balanced drawing)
        trial_id, *_ = _trial(client)
        with sqlite3.connect(database) as connection:
            left, right, expected = connection.execute(
                "SELECT method_left, method_right, expected FROM trials WHERE id = ?", (trial_id,)).fetchone()
        choice = expected or ("left" if ranking.index(left) < ranking.index(right) else "right")
        status = client.predict(trial_id, choice, api_name="/study_vote")[-1]
        assert status == ("Vote recorded." if expected is None else
                          f"Practice trial passed (side {'B' if expected == 'left' else 'A'} was the blurred one): "
                          "your votes count from now on.")
    *_charts, scores, _pairs, summary = client.predict(api_name="/study_results")
    assert summary.startswith("**18 votes**")
    overall = {row[0]: dict(zip(scores["headers"], row)) for row in scores["data"] if row[1] == "all"}
    assert sorted(overall, key=lambda method: -overall[method]["score"]) == ranking
    counted = [vote for vote in VoteStore(database).votes() if not vote["practice"]]
    reference = reference_fit(counted, STUDY_METHODS, prior=0.5)
    for method, expected_score in zip(STUDY_METHODS, reference):
        row = overall[method]
        assert abs(row["score"] - expected_score) < 0.006 and row["low"] <= row["score"] <= row["high"]


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
    status = client.predict(handle_file(str(path)), 392, 0, api_name="/study_add_photo")
    assert status.startswith("Added street.png to the study pool: 1 crop(s)")
    manifest = json.loads((served[1] / "study_uploads" / "manifest.json").read_text())
    assert [crop["box"] for crop in manifest["crops"]] == [[16, 0, 400, 384]]  # centred on (392, 0), moved inside
    assert len(manifest["crops"][0]["reconstructions"]) == 4 * 3  # every method at every bpp of the pool
    again = client.predict(handle_file(str(path)), None, None, api_name="/study_add_photo")
    assert again == "Could not add street.png: this photo is in the study pool already."
    small = served[1] / "small.png"
    photo_like(STUDY_CROP - 1, 500).save(small)
    refused = client.predict(handle_file(str(small)), None, None, api_name="/study_add_photo")
    assert refused.startswith("Could not use small.png: the photo is 383x500; the study's crops are 384x384")


def test_an_unexpected_failure_is_a_short_message(client, photo_path, monkeypatch, caplog):
    import app

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(app, "run_method", broken)
    outputs = client.predict(handle_file(photo_path), "RDBUnet", 0.3, api_name="/encode")
    assert untouched(outputs) and "Something went wrong" in outputs[-1]
    assert "simulated bug" not in outputs[-1]  # the details go to the server log only
    assert "simulated bug" in caplog.text


def test_a_session_folder_goes_with_its_session():
    import app

    request = SimpleNamespace(session_hash="test-session")
    folder = app._session_dir(request)
    assert folder.parent == app.OUTPUT_ROOT / "test-session" and folder.is_dir()
    app.end_session(request)
    assert not folder.parent.exists()


def test_session_folders_are_bounded_in_size(monkeypatch, tmp_path):
    import app

    monkeypatch.setattr(app, "OUTPUT_ROOT", tmp_path)
    monkeypatch.setattr(app, "OUTPUT_MAX_BYTES", 1500)
    for age, name in ((30, "old"), (20, "middle"), (10, "new")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "file.png").write_bytes(bytes(1000))
        os.utime(tmp_path / name, (time.time() - age,) * 2)
    app._session_dir(SimpleNamespace(session_hash="current"))
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
def test_bad_input_gets_a_sentence_and_the_page_keeps_its_result(client, served, encoded, name, caplog):
    data, reason = BAD_INPUTS[name]
    path = _write(served[1], name, data)
    with caplog.at_level(logging.INFO, logger="hyperthumb.app"):
        outputs = client.predict(handle_file(path), "RDBUnet", 0.3, api_name="/encode")
    message = outputs[-1]
    assert untouched(outputs)  # the previous result stays on the page
    assert message.startswith(f"Could not use {name}: ") and reason in message and message.endswith(".")
    assert not ERROR_CLASS.search(message) and "/" not in message and "Traceback" not in message
    assert str(served[1]) not in message and tempfile.gettempdir() not in message
    logged = [r for r in caplog.records if r.name == "hyperthumb.app"]
    assert len(logged) == 1 and logged[0].exc_info is None  # one line, no traceback
    _, download, _ = client.predict(handle_file(encoded["rdbunet", 0.2][0]), api_name="/decode")
    assert Image.open(download).size == (WIDTH, HEIGHT)


def test_a_bad_thumbnail_is_named_plainly(client, served):
    path = _write(served[1], "holiday.jpg", b"\xff\xd8\xff\xe0 broken")
    message = client.predict(handle_file(path), api_name="/decode")[-1]
    assert message.startswith("Could not use holiday.jpg: ") and not ERROR_CLASS.search(message)
    assert "/" not in message


def test_thumbnails_the_decode_tab_cannot_restore_are_named(client, served, encoded, caplog):
    jpeg = Path(encoded["rdbunet", 0.2][0]).read_bytes()
    cases = {"huge.jpg": (with_marker(jpeg, width=10000, height=6000), "over this server's limit of 50 MP"),
             "unknown.jpg": (with_marker(jpeg, encoder="no-such-model"), "which this server does not have"),
             "cut.jpg": (scan_cut_short(jpeg), "damaged")}
    for name, (data, reason) in cases.items():
        with caplog.at_level(logging.INFO, logger="hyperthumb.app"):
            outputs = client.predict(handle_file(_write(served[1], name, data)), api_name="/decode")
        assert untouched(outputs) and outputs[-1].startswith(f"Could not use {name}: ") and reason in outputs[-1]
        assert "/" not in outputs[-1] and not ERROR_CLASS.search(outputs[-1])
    assert all(record.exc_info is None for record in caplog.records)  # user errors: no traceback logged


BAD_SETTINGS = {"bpp 0": ("RDBUnet", 0, "target bpp"), "bpp as text": ("RDBUnet", "abc", "target bpp"),
                "bpp huge": ("RDBUnet", 1e308, "target bpp"), "no such encoder": ("Nonsense", 0.3, "encoder")}


@pytest.mark.parametrize("case", BAD_SETTINGS)
def test_api_settings_beyond_the_page_controls_get_a_sentence(client, photo_path, case, caplog):
    choice, bpp, reason = BAD_SETTINGS[case]
    with caplog.at_level(logging.INFO, logger="hyperthumb.app"):
        outputs = client.predict(handle_file(photo_path), choice, bpp, api_name="/encode")
    assert untouched(outputs) and reason in outputs[-1] and "went wrong" not in outputs[-1]
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
def test_unusual_photos_are_encoded_upright_in_rgb(client, served, name):
    make, size = UNUSUAL_INPUTS[name]
    outputs = client.predict(handle_file(_write(served[1], name, make)), "RDBUnet", 0.3, api_name="/encode")
    restored = Image.open(panel(outputs, "rdbunet")[4])
    assert (restored.mode, restored.size) == ("RGB", size)
