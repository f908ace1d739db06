"""Benchmark, not a test: a photo library through `hyperthumb convert`, per engine.

    python tools/bench_library.py PHOTOS... --count 200 [--engines local ray] [--workers 1 2]
        [--interrupt] [--shell-loop 20]

Copies the first `count` photos found under PHOTOS into a temporary library, adds five broken
files (an empty file, text named .jpg, a JPEG cut short, a PNG with a damaged chunk, a header that
claims 200,000 x 200,000 pixels) and one HEIC photo, then runs the real command line on it per
engine and worker count and prints photos per second, megapixels per second, the failures the
manifest recorded, and the peak memory (RSS, sampled every 50 ms) of the command's process tree;
then whether every run wrote the same thumbnail bytes. `--interrupt` stops a run halfway (SIGINT,
as Ctrl-C) and runs it again: the second run says how many it wrote and how many were done before.
`--shell-loop N` times a shell loop of `hyperthumb encode` over the first N photos, for comparison.
"""
from __future__ import annotations

import argparse
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Optional

import pandas as pd
import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hyperthumb.codec.image_io import IMAGE_SUFFIXES  # noqa: E402


def broken_files(folder: Path, photo: Path) -> None:
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a photo")
    data = photo.read_bytes()
    (folder / "cut-short.jpg").write_bytes(data[:len(data) // 3])
    png = folder / "damaged.png"
    Image.open(photo).convert("RGB").resize((64, 48)).save(png)
    raw = bytearray(png.read_bytes())
    raw[40] ^= 0xFF  # inside the IHDR/IDAT data: its CRC no longer matches
    png.write_bytes(bytes(raw))
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", 200_000, 200_000, 8, 2, 0,
                                                                                    0, 0)
    (folder / "bomb.png").write_bytes(header + struct.pack(">I", zlib.crc32(header[12:])) + b"\x00" * 16)


def heic_photo(folder: Path, photo: Path) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    Image.open(photo).convert("RGB").save(folder / "phone.heic", quality=90)


def run(engine: str, library: Path, out: Path, workers: int, stop_after: Optional[float] = None) -> dict:
    command = [sys.executable, "-m", "hyperthumb", "convert", str(library), "--out", str(out), "--engine", engine,
               "--workers", str(workers)]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    tree, peak, stop = psutil.Process(process.pid), [0], threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            try:
                peak[0] = max(peak[0], tree.memory_info().rss + sum(
                    child.memory_info().rss for child in tree.children(recursive=True)))
            except psutil.Error:
                pass

    threading.Thread(target=sample, daemon=True).start()
    if stop_after is not None:
        time.sleep(stop_after)
        process.send_signal(signal.SIGINT)
    said, _ = process.communicate()
    stop.set()
    seconds = time.perf_counter() - started
    path = out / "manifest.parquet"  # none where a run was stopped before its first photo
    manifest = pd.read_parquet(path) if path.exists() else pd.DataFrame(
        {"status": [], "output_bytes": [], "bpp": []})
    done = manifest[manifest.status == "done"]
    pixels = float((done.output_bytes * 8 / done.bpp).sum())  # each photo's pixels, from its thumbnail's bpp
    return {"seconds": seconds, "done": len(done), "failed": int((manifest.status == "failed").sum()),
            "megapixels": pixels / 1e6, "peak": peak[0], "returncode": process.returncode,
            "said": said.strip().splitlines()[-1] if said.strip() else ""}


def thumbnails(out: Path) -> dict[str, bytes]:
    return {path.relative_to(out).as_posix(): path.read_bytes() for path in sorted(out.rglob("*.jpg"))}


def shell_loop(library: Path, count: int, tmp: Path) -> float:
    """Seconds for `hyperthumb encode` run once per photo, as a shell loop would."""
    photos = sorted(path for path in library.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)[:count]
    started = time.perf_counter()
    for index, photo in enumerate(photos):
        subprocess.run([sys.executable, "-m", "hyperthumb", "encode", str(photo), "-o", str(tmp / f"{index}.jpg")],
                       cwd=ROOT, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="+", type=Path)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--engines", nargs="+", default=["local", "ray"])
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--interrupt", action="store_true", help="stop a local run halfway, then finish it")
    parser.add_argument("--shell-loop", type=int, default=0, metavar="N", help="time encode in a loop over N photos")
    args = parser.parse_args()
    found = [path for folder in args.photos for path in sorted(folder.rglob("*"))
             if path.suffix.lower() in IMAGE_SUFFIXES][:args.count]
    with tempfile.TemporaryDirectory() as tmp:
        library = Path(tmp) / "library"
        library.mkdir()
        for index, path in enumerate(found):
            shutil.copyfile(path, library / f"{index:04d}{path.suffix.lower()}")
        jpeg = Path(tmp) / "source.jpg"  # a JPEG to cut short and to save as HEIC, made from the first photo
        Image.open(found[0]).convert("RGB").save(jpeg, quality=92)
        broken_files(library, jpeg)
        heic_photo(library, jpeg)
        print(f"{len(found)} photos, 5 broken files and 1 HEIC photo")
        outputs, seconds = [], {}
        for engine in args.engines:
            for workers in args.workers if engine == "local" else [max(args.workers)]:
                out = Path(tmp) / f"out-{engine}-{workers}"
                figures = run(engine, library, out, workers)
                outputs.append(out)
                seconds[engine, workers] = figures["seconds"]
                print(f"{engine} ({workers} workers): {figures['done']} done, {figures['failed']} failed in "
                      f"{figures['seconds']:.1f} s: {figures['done'] / figures['seconds']:.2f} photos/s, "
                      f"{figures['megapixels'] / figures['seconds']:.2f} MP/s ({figures['megapixels']:.1f} MP); "
                      f"peak memory {figures['peak'] / 2**30:.2f} GB; exit code {figures['returncode']}")
        first = thumbnails(outputs[0])
        same = all(thumbnails(out) == first for out in outputs[1:])
        print(f"thumbnails byte-identical across the {len(outputs)} runs: {same} ({len(first)} each)")
        if args.interrupt:
            out, halfway = Path(tmp) / "out-interrupted", seconds["local", max(args.workers)] / 2
            stopped = run("local", library, out, max(args.workers), stop_after=halfway)
            print(f"stopped after {halfway:.1f} s: {stopped['done']} done; then: "
                  f"{run('local', library, out, max(args.workers))['said']}")
            print(f"  the same thumbnails as the uninterrupted run: {thumbnails(out) == first}")
        if args.shell_loop:
            loop = shell_loop(library, args.shell_loop, Path(tmp))
            print(f"shell loop of encode over {args.shell_loop} photos: {loop:.1f} s, "
                  f"{args.shell_loop / loop:.2f} photos/s")


if __name__ == "__main__":
    main()
