"""Evaluation: every method on a small photo at two targets; the CSV columns, summary and chart."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

import hyperthumb
from hyperthumb import checkpoint
from hyperthumb.checkpoint import save_checkpoint
from hyperthumb.bjontegaard import NO_OVERLAP
from hyperthumb.evaluate import RESULT_COLUMNS, SUMMARY_COLUMNS, evaluate, format_summary
from hyperthumb.methods import BASELINE, METHODS
from tests.conftest import photo_like, small_model


@pytest.fixture
def small_embedded_weights(tmp_path: Path, monkeypatch) -> None:
    """Small random-weight checkpoints as the embedded default: fast, and independent of weights/."""
    folder = tmp_path / "weights"
    for name, encoder in (("rdbunet", "rdbunet"), ("transformer", "transformer"), ("bicubic-sr", "bicubic")):
        save_checkpoint(small_model(encoder), folder / name)
    monkeypatch.setattr(checkpoint, "EMBEDDED_WEIGHTS", folder)
    hyperthumb._cached_model.cache_clear()
    yield
    hyperthumb._cached_model.cache_clear()


def read_rows(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def test_evaluate_writes_results_summary_and_chart(small_embedded_weights, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    photo_like(300, 200, seed=4).save(photos / "photo.png")
    out = tmp_path / "eval"
    text = evaluate([photos], [0.3, 0.6], out, max_side=256)

    columns, rows = read_rows(out / "results.csv")
    assert columns == RESULT_COLUMNS
    assert len(rows) == len(METHODS) * 2
    assert {(r["method"], float(r["target_bpp"])) for r in rows} == {(m, t) for m in METHODS for t in (0.3, 0.6)}
    assert all(r["image"] == "photo.png" and float(r["bpp"]) > 0 and float(r["psnr_hr"]) > 0 for r in rows)

    columns, summary = read_rows(out / "summary.csv")
    assert columns == SUMMARY_COLUMNS and len(summary) == len(METHODS) * 2
    baseline = [r for r in summary if r["method"] == BASELINE]
    assert all(float(r["bd_psnr_db"]) == pytest.approx(0.0, abs=1e-9) for r in baseline)
    assert "Bjontegaard" in text and (out / "summary.txt").read_text() == text
    assert "plotly" in (out / "rd.html").read_text()


def test_lpips_columns_are_empty_with_a_note_without_its_weights(tmp_path, monkeypatch):
    import hyperthumb.evaluate as evaluate_module

    monkeypatch.setattr(evaluate_module, "lpips_available", lambda: False)
    photo = tmp_path / "photo.png"
    photo_like(256, 192, seed=5).save(photo)
    text = evaluate([photo], [0.3, 0.6], tmp_path / "eval", methods=[BASELINE])
    _, rows = read_rows(tmp_path / "eval" / "results.csv")
    assert all(r["lpips_rgb"] == "" and r["lpips_y"] == "" and r["psnr_hr"] != "" for r in rows)
    assert evaluate_module.LPIPS_NOTE in text


def test_summary_explains_an_undefined_bd_rate():
    def row(method: str, bpp: float, psnr: float, bd_rate) -> dict:
        figures = {key: None for key in SUMMARY_COLUMNS}
        return {**figures, "method": method, "target_bpp": bpp, "images": 1, "bpp": bpp, "psnr_hr": psnr,
                "bd_psnr_db": 0.0, "bd_rate_pct": bd_rate}

    overlapping = [row(BASELINE, 0.1, 30.0, 0.0), row("rdbunet", 0.1, 30.5, -10.0)]
    assert NO_OVERLAP not in format_summary(overlapping)
    disjoint = [row(BASELINE, 0.1, 30.0, 0.0), row("rdbunet", 0.1, 33.0, None)]
    assert NO_OVERLAP in format_summary(disjoint)
