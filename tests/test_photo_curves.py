"""The per-photo curves the app charts, and the thumbnail inspection its Decode tab answers with."""
from __future__ import annotations

import pytest

from hyperthumb import zoo
from hyperthumb.codec.inspection import inspect_thumbnail
from hyperthumb.errors import ImageSizeError, InvalidThumbnailError
from hyperthumb.evaluation import charts
from hyperthumb.evaluation.methods import run_method
from hyperthumb.evaluation.photo_curves import (
    BASELINE,
    PLAIN_SR,
    UPSCALED,
    chart_region,
    curve_points,
    curve_rows,
    store_methods,
    upscaled,
)
from hyperthumb.zoo import ModelZoo, use_zoo
from tests.conftest import photo_like, small_checkpoint_loader


@pytest.fixture(scope="module")
def small_zoo():
    with use_zoo(ModelZoo(loader=small_checkpoint_loader)) as installed:
        yield installed


def test_the_region_is_the_whole_photo_where_it_fits_else_a_centred_block_aligned_one():
    assert chart_region((500, 300), "cpu") == (0, 0, 500, 300)
    left, top, right, bottom = chart_region((1037, 643), "cpu")
    assert (right - left, bottom - top) == (512, 512) and left % 8 == 0 and top % 8 == 0
    assert abs((left + right) / 2 - 1037 / 2) <= 8 and abs((top + bottom) / 2 - 643 / 2) <= 8
    assert chart_region((1037, 643), "cuda") == (0, 0, 1024, 643)  # a side that fits stays whole


def test_curve_points_cover_every_method_and_rate_and_add_the_thumbnails_only_upscaled(small_zoo):
    region = photo_like(96, 64, seed=2)
    methods = store_methods(["rdbunet"])
    assert methods[:3] == ["rdbunet", BASELINE, PLAIN_SR] and set(zoo.REFERENCE_METHODS) <= set(methods)
    calls = []
    points = curve_points(region, ["rdbunet", BASELINE], (0.2, 0.4), progress=lambda runs: calls.append(runs) or runs)
    assert set(points) == {(curve, rate) for curve in ("rdbunet", "rdbunet" + UPSCALED, BASELINE)
                           for rate in (0.2, 0.4)}
    assert len(calls[0]) == 4  # the runs, not the derived curves
    result = run_method("rdbunet", region, 0.4)
    assert points["rdbunet", 0.4]["bpp"] == pytest.approx(result.bpp)  # deterministic: the same file
    assert points["rdbunet" + UPSCALED, 0.4]["bpp"] == points["rdbunet", 0.4]["bpp"]
    assert upscaled(result).size == region.size
    again = curve_points(region, ["rdbunet"], (0.2, 0.4, 0.3), known=points, progress=lambda runs: calls.append(runs)
                         or runs)
    assert calls[1] == [("rdbunet", 0.3)] and again["rdbunet", 0.2] == points["rdbunet", 0.2]


def test_the_chart_names_each_way_in_plain_words_and_puts_the_star_on_its_line(small_zoo):
    region = photo_like(96, 64, seed=3)
    points = curve_points(region, ["rdbunet", "transformer", BASELINE], (0.2, 0.4))
    rows = curve_rows(points)
    marks = [{"method": "rdbunet", **points["rdbunet", 0.4]}]
    curves = ["rdbunet", "rdbunet" + UPSCALED, "transformer", BASELINE]
    figure = charts.photo_curves_figure(rows, curves, ["rdbunet", "transformer"], 96 * 64 * 16, "title", marks)
    names = [trace.name for trace in figure.data]
    assert names == ["RDBUnet thumbnail, restored", "RDBUnet thumbnail, only upscaled",
                     "Transformer thumbnail, restored", "plain JPEG thumbnail, only upscaled", "RDBUnet: your setting"]
    symbols = {trace.name: trace.marker.symbol for trace in figure.data}
    assert symbols["RDBUnet thumbnail, restored"] != symbols["Transformer thumbnail, restored"]
    line, star = figure.data[0], figure.data[-1]
    assert (star.x[0], star.y[0]) in set(zip(line.x, line.y))  # the star lies on its encoder's line
    assert charts.curve_label("webp-full") == "the whole photo as WebP"


def test_inspection_reads_the_marker_once_and_refuses_a_photo_over_the_limit(small_zoo, tmp_path):
    jpeg = run_method("rdbunet", photo_like(120, 80, seed=4), 0.5).jpeg
    info = inspect_thumbnail(jpeg)
    assert (info.model, info.size) == ("rdbunet", (120, 80)) and info.bpp == pytest.approx(len(jpeg) * 8 / 9600)
    assert inspect_thumbnail(info) is info
    (tmp_path / "thumb.jpg").write_bytes(jpeg)
    assert inspect_thumbnail(tmp_path / "thumb.jpg").jpeg == jpeg
    with pytest.raises(ImageSizeError, match=r"120x80 photo \(0\.0 MP\), over this server's limit of 0\.005 MP"):
        inspect_thumbnail(jpeg, max_pixels=5000)
    with pytest.raises(ImageSizeError):
        zoo.decode(info, max_pixels=5000)
    assert zoo.decode(info).size == (120, 80)
    with pytest.raises(InvalidThumbnailError, match="empty"):
        inspect_thumbnail(b"")
