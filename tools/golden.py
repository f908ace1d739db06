"""The golden data the shipped checkpoints are held to, and the one command that rewrites it.

    OMP_NUM_THREADS=1 python -m tools.golden

writes into `tests/data/`:
- `golden_rdbunet.jpg`: a HyperThumb thumbnail made by the shipped `rdbunet` from a 256x256 centre
  crop of an example photo at 0.3 bpp, and `golden_rdbunet_restored.png`, the HR pixels it decodes
  to, which `test_golden.py` holds every decode to within `PIXEL_TOLERANCE`;
- in `golden.json` too, per shipped checkpoint, the bpp and HR PSNR of a 512x512 centre crop
  encoded at 0.3 bpp, which `test_golden.py` holds each checkpoint to (quality tier).

Run it only when the checkpoints are legitimately retrained, and commit its output with them.
Everything runs in PyTorch fp32 on one CPU thread, the same as the tests, so the figures do not
depend on the engine or bf16 choice of the machine. CPUs still round differently: fp32
convolutions take other kernels with AVX2 than with AVX-512, and the golden decode made with
AVX-512 differed from the AVX2 one (`ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`) in 1 of its
196,608 values, by 1 gray level (SSE4.1 kernels: none). Scaling the decoder's last layer by 1 + 1e-4
moved 0.025 % of the values, by 1 level: so a decode may differ from the golden pixels by at most 1
level in at most 0.01 % of the values, 20x the spread across instruction sets and a quarter of
what such a change to one layer's weights does.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hyperthumb.codec.runtime import Runtime
from hyperthumb.codec.thumbnail_codec import HyperThumbCodec
from hyperthumb.evaluation.metrics import psnr
from hyperthumb.zoo import CHECKPOINTS, load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
GOLDEN_THUMBNAIL = DATA / "golden_rdbunet.jpg"
GOLDEN_FIGURES = DATA / "golden.json"
GOLDEN_RESTORED = DATA / "golden_rdbunet_restored.png"
PHOTO = ROOT / "examples" / "Bridge_by_Sander_Klootwijk.jpg"  # CC-BY-SA-4.0
TARGET_BPP = 0.3
PIXELS_CROP = 256
QUALITY_CROP = 512


def centre_crop(side: int) -> Image.Image:
    photo = Image.open(PHOTO).convert("RGB")
    left, top = (photo.width - side) // 2, (photo.height - side) // 2
    return photo.crop((left, top, left + side, top + side))


def fp32_codec(checkpoint: str) -> HyperThumbCodec:
    """The shipped checkpoint in PyTorch fp32: the same pixels whatever engines the machine has."""
    return HyperThumbCodec(load_checkpoint(checkpoint), name=checkpoint, engine="torch", runtime=Runtime())


# (largest difference in gray levels, largest share of the values that may differ): see above.
PIXEL_TOLERANCE = (1, 1e-4)


def pixel_difference(image: Image.Image, golden: Image.Image) -> tuple[int, float]:
    """(largest absolute difference in gray levels, share of values that differ) of two RGB images
    of the same size."""
    if image.size != golden.size:
        raise ValueError(f"sizes differ: {image.size} against {golden.size}")
    difference = np.abs(np.asarray(image, np.int16) - np.asarray(golden.convert("RGB"), np.int16))
    return int(difference.max()), float((difference > 0).mean())


def quality(codec: HyperThumbCodec) -> dict:
    """bpp and HR PSNR of the quality crop encoded at the target bpp."""
    crop = centre_crop(QUALITY_CROP)
    thumb = codec.encode(crop, target_bpp=TARGET_BPP)
    return {"bpp": round(thumb.bpp, 5), "psnr_hr": round(psnr(codec.decode(thumb.jpeg), crop), 3)}


def main() -> None:
    argparse.ArgumentParser(prog="python -m tools.golden", description="Rewrite the golden data in tests/data "
                            "from the shipped checkpoints (only after a legitimate retraining).").parse_args()
    torch.set_num_threads(1)
    DATA.mkdir(exist_ok=True)
    codec = fp32_codec("rdbunet")
    codec.encode(centre_crop(PIXELS_CROP), target_bpp=TARGET_BPP).save(GOLDEN_THUMBNAIL)
    codec.decode(GOLDEN_THUMBNAIL).save(GOLDEN_RESTORED)
    figures = {"photo": PHOTO.name, "pixels_crop": PIXELS_CROP, "quality_crop": QUALITY_CROP, "target_bpp": TARGET_BPP,
               "quality": {name: quality(fp32_codec(name)) for name in CHECKPOINTS}}
    GOLDEN_FIGURES.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {GOLDEN_THUMBNAIL}, {GOLDEN_RESTORED} and {GOLDEN_FIGURES}")


if __name__ == "__main__":
    main()
