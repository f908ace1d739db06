"""Evaluation: every method on a small photo at two targets; the CSV columns, summary and chart."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import torch
from PIL import Image

from hyperthumb import zoo
from hyperthumb.cache import CACHE_ENV
from hyperthumb.evaluation.bjontegaard import NO_OVERLAP
from hyperthumb.evaluation.evaluate import RESULT_COLUMNS, SUMMARY_COLUMNS, evaluate, format_summary
from hyperthumb.evaluation.methods import (
    METHODS,
    REFERENCE_FORMATS,
    BicubicJPEG,
    FullSizeReference,
    LearnedMethod,
    measure,
    method_codec,
    run_method,
)
from hyperthumb.zoo import BASELINE, CHECKPOINT_OF_METHOD, CHECKPOINTS, REFERENCE_METHODS
from tests.conftest import photo_like, small_checkpoint_model


@pytest.fixture
def small_embedded_weights(tmp_path: Path, monkeypatch) -> None:
    """Small random-weight checkpoints as the embedded default: fast, and independent of weights/."""
    folder = tmp_path / "weights"
    for name in CHECKPOINTS:
        small_checkpoint_model(name).save_pretrained(folder / name)
    monkeypatch.setattr(zoo, "EMBEDDED_WEIGHTS", folder)
    with zoo.use_zoo(zoo.ModelZoo()):  # loads from the folders set above
        yield


def read_rows(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def test_evaluate_writes_each_sets_results_and_summary_and_one_chart_page(small_embedded_weights, tmp_path,
                                                                          monkeypatch):
    import hyperthumb.evaluation.evaluate as evaluate_module

    # DISTS on VGG16 would take 40 s of this test's 50 (tests/test_dists.py checks its figures)
    monkeypatch.setattr(evaluate_module, "dists_distances", lambda reference, images, **options: [0.25] * len(images))
    sets = {}
    for name, seeds in (("smooth", (4,)), ("textured", (5, 6))):
        (tmp_path / name).mkdir()
        for seed in seeds:
            photo_like(300, 200, seed=seed).save(tmp_path / name / f"photo{seed}.png")
        sets[name] = [tmp_path / name]
    out = tmp_path / "eval"
    text = evaluate(sets, [0.3, 0.6], out, max_side=256)

    for name, photos in (("smooth", 1), ("textured", 2)):
        columns, rows = read_rows(out / name / "results.csv")
        assert columns == RESULT_COLUMNS and len(rows) == photos * len(METHODS) * 2
        assert {(r["method"], float(r["target_bpp"])) for r in rows} == {(m, t) for m in METHODS for t in (0.3, 0.6)}
        assert all(float(r["bpp"]) > 0 and float(r["psnr_hr"]) > 0 for r in rows)
        assert all((r["psnr_lr"] == "") == (r["method"] in REFERENCE_METHODS) for r in rows)
        assert all((r["dists"] == "") == (r["lpips_rgb"] == "") for r in rows)  # measured where LPIPS is
        columns, summary = read_rows(out / name / "summary.csv")
        assert columns == SUMMARY_COLUMNS and len(summary) == len(METHODS) * 2
        assert {r["set"] for r in summary} == {name}
        baseline = [r for r in summary if r["method"] == BASELINE]
        assert all(float(r["bd_psnr_db"]) == pytest.approx(0.0, abs=1e-9) for r in baseline)
        assert all(r["bd_psnr_db"] == r["bd_psnr_photo_db"] == "" for r in summary if r["method"] in REFERENCE_METHODS)
        assert all(r["bd_psnr_photo_db"] != "" for r in summary if r["method"] not in REFERENCE_METHODS)
        assert f"Set {name}: {photos} photos" in text
    _, per_photo = read_rows(out / "per_photo_bd.csv")
    assert len(per_photo) == 3 * (len(METHODS) - len(REFERENCE_METHODS))
    assert (out / "summary.txt").read_text() == text
    page = (out / "rd.html").read_text()
    assert page.count("plotly.js v") == 1 and "smooth: HR PSNR" in page and "textured: HR PSNR" in page
    assert "per photo" in page


def test_reuse_keeps_earlier_rows_of_the_methods_not_run(small_embedded_weights, tmp_path):
    photo_like(256, 192, seed=7).save(tmp_path / "photo.png")
    first = tmp_path / "first"
    evaluate({"a": [tmp_path / "photo.png"]}, [0.3, 0.6], first, methods=[BASELINE, "jpeg-full"])
    evaluate({"a": [tmp_path / "photo.png"]}, [0.3, 0.6], tmp_path / "second", methods=["rdbunet"], reuse=[first])
    _, earlier = read_rows(first / "a" / "results.csv")
    _, rows = read_rows(tmp_path / "second" / "a" / "results.csv")
    assert [r for r in rows if r["method"] != "rdbunet"] == earlier
    assert sum(r["method"] == "rdbunet" for r in rows) == 2
    # evaluations run apart summarise as one, running nothing
    evaluate({"a": [tmp_path / "photo.png"]}, [0.3, 0.6], tmp_path / "both", methods=[],
             reuse=[tmp_path / "second", first])
    _, merged = read_rows(tmp_path / "both" / "a" / "results.csv")
    assert sorted(map(str, merged)) == sorted(map(str, rows))


@pytest.mark.parametrize("method", REFERENCE_METHODS)
def test_full_resolution_references_take_the_highest_quality_within_the_budget(method):
    photo = photo_like(256, 192, seed=8)
    results = []
    for target in (0.3, 1.0):
        result = run_method(method, photo, target)
        # within the budget, and not far under it: quality steps are fine on a textured photo
        assert 0.7 * target < result.bpp <= target
        assert result.thumbnail is None and result.restored.size == photo.size
        assert Image.open(io.BytesIO(result.jpeg)).format == REFERENCE_FORMATS[method][0]
        results.append(measure(photo, result))
    assert results[0]["psnr_hr"] < results[1]["psnr_hr"] and results[0]["psnr_lr"] is None
    if results[0]["dists"] is not None:  # DISTS's VGG16 weights are provisioned
        assert results[0]["dists"] > results[1]["dists"] > 0


def test_lpips_columns_are_empty_with_a_note_without_its_weights(tmp_path, monkeypatch):
    import hyperthumb.evaluation.evaluate as evaluate_module

    monkeypatch.setattr(evaluate_module, "lpips_available", lambda: False)
    photo = tmp_path / "photo.png"
    photo_like(256, 192, seed=5).save(photo)
    text = evaluate({"one": [photo]}, [0.3, 0.6], tmp_path / "eval", methods=[BASELINE])
    _, rows = read_rows(tmp_path / "eval" / "one" / "results.csv")
    assert all(r["lpips_rgb"] == r["lpips_y"] == r["dists"] == "" and r["psnr_hr"] != "" for r in rows)
    assert evaluate_module.LPIPS_NOTE in text


def test_reuse_reads_results_from_before_the_dists_column(tmp_path):
    """An older results.csv has no `dists` column: its rows join with DISTS empty, and summarise."""
    photo = tmp_path / "photo.png"
    photo_like(64, 48, seed=3).save(photo)
    older = [column for column in RESULT_COLUMNS if column != "dists"]
    (tmp_path / "old" / "a").mkdir(parents=True)
    with (tmp_path / "old" / "a" / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=older)
        writer.writeheader()
        for target, bpp, psnr in ((0.3, 0.29, 30.0), (0.6, 0.61, 33.0)):
            writer.writerow({**dict.fromkeys(older, 0.1), "image": "photo.png", "method": BASELINE,
                             "target_bpp": target, "bpp": bpp, "psnr_hr": psnr, "psnr_lr": ""})
    text = evaluate({"a": [photo]}, [0.3, 0.6], tmp_path / "new", methods=[], reuse=[tmp_path / "old"])
    columns, rows = read_rows(tmp_path / "new" / "a" / "results.csv")
    assert columns == RESULT_COLUMNS and len(rows) == 2
    assert all(r["dists"] == "" and r["lpips_rgb"] == "0.1" for r in rows)
    _, summary = read_rows(tmp_path / "new" / "a" / "summary.csv")
    assert [r["dists"] for r in summary] == ["", ""] and [r["psnr_hr"] for r in summary] == ["30.0", "33.0"]
    assert "DISTS" in text and "DISTS" in (tmp_path / "new" / "summary.md").read_text()


def test_summary_explains_an_undefined_bd_rate():
    def row(method: str, bpp: float, psnr: float, bd_rate) -> dict:
        figures = {key: None for key in SUMMARY_COLUMNS}
        return {**figures, "method": method, "target_bpp": bpp, "images": 1, "bpp": bpp, "psnr_hr": psnr,
                "bd_psnr_db": 0.0, "bd_rate_pct": bd_rate}

    overlapping = [row(BASELINE, 0.1, 30.0, 0.0), row("rdbunet", 0.1, 30.5, -10.0)]
    assert NO_OVERLAP not in format_summary(overlapping)
    disjoint = [row(BASELINE, 0.1, 30.0, 0.0), row("rdbunet", 0.1, 33.0, None)]
    assert NO_OVERLAP in format_summary(disjoint)


def test_lpips_refuses_weights_that_do_not_fit_the_model(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from hyperthumb.evaluation import lpips_weights, metrics
    from hyperthumb.evaluation.lpips_weights import load_state_dict

    state = load_state_dict()
    if state is None:
        pytest.skip("LPIPS weights are not provisioned")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    del state["lin4.model.1.weight"]
    save_file(state, str(lpips_weights.weights_path()))
    metrics._lpips_model.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="do not match"):
            metrics.lpips_distance(photo_like(64, 64), photo_like(64, 64, seed=1))
    finally:
        metrics._lpips_model.cache_clear()


def test_every_method_is_a_codec_of_its_kind():
    kinds = {name: type(method_codec(name)) for name in METHODS}
    assert kinds[BASELINE] is BicubicJPEG and {kinds[name] for name in REFERENCE_METHODS} == {FullSizeReference}
    assert all(kinds[name] is LearnedMethod for name in CHECKPOINT_OF_METHOD)
    assert all(method_codec(name).name == name for name in METHODS)
    with pytest.raises(ValueError, match="unknown method"):
        method_codec("no-such-method")


def test_the_offline_vgg_weights_are_lpips_own_linear_layers():
    """The VGG16 archive's linear layers equal those the lpips package ships (v0.1 vgg.pth): the
    converted network is LPIPS-VGG, not a look-alike."""
    import os

    import lpips

    from hyperthumb.evaluation.lpips_weights import load_state_dict

    ours = load_state_dict("vgg")
    if ours is None:
        pytest.skip("LPIPS VGG16 weights are not provisioned")
    shipped = torch.load(os.path.join(os.path.dirname(lpips.__file__), "weights", "v0.1", "vgg.pth"),
                         map_location="cpu", weights_only=True)
    assert set(shipped) <= set(ours) and all(torch.equal(shipped[key], ours[key]) for key in shipped)

