"""One thumbnail, several restorations: a decoder-only run (a sharp or fast decoder in training)
against the checkpoint whose files it reads, on the very same files.

    python -m tools.compare_decoders DIR --bpp 0.3 --decoder faithful=weights/rdbunet \
        --decoder sharp=runs/rdbunet-sharp --out /tmp/decoders.csv

The first decoder's checkpoint encodes each photo at the target bpp; every decoder restores that
file; HR PSNR, SSIM, LPIPS-AlexNet and DISTS are measured against the photo. A quick check during
training; `python -m hyperthumb evaluate` is the full comparison once a decoder ships.
"""
from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path
from typing import Optional, Sequence

from hyperthumb.codec import HyperThumbCodec
from hyperthumb.codec.image_io import list_images, load_image
from hyperthumb.evaluation.dists import dists_distances
from hyperthumb.evaluation.metrics import lpips_distance, psnr, ssim
from hyperthumb.models import HyperThumbModel
from hyperthumb.zoo import MARKER_OF_CHECKPOINT

FIGURES = ("psnr_hr", "ssim_hr", "lpips_rgb", "dists")


def compare(photos: Sequence[Path], target_bpp: float, decoders: dict[str, str], with_dists: bool = True) -> list[dict]:
    """One row per photo and decoder: the figures of that decoder's restoration of one file (DISTS,
    the slowest on a CPU, only `with_dists`)."""
    first = Path(next(iter(decoders.values()))).name
    marker = MARKER_OF_CHECKPOINT.get(first, first)  # the files all of them read
    codecs = {name: HyperThumbCodec(HyperThumbModel.from_pretrained(folder), name=name, marker=marker)
              for name, folder in decoders.items()}
    encoder = next(iter(codecs.values()))
    rows = []
    for path in photos:
        photo = load_image(path)
        thumb = encoder.encode(photo, target_bpp=target_bpp, keep_metadata=False)  # pixels only, as evaluate
        restorations = {name: codec.decode(thumb.jpeg) for name, codec in codecs.items()}
        distances = dists_distances(photo, list(restorations.values())) if with_dists else None
        for index, (name, restored) in enumerate(restorations.items()):
            rows.append({"photo": path.name, "decoder": name, "bpp": thumb.bpp, "psnr_hr": psnr(restored, photo),
                         "ssim_hr": ssim(restored, photo), "lpips_rgb": lpips_distance(restored, photo),
                         "dists": distances[index] if distances else None})
    return rows


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.compare_decoders", description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", help="a folder of photos")
    parser.add_argument("--bpp", type=float, default=0.3)
    parser.add_argument("--decoder", action="append", required=True, metavar="NAME=FOLDER",
                        help="a checkpoint folder; the first one encodes (repeatable)")
    parser.add_argument("--out", help="CSV of every photo's figures")
    parser.add_argument("--no-dists", action="store_true", help="leave DISTS out (about 10 s per MP and decoder on one thread)")
    args = parser.parse_args(argv)
    decoders = dict(item.split("=", 1) for item in args.decoder)
    rows = compare(list_images(args.photos), args.bpp, decoders, with_dists=not args.no_dists)
    if args.out:
        with open(args.out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    mean_bpp = statistics.mean(row["bpp"] for row in rows)
    print(f"{len(rows) // len(decoders)} photos at {args.bpp} bpp (mean file {mean_bpp:.4f} bpp)")
    for name in decoders:
        mine = [row for row in rows if row["decoder"] == name]
        print(f"{name}: " + ", ".join(f"{figure} {statistics.mean(row[figure] for row in mine):.4f}"
                                      for figure in FIGURES if mine[0][figure] is not None))


if __name__ == "__main__":
    main()
