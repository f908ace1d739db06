"""The A/B label store: what is written is read back, win rates count ties as half, CSV export."""
from __future__ import annotations

import csv
import json
import sqlite3

import pytest

from hyperthumb.labels import COLUMNS, LabelStore

METRICS_A = {"bpp": 0.301, "psnr_hr": 29.5, "lpips_rgb": None}
METRICS_B = {"bpp": 0.298, "psnr_hr": 27.1, "lpips_rgb": 0.21}


@pytest.fixture
def store(tmp_path) -> LabelStore:
    store = LabelStore(tmp_path / "nested" / "labels.sqlite")  # the folder is made on demand
    store.add("ab" * 32, "rdbunet", "bicubic-jpeg", 0.3, "A", METRICS_A, METRICS_B, note=" sharper ")
    store.add("ab" * 32, "transformer", "rdbunet", 0.3, "same", METRICS_A, METRICS_B)
    store.add("cd" * 32, "bicubic-jpeg", "transformer", 0.1, "B", METRICS_B, METRICS_A)
    return store


def test_labels_are_read_back_with_their_metrics(store):
    first, second, third = store.all()
    assert (first["id"], first["method_a"], first["method_b"], first["choice"], first["winner"]) == \
        (1, "rdbunet", "bicubic-jpeg", "A", "rdbunet")
    assert first["note"] == "sharper" and first["bpp"] == 0.3 and first["image_sha256"] == "ab" * 32
    assert first["metrics_a"] == METRICS_A and first["metrics_b"] == METRICS_B
    assert first["created_at"].endswith("+00:00")
    assert second["winner"] is None and third["winner"] == "transformer"


def test_the_file_outlives_the_store(store):
    assert len(LabelStore(store.path).all()) == 3
    with sqlite3.connect(store.path) as connection:
        stored = connection.execute("SELECT metrics_b FROM labels WHERE id = 1").fetchone()[0]
    assert json.loads(stored) == METRICS_B


def test_win_rates_count_a_tie_as_half(store):
    rates = {r["method"]: r for r in store.win_rates()}
    assert list(rates) == ["bicubic-jpeg", "rdbunet", "transformer"]
    assert (rates["rdbunet"]["wins"], rates["rdbunet"]["ties"], rates["rdbunet"]["losses"]) == (1, 1, 0)
    assert rates["rdbunet"]["win_rate"] == pytest.approx(0.75)
    assert rates["bicubic-jpeg"]["win_rate"] == 0.0
    assert rates["transformer"]["comparisons"] == 2 and rates["transformer"]["win_rate"] == pytest.approx(0.75)


def test_csv_export_has_every_label(store, tmp_path):
    with open(store.to_csv(tmp_path / "labels.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 3
    assert rows[1]["winner"] == "" and json.loads(rows[2]["metrics_a"]) == METRICS_B


@pytest.mark.parametrize("method_b, choice", [("bicubic-jpeg", "left"), ("rdbunet", "A")])
def test_invalid_labels_are_refused(store, method_b, choice):
    with pytest.raises(ValueError):
        store.add("ef" * 32, "rdbunet", method_b, 0.3, choice, METRICS_A, METRICS_B)
    assert len(store.all()) == 3


def test_an_empty_store_has_no_win_rates(tmp_path):
    assert LabelStore(tmp_path / "labels.sqlite").win_rates() == []
