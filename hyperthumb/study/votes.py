"""Human judgements of the blind pairwise study, in SQLite, next to the automatic metrics.

A *trial* is issued to one browser session: one crop of the study pool at one bpp, two methods in
a random left/right order, and both sides' PSNR and LPIPS on that crop. A *vote* answers one trial,
once, from the session it was issued to; that rule is enforced inside the vote's own transaction,
so a replayed or forged trial id never adds a row. The file runs in WAL mode, so the results page
reads while votes are written.

Practice trials have a known answer (a heavily degraded side); an annotator who gets one wrong is
flagged, and the analysis leaves their votes out.
"""
from __future__ import annotations

import csv
import os
import secrets
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Optional, Union

CHOICES = ("left", "right", "same")
# The export's columns: one row per vote, with everything needed to analyse it without the pool.
COLUMNS = ("vote_id", "trial_id", "created_at", "annotator", "session", "crop", "bpp", "method_left",
           "method_right", "choice", "winner", "seconds", "practice", "expected", "psnr_left", "psnr_right",
           "lpips_left", "lpips_right")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trials (
    id TEXT PRIMARY KEY,               -- random, unguessable: the session proves it was issued this one
    session TEXT NOT NULL,             -- the browser session it was issued to
    annotator TEXT NOT NULL,           -- a name or the browser's anonymous id
    crop TEXT NOT NULL,                -- crop id in the pool's manifest
    bpp REAL NOT NULL,                 -- the target both sides were encoded at
    method_left TEXT NOT NULL,
    method_right TEXT NOT NULL,
    practice INTEGER NOT NULL DEFAULT 0,
    expected TEXT,                     -- the right answer of a practice trial ('left' or 'right')
    psnr_left REAL, psnr_right REAL,   -- on this crop
    lpips_left REAL, lpips_right REAL, -- on this crop; NULL without LPIPS weights
    issued_at REAL NOT NULL            -- Unix time, for the seconds a vote took
);
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trial_id TEXT NOT NULL UNIQUE REFERENCES trials(id),
    created_at TEXT NOT NULL,          -- UTC, ISO 8601
    choice TEXT NOT NULL CHECK (choice IN ('left', 'right', 'same')),
    winner TEXT,                       -- the preferred method; NULL when judged the same
    seconds REAL NOT NULL              -- from the trial's issue to the vote
);
"""


# What spreadsheets read as the start of a formula (OWASP's page on CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """`value`, with a text that a spreadsheet would evaluate made plain text by a leading apostrophe."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


class VoteRefused(ValueError):
    """A vote the store will not record, with the reason in plain words."""


@dataclass(frozen=True)
class IssuedTrial:
    id: str
    crop: str
    bpp: float
    method_left: str
    method_right: str
    practice: bool


class VoteStore:
    """A SQLite file of trials and votes. A connection per call, so it is safe across server threads."""

    def __init__(self, path: Union[str, os.PathLike]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10)
        try:  # WAL is a property of the file: set once, outside any transaction
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)
        finally:
            connection.close()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One transaction, taken with a write lock up front (so check-then-insert cannot race);
        committed on success, rolled back on error, the connection always closed."""
        connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        connection.row_factory = sqlite3.Row
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()

    def issue(self, session: str, annotator: str, crop: str, bpp: float, method_left: str, method_right: str,
              metrics_left: dict, metrics_right: dict, practice: bool = False,
              expected: Optional[str] = None) -> IssuedTrial:
        """Records a trial for `session` and returns it with its new id. `metrics_*`: `psnr`, `lpips`."""
        if method_left == method_right:
            raise ValueError("a trial compares two different methods")
        if practice and expected not in ("left", "right"):
            raise ValueError("a practice trial needs its expected answer, 'left' or 'right'")
        trial = IssuedTrial(secrets.token_urlsafe(16), crop, float(bpp), method_left, method_right, practice)
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO trials (id, session, annotator, crop, bpp, method_left, method_right, practice, expected,"
                " psnr_left, psnr_right, lpips_left, lpips_right, issued_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (trial.id, session, annotator, crop, trial.bpp, method_left, method_right, int(practice), expected,
                 metrics_left.get("psnr"), metrics_right.get("psnr"), metrics_left.get("lpips"),
                 metrics_right.get("lpips"), time.time()))
        return trial

    def vote(self, trial_id: str, session: str, choice: str) -> dict:
        """Records the answer to a trial issued to `session`, once; returns the vote as exported."""
        if choice not in CHOICES:
            raise VoteRefused(f"a vote is one of {', '.join(CHOICES)}, not {choice!r}")
        with self._connect() as connection:
            trial = connection.execute("SELECT * FROM trials WHERE id = ?", (trial_id,)).fetchone()
            if trial is None or trial["session"] != session:
                raise VoteRefused("this trial was not issued to this session")
            if connection.execute("SELECT 1 FROM votes WHERE trial_id = ?", (trial_id,)).fetchone():
                raise VoteRefused("this trial has been voted on already")
            winner = {"left": trial["method_left"], "right": trial["method_right"]}.get(choice)
            cursor = connection.execute(
                "INSERT INTO votes (trial_id, created_at, choice, winner, seconds) VALUES (?, ?, ?, ?, ?)",
                (trial_id, datetime.now(timezone.utc).isoformat(timespec="seconds"), choice, winner,
                 round(time.time() - trial["issued_at"], 3)))
            return self._select(connection, "WHERE v.id = ?", (cursor.lastrowid,))[0]

    def undo(self, session: str) -> Optional[dict]:
        """Removes the session's latest vote (its trial can be answered again); None if it has none."""
        with self._connect() as connection:
            last = self._select(connection, "WHERE t.session = ? ORDER BY v.id DESC LIMIT 1", (session,))
            if last:
                connection.execute("DELETE FROM votes WHERE id = ?", (last[0]["vote_id"],))
            return last[0] if last else None

    def reset(self) -> tuple[int, Path]:
        """Removes every trial and vote, after copying them to a new SQLite file beside this one, in
        one transaction (no vote lands between the copy and the removal); returns the number of votes
        removed and the copy's path."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        backup = self.path.with_name(f"{self.path.stem}.before-reset-{stamp}{self.path.suffix}")
        with self._connect() as connection:  # holds the write lock; in WAL mode a reader still copies
            reader, copy = sqlite3.connect(self.path, timeout=10), sqlite3.connect(backup)
            try:
                reader.backup(copy)
            finally:
                copy.close()
                reader.close()
            removed = connection.execute("DELETE FROM votes").rowcount
            connection.execute("DELETE FROM trials")
        return removed, backup

    @staticmethod
    def _select(connection: sqlite3.Connection, where: str = "", parameters: tuple = ()) -> list[dict]:
        rows = connection.execute(
            "SELECT v.id AS vote_id, v.trial_id, v.created_at, t.annotator, t.session, t.crop, t.bpp, t.method_left,"
            " t.method_right, v.choice, v.winner, v.seconds, t.practice, t.expected, t.psnr_left, t.psnr_right,"
            f" t.lpips_left, t.lpips_right FROM votes v JOIN trials t ON t.id = v.trial_id {where}",
            parameters).fetchall()
        return [dict(row) for row in rows]

    def condition_of(self, trial_id: str) -> Optional[tuple[str, str, str, float]]:
        """The trial's (crop, method, method, bpp), methods sorted as in `condition_counts`; None if unknown."""
        with self._connect() as connection:
            row = connection.execute("SELECT crop, method_left, method_right, bpp FROM trials WHERE id = ?",
                                     (trial_id,)).fetchone()
        return None if row is None else (row[0], *sorted((row[1], row[2])), row[3])

    def votes(self) -> list[dict]:
        """Every vote, oldest first, with its trial (columns COLUMNS)."""
        with self._connect() as connection:
            return self._select(connection, "ORDER BY v.id")

    def vote_on(self, trial_id: str) -> Optional[dict]:
        """The vote on a trial, as exported; None if it has none."""
        with self._connect() as connection:
            votes = self._select(connection, "WHERE v.trial_id = ?", (trial_id,))
        return votes[0] if votes else None

    def session_votes(self, session: str) -> int:
        with self._connect() as connection:
            return connection.execute("SELECT COUNT(*) FROM votes v JOIN trials t ON t.id = v.trial_id"
                                      " WHERE t.session = ?", (session,)).fetchone()[0]

    def has_practiced(self, annotator: str) -> bool:
        with self._connect() as connection:
            return connection.execute("SELECT 1 FROM votes v JOIN trials t ON t.id = v.trial_id"
                                      " WHERE t.annotator = ? AND t.practice = 1", (annotator,)).fetchone() is not None

    def flagged_annotators(self) -> set[str]:
        """Annotators who missed a practice trial's known answer."""
        with self._connect() as connection:
            rows = connection.execute("SELECT DISTINCT t.annotator FROM votes v JOIN trials t ON t.id = v.trial_id"
                                      " WHERE t.practice = 1 AND v.choice != t.expected").fetchall()
        return {row[0] for row in rows}

    def condition_counts(self) -> dict[tuple[str, str, str, float], int]:
        """Votes per (crop, method, method, bpp), the two methods in sorted order; practice left out."""
        counts: dict[tuple[str, str, str, float], int] = {}
        with self._connect() as connection:
            rows = connection.execute("SELECT t.crop, t.method_left, t.method_right, t.bpp FROM votes v"
                                      " JOIN trials t ON t.id = v.trial_id WHERE t.practice = 0").fetchall()
        for crop, left, right, bpp in rows:
            key = (crop, *sorted((left, right)), bpp)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def to_csv(self, path: Union[str, os.PathLike]) -> Path:
        """Every vote as CSV (columns COLUMNS); returns the path. A text cell that a spreadsheet would
        run as a formula (an annotator named `=HYPERLINK(...)`) is written with a leading apostrophe."""
        path = Path(path)
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, COLUMNS)
            writer.writeheader()
            writer.writerows({key: spreadsheet_safe(value) for key, value in vote.items()} for vote in self.votes())
        return path

    def to_parquet(self, path: Union[str, os.PathLike]) -> Optional[Path]:
        """Every vote as Parquet, where pyarrow is installed (None otherwise)."""
        try:
            import pyarrow
            import pyarrow.parquet
        except ImportError:
            return None
        votes = self.votes()
        table = pyarrow.table({column: [vote[column] for vote in votes] for column in COLUMNS})
        pyarrow.parquet.write_table(table, path)
        return Path(path)
