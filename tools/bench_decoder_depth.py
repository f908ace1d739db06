"""Benchmark, not a test: the decoder network's time per number of HR-branch blocks and width.

    python tools/bench_decoder_depth.py [--size 6144x4096] [--threads 2] [--repeats 3]
        [--blocks 16 4 2 1] [--features 24] [--hr-features 16] [--fp32]

Times the decoder class (untrained weights: speed does not depend on them) at several `hr_blocks`
and feature widths, channels-last as the codec runs it, in bf16 autocast (or fp32, the path of CPUs
without native bf16), from the thumbnail and its coefficients to the HR tensor, against a plain
bicubic upscale timed as `bench` times it (fp32, NCHW `interpolate`). The shipped decoders have 16
blocks of 24 features, the fast ones 1; `bench` times the whole decode from the file.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hyperthumb.evaluation.bench import timed  # noqa: E402
from hyperthumb.models.decoder import DecoderConfig, FrequencyAwareDecoder  # noqa: E402

SCALE = 4


def seconds(run: Callable[[], object], repeats: int) -> float:
    """Median seconds after a first call, which allocates and picks kernels."""
    run()
    return timed(run, repeats, torch.device("cpu"))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="6144x4096", help="HR width x height")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--blocks", type=int, nargs="+", default=[16, 4, 2, 1])
    parser.add_argument("--features", type=int, nargs="+", default=[DecoderConfig.features])
    parser.add_argument("--hr-features", type=int, nargs="+", default=[None],
                        help="HR-branch widths (default: as --features)")
    parser.add_argument("--fp32", action="store_true", help="fp32 instead of bf16 autocast")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    width, height = (int(side) // SCALE for side in args.size.split("x"))
    plain_thumbnail = torch.rand(1, 3, height, width)
    thumbnail = plain_thumbnail.contiguous(memory_format=torch.channels_last)
    coefficients = torch.randn(1, 192, height // 8, width // 8).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        upscale = lambda: F.interpolate(plain_thumbnail, scale_factor=SCALE, mode="bicubic")  # as `bench` times it
        bicubic = seconds(upscale, args.repeats)
        print(f"{args.size}, {args.threads} threads, {'fp32' if args.fp32 else 'bf16'}: "
              f"bicubic x{SCALE} upscale {bicubic:.2f} s")
        for features, hr_features, blocks in itertools.product(args.features, args.hr_features, args.blocks):
            config = DecoderConfig(features=features, hr_blocks=blocks, hr_features=hr_features)
            decoder = FrequencyAwareDecoder(config, SCALE).eval().to(memory_format=torch.channels_last)
            with torch.autocast("cpu", torch.bfloat16, enabled=not args.fp32):
                decode = seconds(lambda: decoder(coefficients, thumbnail), args.repeats)
            print(f"features {features}, hr_features {hr_features or features}, hr_blocks {blocks:2d}: "
                  f"{decode:.2f} s = {decode / bicubic:.1f}x the bicubic upscale")


if __name__ == "__main__":
    main()
