"""The web app, served for real on a local port and driven through gradio_client."""
from __future__ import annotations

import io
import sqlite3

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.app_server import running_app
from tests.conftest import photo_like

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


def achieved_bpp(table: dict, method: str) -> float:
    rows = {row[0]: row[1:] for row in table["data"]}
    return float(rows["achieved bpp"][table["headers"].index(method) - 1].split()[0])


@pytest.fixture(scope="module")
def encoded(client, photo_path) -> dict:
    """Encodes with both encoders at two targets: {(method, target): (thumbnail path, restored path, bpp)}."""
    results = {}
    for target in (0.2, 0.45):
        outputs = client.predict(handle_file(photo_path), "Both, side by side", target, api_name="/encode")
        *panels, table = outputs
        for i, method in enumerate(("rdbunet", "transformer")):
            _shown, (_original, _restored), thumbnail_file, restored_file = panels[4 * i:4 * i + 4]
            results[method, target] = (thumbnail_file, restored_file, achieved_bpp(table, method))
    return results


@pytest.mark.parametrize("method", ["rdbunet", "transformer"])
@pytest.mark.parametrize("target", [0.2, 0.45])
def test_encode_meets_the_target_with_a_real_file(encoded, method, target):
    thumbnail, restored, bpp = encoded[method, target]
    assert abs(bpp - target) <= 0.05 * target
    jpeg = open(thumbnail, "rb").read()
    assert len(jpeg) * 8 / (WIDTH * HEIGHT) == pytest.approx(bpp, abs=1e-4)  # the table reports the real file
    assert Image.open(io.BytesIO(jpeg)).size == (WIDTH // 4, 64)  # 240 is padded to 256 before the 4x
    assert Image.open(restored).size == (WIDTH, HEIGHT)


def test_quality_metrics_follow_the_result(client, photo_path):
    table = client.predict(handle_file(photo_path), "RDBUnet", 0.3, api_name="/encode")[-1]
    rows = {row[0]: row[1] for row in table["data"]}
    assert rows["HR SSIM"] == "measuring ..." and float(rows["encode time (s)"]) > 0
    rows = {row[0]: row[1] for row in client.predict(api_name="/metrics")["data"]}  # the session's last result
    assert 10 < float(rows["HR PSNR, RGB (dB)"].split()[0]) < 60 and 0 < float(rows["HR SSIM"]) <= 1
    assert rows["LPIPS, RGB"].startswith("unavailable") or 0 <= float(rows["LPIPS, RGB"].split()[0]) < 1


def test_rate_distortion_chart_comes_after(client, photo_path):
    figure = client.predict(handle_file(photo_path), "Transformer", 0.3, api_name="/rate_distortion")
    assert figure["type"] == "plotly"
    for name in ("rdbunet", "transformer", "bicubic-jpeg", "this result"):
        assert f'"name":"{name}"' in figure["plot"]


def test_decode_tab_restores_a_downloaded_thumbnail(client, encoded):
    thumbnail, _, _ = encoded["transformer", 0.2]
    shown, download, note = client.predict(handle_file(thumbnail), api_name="/decode")
    assert Image.open(download).size == (WIDTH, HEIGHT)
    assert f"{WIDTH}x{HEIGHT}" in note


def test_decode_tab_refuses_a_plain_jpeg(client, served):
    path = served[1] / "plain.jpg"
    photo_like(WIDTH, HEIGHT).save(path, quality=80)
    with pytest.raises(AppError, match="marker"):
        client.predict(handle_file(str(path)), api_name="/decode")


def test_a_label_is_stored_and_read_back(client, served, photo_path):
    original, (a, b), status = client.predict(handle_file(photo_path), 0.25, api_name="/label_pair")
    assert "rdbunet" not in original + a + b + status and "transformer" not in a + b + status  # blind
    assert Image.open(a).size == Image.open(b).size == (WIDTH, HEIGHT)
    saved = client.predict("A", "A looks sharper", api_name="/label_submit")  # the pair is session state
    assert "Saved label #1" in saved
    with sqlite3.connect(served[1] / "labels.sqlite") as connection:
        connection.row_factory = sqlite3.Row
        (row,) = connection.execute("SELECT * FROM labels").fetchall()
    assert row["method_a"] != row["method_b"]
    assert {row["method_a"], row["method_b"]} <= {"rdbunet", "transformer", "bicubic-jpeg"}
    assert (row["choice"], row["winner"], row["note"], row["bpp"]) == ("A", row["method_a"], "A looks sharper", 0.25)
    assert f"A was **{row['method_a']}**" in saved
    figure, table, csv = client.predict(api_name="/label_results_refresh")
    assert len(open(csv).read().strip().splitlines()) == 2  # header + the one label
    assert {r[0] for r in table["data"]} == {row["method_a"], row["method_b"]}


def test_judging_without_a_pair_is_refused(served):
    fresh = Client(served[0].src, verbose=False)  # a new session holds no pair
    with pytest.raises(AppError, match="Show a pair first"):
        fresh.predict("B", "", api_name="/label_submit")


def test_an_unexpected_failure_is_a_short_message(client, photo_path, monkeypatch, caplog):
    import app

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(app, "run_method", broken)
    with pytest.raises(AppError, match="Something went wrong") as error:
        client.predict(handle_file(photo_path), "RDBUnet", 0.3, api_name="/encode")
    assert "simulated bug" not in str(error.value)  # the details go to the server log only
    assert "simulated bug" in caplog.text


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
    "text.txt": (b"this is not a photo", "Invalid file type"),
    "garbage.png": (b"\x89PNG\r\n\x1a\nnot really", "not a readable image"),
    "truncated.jpg": (_truncated_jpeg, "not a readable image"),
    "bomb.png": (lambda path: Image.new("1", (12000, 9000)).save(path), "over the limit"),
    "tiny.png": (lambda path: photo_like(20, 40).save(path), "at least 32 pixels"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_gets_a_sentence_and_the_app_keeps_serving(client, served, encoded, name):
    data, message = BAD_INPUTS[name]
    with pytest.raises(AppError, match=message) as error:
        client.predict(handle_file(_write(served[1], name, data)), "RDBUnet", 0.3, api_name="/encode")
    assert "Traceback" not in str(error.value)
    _, download, _ = client.predict(handle_file(encoded["rdbunet", 0.2][0]), api_name="/decode")
    assert Image.open(download).size == (WIDTH, HEIGHT)


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
    restored = Image.open(outputs[3])
    assert (restored.mode, restored.size) == ("RGB", size)
