"""The README's one headline table, made from an `evaluate` summary.csv, never typed by hand.

    python -m hyperthumb.evaluation.headline [results/eval/summary.csv]      # print it
    python -m hyperthumb.evaluation.headline --readme README.md              # rewrite it in place

Per test set: the mean per-photo BD-PSNR of both encoders over `bicubic-jpeg` (the `evaluate`
column `bd_psnr_photo_db`), then the HR PSNR at one target bpp of `bicubic-jpeg`, both encoders and
the whole photo stored as JPEG, WebP and AVIF, and a last line with the mean file sizes those
figures came from. In the README the table sits between the two `MARKERS`; `tests/test_readme.py`
checks that it equals what this module makes from the committed summary.
"""
from __future__ import annotations

import argparse
import csv
import os
from collections.abc import Sequence
from pathlib import Path

SETS = ("val", "kodak24", "set14", "b100")
ENCODERS = ("rdbunet", "transformer")
AT_BPP = 0.3
AT_BPP_METHODS = ("bicubic-jpeg", *ENCODERS, "jpeg-full", "webp-full", "avif-full")
MARKERS = ("<!-- headline table: python -m hyperthumb.evaluation.headline --readme README.md -->",
           "<!-- end of headline table -->")
DEFAULT_SUMMARY = Path(__file__).resolve().parent.parent.parent / "results" / "eval" / "summary.csv"
PathLike = str | os.PathLike


def _rows(summary_csv: PathLike) -> dict[tuple[str, str, float], dict]:
    with open(summary_csv, newline="") as file:
        return {(row["set"], row["method"], float(row["target_bpp"])): row for row in csv.DictReader(file)}


def _row(rows: dict, photo_set: str, method: str, target: float) -> dict:
    try:
        return rows[(photo_set, method, target)]
    except KeyError:
        raise ValueError(f"the summary has no row for {method} on {photo_set} at {target:g} bpp") from None


def headline_table(summary_csv: PathLike = DEFAULT_SUMMARY, sets: Sequence[str] = SETS,
                   at_bpp: float = AT_BPP) -> str:
    """The headline table in Markdown (with its note on file sizes), from an `evaluate` summary.csv."""
    rows = _rows(summary_csv)
    header = (["set (photos)"] + [f"`{name}` BD-PSNR" for name in ENCODERS]
              + [f"`{name}` at {at_bpp:g}" for name in AT_BPP_METHODS])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    thumbnail_bpp, full_bpp = [], []
    for photo_set in sets:
        first = _row(rows, photo_set, ENCODERS[0], at_bpp)
        cells = [f"{photo_set} ({first['images']})"]
        # BD-PSNR covers the whole rate range, so every target's row carries the same value.
        cells += [f"{float(_row(rows, photo_set, name, at_bpp)['bd_psnr_photo_db']):+.2f} dB" for name in ENCODERS]
        for name in AT_BPP_METHODS:
            row = _row(rows, photo_set, name, at_bpp)
            cells.append(f"{float(row['psnr_hr']):.2f} dB")
            (full_bpp if name.endswith("-full") else thumbnail_bpp).append(float(row["bpp"]))
        lines.append("| " + " | ".join(cells) + " |")
    sizes = (f"Mean file size at the {at_bpp:g} bpp target: {min(thumbnail_bpp):.3f}-{max(thumbnail_bpp):.3f} "
             f"bpp for the thumbnails, {min(full_bpp):.3f}-{max(full_bpp):.3f} bpp for the full-size files "
             "(the largest file within the target).")
    lines += ["", sizes]
    return "\n".join(lines) + "\n"


def readme_block(readme: str) -> str:
    """The text between the README's two MARKERS (without their lines)."""
    start, end = readme.find(MARKERS[0]), readme.find(MARKERS[1])
    if start < 0 or end < start:
        raise ValueError(f"the README lacks the markers {MARKERS[0]!r} ... {MARKERS[1]!r}")
    return readme[start + len(MARKERS[0]):end].strip("\n") + "\n"


def with_headline_table(readme: str, table: str) -> str:
    """`readme` with the text between its MARKERS replaced by `table`."""
    readme_block(readme)  # the markers must be there
    start, end = readme.find(MARKERS[0]) + len(MARKERS[0]), readme.find(MARKERS[1])
    return readme[:start] + "\n" + table + readme[end:]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The README's headline table from an evaluate summary.csv.")
    parser.add_argument("summary", nargs="?", default=str(DEFAULT_SUMMARY), help="default: results/eval/summary.csv")
    parser.add_argument("--readme", help="rewrite the table between the markers of this README instead of printing it")
    args = parser.parse_args(argv)
    table = headline_table(args.summary)
    if args.readme is None:
        print(table, end="")
        return
    path = Path(args.readme)
    path.write_text(with_headline_table(path.read_text(), table))
    print(f"wrote the headline table into {path}")


if __name__ == "__main__":
    main()
