"""The README's example: one photo, its thumbnail and the photo restored from it.

    python -m tools.readme_example [--encoder rdbunet] [--bpp 0.3]

Encodes `examples/Bridge_by_Sander_Klootwijk.jpg` (1280x720, CC-BY-SA-4.0, `examples/CREDITS.md`)
with the shipped checkpoint through the public API (`hyperthumb.load_model`, `hyperthumb.decode`),
and writes into `docs/`:
- `example_thumbnail.jpg`: the thumbnail file itself (320x180), which any viewer opens and
  `hyperthumb.decode` restores;
- `example.png`: one 256x256 region side by side: the photo, the thumbnail's 64x64 pixels of it
  shown 4x (nearest neighbour), the restored photo, and the plain baseline (`bicubic-jpeg`: a
  bicubic thumbnail as a Pillow JPEG, at the quality whose file size comes closest, upscaled
  bicubically);
and prints the file sizes and the whole photo's HR PSNR of both, which the README quotes.
The restored pixels depend slightly on the CPU's arithmetic (bf16 where the CPU has it natively).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

import hyperthumb
from hyperthumb.evaluation.methods import run_method
from hyperthumb.evaluation.metrics import psnr

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "examples" / "Bridge_by_Sander_Klootwijk.jpg"
THUMBNAIL = ROOT / "docs" / "example_thumbnail.jpg"
FIGURE = ROOT / "docs" / "example.png"
REGION = (736, 424, 992, 680)  # the cable clamp, clouds, horizon and shore: 256x256, on the 4-pixel grid
SCALE = 4
CAPTION = 22  # pixels of the label strip above each panel


def panel(image: Image.Image, label: str) -> Image.Image:
    framed = Image.new("RGB", (image.width, image.height + CAPTION), "white")
    framed.paste(image, (0, CAPTION))
    ImageDraw.Draw(framed).text((4, 3), label, fill="black", font=ImageFont.load_default(size=15))
    return framed


def thumbnail_region(thumbnail: Image.Image) -> Image.Image:
    left, top, right, bottom = (side // SCALE for side in REGION)
    crop = thumbnail.convert("RGB").crop((left, top, right, bottom))
    return crop.resize((crop.width * SCALE, crop.height * SCALE), Image.NEAREST)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="rdbunet", choices=hyperthumb.ENCODER_NAMES)
    parser.add_argument("--bpp", type=float, default=0.3)
    args = parser.parse_args()
    photo = Image.open(PHOTO).convert("RGB")
    thumb = hyperthumb.load_model(args.encoder).encode(photo, target_bpp=args.bpp)
    THUMBNAIL.parent.mkdir(exist_ok=True)
    thumb.save(THUMBNAIL)
    restored = hyperthumb.decode(THUMBNAIL)
    baseline = run_method("bicubic-jpeg", photo, thumb.bpp)
    panels = [panel(photo.crop(REGION), "photo"),
              panel(thumbnail_region(thumb.image), f"thumbnail ({len(thumb.jpeg) / 1000:.0f} kB), {SCALE}x"),
              panel(restored.crop(REGION), f"restored by {args.encoder}"),
              panel(baseline.restored.crop(REGION), f"bicubic-jpeg ({len(baseline.jpeg) / 1000:.0f} kB)")]
    gap = 6
    figure = Image.new("RGB", (sum(p.width for p in panels) + gap * (len(panels) - 1), panels[0].height), "white")
    for index, framed in enumerate(panels):
        figure.paste(framed, (index * (framed.width + gap), 0))
    figure.save(FIGURE, optimize=True)
    print(f"photo {photo.width}x{photo.height}; thumbnail {thumb.image.width}x{thumb.image.height}, "
          f"{len(thumb.jpeg):,} bytes, {thumb.bpp:.3f} bpp; HR PSNR {psnr(restored, photo):.2f} dB "
          f"({args.encoder}), {psnr(baseline.restored, photo):.2f} dB (bicubic-jpeg, {len(baseline.jpeg):,} bytes, "
          f"{baseline.bpp:.3f} bpp)")
    print(f"wrote {THUMBNAIL.relative_to(ROOT)} and {FIGURE.relative_to(ROOT)} ({FIGURE.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
