"""Means per set, encoder, target and decoder of `tools.compare_decoders` runs.

    python -m tools.summarize_decoders RUNS/*.csv --out results/sharp-decoders

Each CSV is one run, named ENCODER-SET-BPP.csv (its photos' rows, as `--out` of compare_decoders
writes them). Writes OUT/per_photo.csv (every row, with its set, encoder and target) and
OUT/summary.csv (the means; DISTS empty where the runs left it out).
"""
from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

FIGURES = ("bpp", "psnr_hr", "ssim_hr", "lpips_rgb", "dists")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.summarize_decoders", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    rows = []
    for run in args.runs:
        encoder, photo_set, target = run.stem.split("-", 2)
        rows += [{"set": photo_set, "encoder": encoder, "target_bpp": float(target), **row}
                 for row in csv.DictReader(run.open())]
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "per_photo.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["set"], row["encoder"], row["target_bpp"], row["decoder"]), []).append(row)
    with (args.out / "summary.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["set", "encoder", "target_bpp", "decoder", "photos", *FIGURES])
        for key, group in sorted(groups.items()):
            means = [round(statistics.mean(float(r[f]) for r in group), 4) if group[0][f] else "" for f in FIGURES]
            writer.writerow([*key, len(group), *means])
    print(f"{len(rows)} rows, {len(groups)} groups -> {args.out}")


if __name__ == "__main__":
    main()
