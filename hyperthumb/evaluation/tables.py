"""The tables of the README and docs that come from an `evaluate` summary.csv, never typed by hand.

    python -m hyperthumb.evaluation.tables [--summary results/eval/summary.csv]   # print them
    python -m hyperthumb.evaluation.tables --write README.md docs/evaluation.md    # rewrite them in place

- `headline` (the README): per set, the mean per-photo BD-PSNR of both encoders over `bicubic-jpeg`
  (the `evaluate` column `bd_psnr_photo_db`), then the HR PSNR at one target bpp of `bicubic-jpeg`,
  both encoders and the whole photo stored as JPEG, WebP and AVIF, and a line with the mean file
  sizes those figures came from.
- `sharp` (docs/evaluation.md): per set and target, LPIPS-AlexNet and DISTS of each encoder's
  faithful and sharp decoders beside the whole photo as WebP, AVIF and JPEG, then the decoders'
  HR PSNR and SSIM.

In a page each table sits between its two markers (`TABLES`); `tests/test_readme.py` checks that
every one equals what this module makes from the committed summary.
"""
from __future__ import annotations

import argparse
import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

SETS = ("val", "kodak24", "set14", "b100")
ENCODERS = ("rdbunet", "transformer")
AT_BPP = 0.3
AT_BPP_METHODS = ("bicubic-jpeg", *ENCODERS, "jpeg-full", "webp-full", "avif-full")
SHARP_TARGETS = (0.1, 0.2, 0.3, 0.5)
FULL_SIZE = ("webp", "avif", "jpeg")  # in the sharp table: the goal was the sharp decoders below WebP
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


def sharp_table(summary_csv: PathLike = DEFAULT_SUMMARY, sets: Sequence[str] = SETS,
                targets: Sequence[float] = SHARP_TARGETS) -> str:
    """The sharp decoders against the faithful ones and the full-size files, in Markdown: LPIPS-AlexNet
    (bold where a sharp decoder is below the full-size WebP's), DISTS, HR PSNR and SSIM."""
    rows = _rows(summary_csv)
    methods = [name for encoder in ENCODERS for name in (encoder, f"{encoder}-sharp")]

    def cells(photo_set: str, target: float, figure: str, digits: int, bold_below: Optional[float] = None) -> str:
        values = []
        for encoder in ENCODERS:
            faithful, sharp = (float(_row(rows, photo_set, name, target)[figure])
                               for name in (encoder, f"{encoder}-sharp"))
            sharp_text = f"{sharp:.{digits}f}"
            values.append(f"{faithful:.{digits}f} / " + (f"**{sharp_text}**" if bold_below is not None
                                                        and sharp < bold_below else sharp_text))
        return " | ".join(values)

    header = ["set", "bpp", *(f"LPIPS-Alex `{e}` / `-sharp`" for e in ENCODERS), "LPIPS-Alex full-size WebP / AVIF / JPEG",
              *(f"DISTS `{e}` / `-sharp`" for e in ENCODERS), "DISTS full-size WebP / AVIF / JPEG",
              *(f"HR PSNR `{e}` / `-sharp`" for e in ENCODERS), *(f"SSIM `{e}` / `-sharp`" for e in ENCODERS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for photo_set in sets:
        for target in targets:
            for name in methods:
                _row(rows, photo_set, name, target)
            full = [_row(rows, photo_set, f"{codec}-full", target) for codec in FULL_SIZE]
            webp = float(full[0]["lpips_rgb"])
            lines.append(" | ".join([
                f"| {photo_set}", f"{target:g}", cells(photo_set, target, "lpips_rgb", 3, webp),
                " / ".join(f"{float(row['lpips_rgb']):.3f}" for row in full), cells(photo_set, target, "dists", 3),
                " / ".join(_figure(row, "dists", 3) for row in full), cells(photo_set, target, "psnr_hr", 2),
                cells(photo_set, target, "ssim_hr", 3)]) + " |")
    return "\n".join(lines) + "\n"


def _figure(row: dict, figure: str, digits: int) -> str:
    return "-" if row[figure] in ("", None) else f"{float(row[figure]):.{digits}f}"


# name: (markers, the function that makes the table from a summary.csv)
TABLES = {
    "headline": (("<!-- headline table: python -m hyperthumb.evaluation.tables --write README.md -->",
                  "<!-- end of headline table -->"), headline_table),
    "sharp": (("<!-- sharp decoders table: python -m hyperthumb.evaluation.tables --write docs/evaluation.md -->",
               "<!-- end of sharp decoders table -->"), sharp_table),
}


def table_block(page: str, name: str) -> Optional[str]:
    """The text between table `name`'s two markers in `page` (without their lines); None where the page
    lacks them."""
    (first, last), _ = TABLES[name]
    start, end = page.find(first), page.find(last)
    if start < 0 or end < start:
        return None
    return page[start + len(first):end].strip("\n") + "\n"


def with_table(page: str, name: str, table: str) -> str:
    """`page` with the text between table `name`'s markers replaced by `table`."""
    (first, last), _ = TABLES[name]
    if table_block(page, name) is None:
        raise ValueError(f"the page lacks the markers {first!r} ... {last!r}")
    start, end = page.find(first) + len(first), page.find(last)
    return page[:start] + "\n" + table + page[end:]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The README's and docs' tables from an evaluate summary.csv.")
    parser.add_argument("--summary", default=str(DEFAULT_SUMMARY), help="default: results/eval/summary.csv")
    parser.add_argument("--write", nargs="+", metavar="PAGE",
                        help="rewrite the tables between their markers in these pages instead of printing them")
    args = parser.parse_args(argv)
    tables = {name: make(args.summary) for name, (_, make) in TABLES.items()}
    if not args.write:
        print("\n".join(f"{name}:\n{table}" for name, table in tables.items()), end="")
        return
    for path in map(Path, args.write):
        page = path.read_text()
        names = [name for name in TABLES if table_block(page, name) is not None]
        if not names:
            raise SystemExit(f"{path} has no table markers")
        for name in names:
            page = with_table(page, name, tables[name])
        path.write_text(page)
        print(f"wrote the {' and '.join(names)} table{'s' if len(names) > 1 else ''} into {path}")


if __name__ == "__main__":
    main()
