"""Benchmark, not a test: a photo library through `hyperthumb convert`, per engine.

    python tools/bench_library.py PHOTOS... --count 200 [--engines local ray] [--workers 2]

Copies the first `count` photos found under PHOTOS into a temporary library, adds five broken
files (an empty file, text named .jpg, a JPEG cut short, a PNG with a damaged chunk, a header that
claims 200,000 x 200,000 pixels) and one HEIC photo, then runs the real command line on it once
per engine and prints photos per second, megapixels per second, the failures the manifest
recorded, and the peak memory (RSS, sampled every 50 ms) of the command's process tree.
"""
from __future__ import annotations

import argparse
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

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


def run(engine: str, library: Path, out: Path, workers: int) -> dict:
    command = [sys.executable, "-m", "hyperthumb", "convert", str(library), "--out", str(out), "--engine", engine,
               "--workers", str(workers)]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tree, peak, stop = psutil.Process(process.pid), [0], threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            try:
                peak[0] = max(peak[0], tree.memory_info().rss + sum(
                    child.memory_info().rss for child in tree.children(recursive=True)))
            except psutil.Error:
                pass

    threading.Thread(target=sample, daemon=True).start()
    process.wait()
    stop.set()
    seconds = time.perf_counter() - started
    manifest = pd.read_parquet(out / "manifest.parquet")
    done = manifest[manifest.status == "done"]
    pixels = float((done.output_bytes * 8 / done.bpp).sum())  # each photo's pixels, from its thumbnail's bpp
    return {"seconds": seconds, "done": len(done), "failed": int((manifest.status == "failed").sum()),
            "megapixels": pixels / 1e6, "peak": peak[0], "returncode": process.returncode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="+", type=Path)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--engines", nargs="+", default=["local", "ray"])
    parser.add_argument("--workers", type=int, default=2)
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
        for engine in args.engines:
            figures = run(engine, library, Path(tmp) / f"out-{engine}", args.workers)
            print(f"{engine} ({args.workers} workers): {figures['done']} done, {figures['failed']} failed in "
                  f"{figures['seconds']:.1f} s: {figures['done'] / figures['seconds']:.2f} photos/s, "
                  f"{figures['megapixels'] / figures['seconds']:.2f} MP/s ({figures['megapixels']:.1f} MP); "
                  f"peak memory {figures['peak'] / 2**30:.2f} GB; exit code {figures['returncode']}")


if __name__ == "__main__":
    main()
