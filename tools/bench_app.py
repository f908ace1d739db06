"""Benchmark, not a test: a 6K photo through the real app, as a user's browser would send it.

    python tools/bench_app.py [--size 6144x4096] [--port 7911] [--lite] [--app-dir CHECKOUT ...]

Serves `app.py` in a child process, sends a synthetic photo to `/encode` (RDBUnet, or with `--lite`
RDBUnet lite, at 0.3 bpp) and then `/metrics` with `gradio_client`, and prints the time to the first
output shown (the thumbnail, where the app shows it first), to the restored photo, the metrics'
extra time and the app process tree's peak memory (RSS sampled every 50 ms), idle and during each
call. Several `--app-dir` (e.g. a `git worktree` of an earlier commit) are
served one after the other on the same photo, so that their times compare within one run.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from gradio_client import Client, handle_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hyperthumb.evaluation.bench import synthetic_photo  # noqa: E402


def tree_rss(process: psutil.Process) -> int:
    return process.memory_info().rss + sum(child.memory_info().rss for child in process.children(recursive=True))


def bench(app_dir: Path, photo: Path, port: int, lite: bool) -> dict:
    """Serves `app_dir`'s app.py in a child process and times /encode (the first result) and /metrics."""
    app = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=app_dir,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    process, peaks, stop = psutil.Process(app.pid), {"idle": 0}, threading.Event()
    phase = ["idle"]

    def sample() -> None:
        while not stop.wait(0.05):
            try:
                peaks[phase[0]] = max(peaks.get(phase[0], 0), tree_rss(process))
            except psutil.Error:
                pass

    threading.Thread(target=sample, daemon=True).start()
    try:
        for _ in range(180):
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:  # not serving yet
                time.sleep(1)
        phase[0] = "encode"
        started = time.perf_counter()
        job = client.submit(handle_file(str(photo)), "RDBUnet", 0.3, lite, api_name="/encode")
        shown = None  # the first output the page shows (an app that yields the thumbnail first shows it early)
        while not job.done():
            if shown is None and job.outputs():
                shown = time.perf_counter() - started
            time.sleep(0.05)
        job.result()
        first = time.perf_counter() - started
        shown = first if shown is None else shown
        phase[0] = "metrics"
        started = time.perf_counter()
        client.predict(api_name="/metrics")
        metrics = time.perf_counter() - started
    finally:
        stop.set()
        app.terminate()
        app.wait()
    return {"shown": shown, "first": first, "metrics": metrics, "peaks": peaks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="6144x4096")
    parser.add_argument("--port", type=int, default=7911)
    parser.add_argument("--lite", action="store_true", help="the lite model")
    parser.add_argument("--app-dir", type=Path, action="append",
                        help="a checkout whose app.py to serve (repeat it to compare versions in one run; "
                             "default: this one)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    model = "RDBUnet lite" if args.lite else "RDBUnet"
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.jpg"
        synthetic_photo(width, height).save(photo, quality=92)
        for app_dir in args.app_dir or [ROOT]:
            figures = bench(app_dir, photo, args.port, args.lite)
            peaks = figures["peaks"]
            print(f"{app_dir}: {width}x{height} through the app ({model}, 0.3 bpp): first output shown "
                  f"{figures['shown']:.1f} s, restored photo {figures['first']:.1f} s, metrics "
                  f"{figures['metrics']:.1f} s more; app memory idle "
                  f"{peaks['idle'] / 2**30:.2f} GB, peak {max(peaks.values()) / 2**30:.2f} GB (encode "
                  f"{peaks['encode'] / 2**30:.2f} GB, metrics {peaks['metrics'] / 2**30:.2f} GB)")


if __name__ == "__main__":
    main()
