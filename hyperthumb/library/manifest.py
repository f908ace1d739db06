"""The manifest of a library run: one Parquet row per photo, what became of it and at what cost.

It is rewritten whole into a new file that then replaces the old one, so whatever stops a run
(Ctrl-C, a crash, a full disk) leaves either the previous manifest or the new one, never half of
one; the next run reads it to skip the photos already done and to retry the failed ones.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Optional

import pyarrow as pa
import pyarrow.parquet as pq

from hyperthumb.errors import InvalidSettingError

DONE, FAILED = "done", "failed"


@dataclass(frozen=True)
class ManifestRow:
    source: str  # the local path or URL read
    source_bytes: Optional[int]
    sha256: Optional[str]  # of the source's bytes: a changed photo is done again
    output: Optional[str]  # the written file, relative to the output folder
    output_bytes: Optional[int]
    bpp: Optional[float]  # the thumbnail's bits over the photo's pixels
    target_bpp: Optional[float]  # convert's; None for restore
    model: Optional[str]
    checkpoint_step: Optional[int]  # the model's training steps, from its checkpoint
    seconds: Optional[float]  # reading, the model's work and writing, for this photo
    status: str  # DONE or FAILED
    error: Optional[str] = None  # a failure's plain sentence
    encoder_id: Optional[str] = None  # the encoder that made the thumbnail (its marker's identifier)

    def done_as(self, sha256: str, target_bpp: Optional[float], model: Optional[str]) -> bool:
        """Whether this row already holds the work asked for now (`model` None: whichever model)."""
        return (self.status == DONE and self.sha256 == sha256 and self.target_bpp == target_bpp
                and model in (None, self.model))


_ARROW_TYPES = {"str": pa.string(), "Optional[str]": pa.string(), "Optional[int]": pa.int64(),
                "Optional[float]": pa.float64()}
SCHEMA = pa.schema([(f.name, _ARROW_TYPES[f.type]) for f in fields(ManifestRow)])


class Manifest:
    """The rows of one output folder, by source, read from `path` where a run left them."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows: dict[str, ManifestRow] = {}
        if self.path.exists():
            try:
                self.rows = {row["source"]: ManifestRow(**row) for row in pq.read_table(self.path).to_pylist()}
            except (OSError, pa.ArrowException, TypeError, KeyError) as exc:
                raise InvalidSettingError(f"the manifest {self.path} cannot be read ({exc}); move it away to "
                                          "start afresh") from None

    def record(self, row: ManifestRow) -> None:
        self.rows[row.source] = row

    def save(self) -> None:
        table = pa.Table.from_pylist([asdict(row) for _, row in sorted(self.rows.items())], schema=SCHEMA)
        parquet = pa.BufferOutputStream()
        pq.write_table(table, parquet)
        write_atomically(self.path, parquet.getvalue().to_pybytes())


def write_atomically(path: Path, data: bytes) -> None:
    """Writes `data` into a new file beside `path`, then puts it in `path`'s place in one step: a
    run stopped at any moment leaves the old file or the new one, never a part of one."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)
