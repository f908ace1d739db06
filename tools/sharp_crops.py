"""The faithful and sharp decoders side by side on the most detailed crop of a few photos.

    python -m tools.sharp_crops ../shared/datasets/test/kodak24/kodim{05,13,23}.png --bpp 0.2 \
        --out results/sharp-decoders/crops.png

Per photo, one row of 256x256 crops at 100 %: the original, the photo restored from one HyperThumb
thumbnail (rdbunet at the target bpp) by the faithful and by the sharp decoder, and the whole photo
stored as WebP at the same file size. The crop is the window with the most detail (the sum of
absolute neighbour differences), found on the original.
"""
from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageDraw

import hyperthumb
from hyperthumb.codec.image_io import load_image
from hyperthumb.evaluation.methods import run_method
from hyperthumb.study.pool import window_detail

SIDE, LABEL_HEIGHT = 256, 22


def most_detailed_box(photo: Image.Image, side: int = SIDE) -> tuple[int, int, int, int]:
    totals = window_detail(photo, side)
    top, left = np.unravel_index(np.argmax(totals[::8, ::8]), totals[::8, ::8].shape)
    return left * 8, top * 8, left * 8 + side, top * 8 + side


def row(path: str, bpp: float) -> tuple[Image.Image, str]:
    photo = load_image(path)
    thumb = hyperthumb.load_model("rdbunet").encode(photo, target_bpp=bpp, keep_metadata=False)
    webp = run_method("webp-full", photo, thumb.bpp)  # the same size as the thumbnail file
    images = [photo, hyperthumb.decode(thumb.jpeg), hyperthumb.decode(thumb.jpeg, decoder="sharp"), webp.restored]
    box = most_detailed_box(photo)
    note = f"{path.split('/')[-1]}: thumbnail {thumb.bpp:.3f} bpp, WebP {webp.bpp:.3f} bpp"
    strip = Image.new("RGB", (SIDE * len(images), SIDE), "white")
    for index, image in enumerate(images):
        strip.paste(image.crop(box), (index * SIDE, 0))
    return strip, note


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.sharp_crops", description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="+")
    parser.add_argument("--bpp", type=float, default=0.2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    heads = ["original", "faithful decoder", "sharp decoder", "WebP, same size"]
    rows = [row(path, args.bpp) for path in args.photos]
    sheet = Image.new("RGB", (SIDE * len(heads), (SIDE + 2 * LABEL_HEIGHT) * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (strip, note) in enumerate(rows):
        top = index * (SIDE + 2 * LABEL_HEIGHT)
        draw.text((4, top + 4), note, fill="black")
        for column, head in enumerate(heads):
            draw.text((column * SIDE + 4, top + LABEL_HEIGHT + 4), head, fill="black")
        sheet.paste(strip, (0, top + 2 * LABEL_HEIGHT))
    sheet.save(args.out)
    print(f"{args.out}: " + "; ".join(note for _, note in rows))


if __name__ == "__main__":
    main()
