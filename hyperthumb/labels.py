"""Human judgements from the blind A/B mode, in SQLite, next to the automatic metrics.

Each label says which of two reconstructions of the same photo at the same bpp a person preferred,
so that LPIPS and PSNR can later be checked against people. `method_a` is the method shown as A
(left) and `method_b` the one shown as B (right): together they record the randomised order.
"""
from __future__ import annotations

import csv
import json
import os
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Union

CHOICES = ("A", "B", "same")
COLUMNS = ("id", "created_at", "image_sha256", "method_a", "method_b", "bpp", "choice", "winner", "note",
           "metrics_a", "metrics_b")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,          -- UTC, ISO 8601
    image_sha256 TEXT NOT NULL,        -- of the uploaded file's bytes
    method_a TEXT NOT NULL,            -- shown as A (left)
    method_b TEXT NOT NULL,            -- shown as B (right)
    bpp REAL NOT NULL,                 -- the target both were encoded at
    choice TEXT NOT NULL CHECK (choice IN ('A', 'B', 'same')),
    winner TEXT,                       -- the preferred method; NULL when judged the same
    note TEXT NOT NULL DEFAULT '',
    metrics_a TEXT NOT NULL,           -- JSON: methods.measure() of A
    metrics_b TEXT NOT NULL            -- JSON: methods.measure() of B
)
"""


class LabelStore:
    """A SQLite file of A/B labels. Opens a connection per call, so it is safe across server threads."""

    def __init__(self, path: Union[str, os.PathLike]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            connection.execute(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed on success, rolled back on error, the connection always closed."""
        connection = sqlite3.connect(self.path, timeout=10)
        connection.row_factory = sqlite3.Row
        try:
            with connection:
                yield connection
        finally:
            connection.close()

    def _rows(self) -> list[sqlite3.Row]:
        with self._connect() as connection:
            return connection.execute(f"SELECT {', '.join(COLUMNS)} FROM labels ORDER BY id").fetchall()

    def add(self, image_sha256: str, method_a: str, method_b: str, bpp: float, choice: str,
            metrics_a: dict, metrics_b: dict, note: str = "") -> int:
        """Stores one judgement and returns its id."""
        if choice not in CHOICES:
            raise ValueError(f"choice must be one of {CHOICES}, got {choice!r}")
        if method_a == method_b:
            raise ValueError("an A/B label compares two different methods")
        winner = {"A": method_a, "B": method_b}.get(choice)
        with self._connect() as connection:
            cursor = connection.execute(
                "INSERT INTO labels (created_at, image_sha256, method_a, method_b, bpp, choice, winner, note,"
                " metrics_a, metrics_b) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (datetime.now(timezone.utc).isoformat(timespec="seconds"), image_sha256, method_a, method_b,
                 float(bpp), choice, winner, note.strip(), json.dumps(metrics_a), json.dumps(metrics_b)))
            return int(cursor.lastrowid)

    def all(self) -> list[dict]:
        """Every label, oldest first, with the metrics parsed back into dicts."""
        return [{**dict(row), "metrics_a": json.loads(row["metrics_a"]), "metrics_b": json.loads(row["metrics_b"])}
                for row in self._rows()]

    def win_rates(self) -> list[dict]:
        """Per method: comparisons, wins, ties, losses and win rate (a tie counts half), by method name."""
        counts: dict[str, dict] = {}
        for label in self._rows():
            for method in (label["method_a"], label["method_b"]):
                entry = counts.setdefault(method, {"method": method, "comparisons": 0, "wins": 0, "ties": 0,
                                                   "losses": 0})
                entry["comparisons"] += 1
                if label["winner"] is None:
                    entry["ties"] += 1
                elif label["winner"] == method:
                    entry["wins"] += 1
                else:
                    entry["losses"] += 1
        return [{**entry, "win_rate": (entry["wins"] + 0.5 * entry["ties"]) / entry["comparisons"]}
                for _, entry in sorted(counts.items())]

    def to_csv(self, path: Union[str, os.PathLike]) -> Path:
        """Writes every label to a CSV file (metrics as JSON text) and returns its path."""
        path = Path(path)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows(tuple(row) for row in self._rows())
        return path

