"""Benchmark, not a test: the browser restore (web/hyperthumb.js on onnxruntime-web) in Debian's
Chromium against the Python decode. It prints figures and asserts nothing.

    python tools/bench_browser.py [--parts agreement speed webgpu] [--limit N] [--sizes 2 12 24]
        [--decoders full fast] [--runs 2] [--out results.csv] [--work DIR]

agreement: thumbnails of examples/*.jpg and of every Kodak photo, made by both encoders (rdbunet,
    transformer) at 0.1 and 0.3 bpp, each restored in Chromium (WebAssembly, the "full" decoder)
    and by `zoo.decode`; per set, encoder and rate: the minimum and median PSNR between the two
    photos, and the largest |HR PSNR(browser) - HR PSNR(python)| against the original.
speed: photos of 2, 12 and 24 MP (mosaics of Kodak photos), thumbnails by rdbunet at 0.3 bpp,
    restored by each decoder in Chromium (WebAssembly, the page's threads) and by PyTorch on the
    CPU (its default threads): the first run's seconds (after a warm-up on a 768x512 thumbnail that
    loads the model) and the median of `--runs` more; and the peak memory. Chromium's is the peak
    RSS of the tab's renderer process (onnxruntime-web's worker threads and WebAssembly memory live
    there), sampled every 50 ms from a fresh browser context per size and decoder; the RSS it had
    before the first restore is printed beside it. PyTorch's is the peak RSS of a fresh process per
    size and decoder, sampled the same way while it restores (after its warm-up), with the process's
    lifetime peak (ru_maxrss, the model's loading included) beside it.
webgpu: Chromium launched with flag sets that may expose a WebGPU adapter without a GPU
    (SwiftShader); says whether `navigator.gpu.requestAdapter()` gives one and, where it does, times
    the speed part's restores with backend "webgpu" (or prints the error, with any WGSL compilation
    errors the page's device reported), then compares its pixels with the Python decode (the fast
    decoder, the first two photos of each set, both encoders at 0.3 bpp).

The site is `build_site()` (the repository's web/), served on a free local port with the headers
that make the page cross-origin isolated (WebAssembly threads). Thumbnails and photos are cached in
`--work` (default ~/.cache/hyperthumb/bench_browser).
"""
from __future__ import annotations

import argparse
import base64
import csv
import functools
import http.server
import itertools
import json
import os
import platform
import resource
import statistics
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
KODAK = ROOT.parent / "shared" / "datasets" / "test" / "kodak24"
ENCODERS = ("rdbunet", "transformer")
RATES = (0.1, 0.3)
SIZES_MP = {2: (1728, 1152), 12: (4240, 2832), 24: (6000, 4000)}  # 3:2, as the Kodak photos
SPEED_ENCODER, SPEED_BPP = "rdbunet", 0.3
PYTHON_DECODER = {"full": "faithful", "fast": "fast", "sharp": "sharp"}
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}
WEBGPU_FLAGS = [  # tried in order; the first that gives an adapter is timed
    ["--enable-unsafe-webgpu"],
    ["--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-angle=swiftshader", "--use-webgpu-adapter=swiftshader"],
    ["--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader", "--use-webgpu-adapter=swiftshader",
     "--disable-vulkan-surface", "--ignore-gpu-blocklist", "--enable-unsafe-swiftshader"],
]
CSV_FIELDS = ["part", "set", "photo", "encoder", "bpp", "megapixels", "decoder", "runtime", "backend", "threads",
              "psnr_between", "hr_psnr_browser", "hr_psnr_python", "first_s", "median_s", "runs_s",
              "peak_rss_mb", "idle_rss_mb", "note"]

# In the page: fetch a thumbnail, restore it, and give back the timing (and, if asked, the RGB pixels).
RESTORE = """async ([url, options, pixels]) => {
  const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
  const started = performance.now();
  const out = await window.hyperthumb.restore(bytes, options);
  const wall = (performance.now() - started) / 1000;
  const result = {width: out.width, height: out.height, backend: out.backend, threads: out.threads,
                  seconds: out.seconds, wall};
  if (pixels) {
    const rgb = new Uint8Array(out.width * out.height * 3);
    for (let i = 0, j = 0; i < out.data.length; i += 4, j += 3) {
      rgb[j] = out.data[i]; rgb[j + 1] = out.data[i + 1]; rgb[j + 2] = out.data[i + 2];
    }
    let text = "";
    for (let i = 0; i < rgb.length; i += 0x8000) text += String.fromCharCode(...rgb.subarray(i, i + 0x8000));
    result.rgb = btoa(text);
  }
  return result;
}"""
# Before the page's scripts: WGSL compilation errors of the devices it makes, to the console.
WGSL_ERRORS = """(() => {
  if (!self.GPUAdapter) return;
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    const create = device.createShaderModule.bind(device);
    device.createShaderModule = (descriptor) => {
      const module = create(descriptor);
      module.getCompilationInfo().then((info) => info.messages.filter((m) => m.type === "error").forEach((m) =>
        console.warn(`WGSL error in ${descriptor.label || "a shader"}: ${m.message.split("\\n")[0]} ` +
                     `(line ${m.lineNum}: ${(descriptor.code.split("\\n")[m.lineNum - 1] || "").trim().slice(0, 160)})`)));
      return module;
    };
    return device;
  };
})();"""
ADAPTER = """async () => {
  const out = {gpu: "gpu" in navigator, isolated: self.crossOriginIsolated};
  if (!out.gpu) return out;
  try {
    const adapter = await navigator.gpu.requestAdapter();
    out.adapter = adapter ? {vendor: adapter.info?.vendor, architecture: adapter.info?.architecture,
                             description: adapter.info?.description,
                             fallback: adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter,
                             shaderF16: adapter.features.has("shader-f16")} : null;
  } catch (error) { out.error = String(error); }
  return out;
}"""


# -- Serving the site ----------------------------------------------------------------------------

class _Files(http.server.SimpleHTTPRequestHandler):
    """The site at /, the benchmark's files at /bench/, with the isolation headers."""

    bench: Path = Path(".")

    def translate_path(self, path: str) -> str:
        if path.startswith("/bench/"):
            return str(self.bench / path[len("/bench/"):].split("?")[0])
        return super().translate_path(path)

    def end_headers(self) -> None:
        for name, value in ISOLATION.items():
            self.send_header(name, value)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, *_) -> None:
        pass


_Files.extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                         ".wasm": "application/wasm", ".js": "text/javascript"}


@contextmanager
def serving(site: Path, bench: Path) -> Iterator[str]:
    handler = type("Files", (_Files,), {"bench": bench})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# -- Photos and thumbnails -----------------------------------------------------------------------

def kodak_photos(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png"))


def mosaic(size: tuple[int, int], photos: list[Path], path: Path) -> Path:
    """A photo of `size` tiled from `photos` (each at its own resolution, cycling), as PNG."""
    from PIL import Image

    if path.is_file():
        return path
    width, height = size
    canvas = Image.new("RGB", size)
    x = y = index = 0
    row_height = 0
    while y < height:
        with Image.open(photos[index % len(photos)]) as tile:
            tile = tile.convert("RGB")
        canvas.paste(tile, (x, y))
        row_height = max(row_height, tile.height)
        x, index = x + tile.width, index + 1
        if x >= width:
            x, y, row_height = 0, y + row_height, 0
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def thumbnail(photo: Path, encoder: str, bpp: float, work: Path) -> Path:
    """The photo's thumbnail (made once, kept in `work`)."""
    from hyperthumb import zoo

    path = work / "thumbnails" / f"{photo.stem}.{encoder}.{bpp:g}.jpg"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        zoo.load_model(encoder).encode(photo, target_bpp=bpp).save(path)
    return path


# -- Chromium ------------------------------------------------------------------------------------

def chromium_processes() -> list[psutil.Process]:
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if "chrom" in process.name().lower():
                found.append(process)
        except psutil.Error:
            pass
    return found


def renderers() -> set[int]:
    pids = set()
    for process in chromium_processes():
        try:
            if "--type=renderer" in process.cmdline():
                pids.add(process.pid)
        except psutil.Error:
            pass
    return pids


class PeakRss:
    """Samples the RSS of each of `pids` every 50 ms while it runs. A new browser context may start
    more than one renderer (the page's, a spare one); the page's is the one whose RSS peaks highest,
    as it holds the WebAssembly memory."""

    def __init__(self, pids: set[int]):
        self.processes = {pid: psutil.Process(pid) for pid in pids}
        self.idle = self._sample()
        self.peaks = dict(self.idle)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> dict[int, int]:
        sizes = {}
        for pid, process in self.processes.items():
            try:
                sizes[pid] = process.memory_info().rss
            except psutil.Error:
                sizes[pid] = 0
        return sizes

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for pid, rss in self._sample().items():
                self.peaks[pid] = max(self.peaks[pid], rss)

    def stop(self) -> tuple[int, int, int]:
        """(the page's renderer's pid, its peak RSS, its RSS when sampling began)."""
        self._stop.set()
        self._thread.join()
        if not self.peaks:
            return 0, 0, 0
        pid = max(self.peaks, key=self.peaks.get)
        return pid, self.peaks[pid], self.idle[pid]


@contextmanager
def chromium(flags: tuple[str, ...] = ()) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", *flags])
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def viewer(browser, url: str, console: Optional[list] = None, init_script: Optional[str] = None) -> Iterator:
    """A page of the viewer in a browser context (and so a renderer process) of its own; yields
    (page, the pids of its renderer)."""
    before = renderers()
    context = browser.new_context()
    if init_script:
        context.add_init_script(init_script)
    try:
        page = context.new_page()
        if console is not None:
            page.on("console", lambda message: console.append(message.text))
            page.on("pageerror", lambda error: console.append(str(error)))
        page.goto(url + "index.html")
        page.wait_for_function("() => window.hyperthumb && window.hyperthumb.restore", timeout=60_000)
        yield page, renderers() - before
    finally:
        context.close()


def restore_in_page(page, url: str, decoder: str, backend: str, pixels: bool = False) -> dict:
    result = page.evaluate(RESTORE, [url, {"decoder": decoder, "backend": backend}, pixels])
    if pixels:
        result["rgb"] = np.frombuffer(base64.b64decode(result["rgb"]), np.uint8).reshape(result["height"],
                                                                                        result["width"], 3)
    return result


def one_line(error: BaseException) -> str:
    """An error's gist: its first line, from onnxruntime's own words where it has them."""
    text = " ".join(str(error).replace("Page.evaluate: ", "").split("\n")[0].split())
    return text.rsplit(" : FAIL : ", 1)[-1][:300]


# -- The parts -----------------------------------------------------------------------------------

def agreement(args, url: str, work: Path, backend: str = "wasm", decoder: str = "full", flags: tuple = (),
              limit: Optional[int] = None, rates: tuple = RATES) -> list[dict]:
    from PIL import Image

    from hyperthumb import zoo
    from hyperthumb.evaluation.metrics import psnr

    sets = {"examples": sorted((ROOT / "examples").glob("*.jpg")), "kodak24": kodak_photos(args.kodak)}
    limit = limit or args.limit
    rows = []
    with chromium(flags) as browser, viewer(browser, url) as (page, _):
        for set_name, photos in sets.items():
            for photo in photos[:limit]:
                with Image.open(photo) as image:
                    original = np.asarray(image.convert("RGB"))
                for encoder in ENCODERS:
                    for bpp in rates:
                        path = thumbnail(photo, encoder, bpp, work)
                        python = np.asarray(zoo.decode(path.read_bytes(), decoder=PYTHON_DECODER[decoder]))
                        result = restore_in_page(page, url + f"bench/thumbnails/{path.name}", decoder, backend, True)
                        browser_rgb = result["rgb"]
                        row = {"part": f"agreement-{backend}", "set": set_name, "photo": photo.name, "encoder": encoder,
                               "bpp": bpp, "megapixels": round(original.shape[0] * original.shape[1] / 1e6, 2),
                               "decoder": decoder,
                               "runtime": "chromium", "backend": result["backend"], "threads": result["threads"],
                               "psnr_between": psnr(browser_rgb, python), "hr_psnr_browser": psnr(browser_rgb, original),
                               "hr_psnr_python": psnr(python, original), "first_s": result["seconds"]}
                        rows.append(row)
                        print(f"  {set_name}/{photo.name} {encoder} {bpp:g} bpp: {row['psnr_between']:.2f} dB between, "
                              f"HR {row['hr_psnr_browser']:.3f} (browser) vs {row['hr_psnr_python']:.3f} dB (python)",
                              flush=True)
    print(f"\nAgreement (Chromium {backend} vs zoo.decode, the {decoder} decoder):")
    print(f"  {'set':10} {'encoder':12} {'bpp':>4} {'n':>3} {'min dB':>8} {'median dB':>10} {'max |dHR| dB':>13}")
    for set_name in sets:
        for encoder in ENCODERS:
            for bpp in rates:
                group = [r for r in rows if (r["set"], r["encoder"], r["bpp"]) == (set_name, encoder, bpp)]
                if group:
                    between = [r["psnr_between"] for r in group]
                    gap = max(abs(r["hr_psnr_browser"] - r["hr_psnr_python"]) for r in group)
                    print(f"  {set_name:10} {encoder:12} {bpp:>4g} {len(group):>3} {min(between):>8.2f} "
                          f"{statistics.median(between):>10.2f} {gap:>13.4f}")
    return rows


def speed_photos(args, work: Path) -> dict[int, Path]:
    """Per size in MP, the rdbunet 0.3 bpp thumbnail of a mosaic of that size."""
    sources = kodak_photos(args.kodak) or sorted((ROOT / "examples").glob("*.jpg"))
    thumbnails = {}
    for megapixels in args.sizes:
        size = SIZES_MP[megapixels]
        photo = mosaic(size, sources, work / "photos" / f"mosaic_{size[0]}x{size[1]}.png")
        started = time.perf_counter()
        made = not (work / "thumbnails" / f"{photo.stem}.{SPEED_ENCODER}.{SPEED_BPP:g}.jpg").is_file()
        thumbnails[megapixels] = thumbnail(photo, SPEED_ENCODER, SPEED_BPP, work)
        if made:
            print(f"  encoded the {megapixels} MP photo ({size[0]}x{size[1]}) in {time.perf_counter() - started:.1f} s",
                  flush=True)
    return thumbnails


def warm_up_thumbnail(args, work: Path) -> Path:
    sources = kodak_photos(args.kodak) or sorted((ROOT / "examples").glob("*.jpg"))
    return thumbnail(sources[0], SPEED_ENCODER, SPEED_BPP, work)


def time_in_chromium(browser, url: str, thumbnails: dict[int, Path], warm: Path, decoders, backend: str,
                     runs: int, label: str, console: Optional[list] = None,
                     init_script: Optional[str] = None) -> list[dict]:
    rows = []
    for megapixels, path in thumbnails.items():
        for decoder in decoders:
            row = {"part": label, "set": "mosaic", "photo": path.name, "encoder": SPEED_ENCODER, "bpp": SPEED_BPP,
                   "megapixels": megapixels, "decoder": decoder, "runtime": "chromium", "backend": backend}
            try:
                with viewer(browser, url, console, init_script) as (page, pids):
                    sampler = PeakRss(pids)
                    try:
                        restore_in_page(page, url + f"bench/thumbnails/{warm.name}", decoder, backend)
                        first = restore_in_page(page, url + f"bench/thumbnails/{path.name}", decoder, backend)
                        times = [restore_in_page(page, url + f"bench/thumbnails/{path.name}", decoder, backend)["seconds"]
                                 for _ in range(runs)]
                    finally:
                        pid, peak, idle = sampler.stop()
                row.update(backend=first["backend"], threads=first["threads"], first_s=first["seconds"],
                           median_s=statistics.median(times), runs_s=" ".join(f"{t:.2f}" for t in times),
                           peak_rss_mb=peak / 2**20, idle_rss_mb=idle / 2**20,
                           note=f"renderer pid {pid}, the largest of {len(pids)} the context started")
                print(f"  Chromium {backend} ({first['threads']} threads) {decoder:5} {megapixels:>2} MP: first "
                      f"{first['seconds']:.2f} s, median {row['median_s']:.2f} s of {runs}; tab peak RSS "
                      f"{row['peak_rss_mb']:.0f} MB (before the first restore {row['idle_rss_mb']:.0f} MB)", flush=True)
            except Exception as error:  # noqa: BLE001 - a benchmark reports what failed and goes on
                row["note"] = one_line(error)
                print(f"  Chromium {backend} {decoder:5} {megapixels:>2} MP: failed: {row['note']}", flush=True)
            rows.append(row)
    return rows


def _torch_worker(thumbnail_path: str, warm_path: str, decoder: str, runs: int, fp32: bool, queue) -> None:
    """In a fresh process: PyTorch's timings, the RSS peak while it restores (sampled every 50 ms)
    and this process's lifetime peak (ru_maxrss: the model's loading and the warm-up included).
    `fp32`: the codec without bf16 autocast (what a CPU without native bf16 runs), else its default."""
    import torch

    from hyperthumb import zoo
    from hyperthumb.codec import HyperThumbCodec
    from hyperthumb.codec.runtime import Runtime

    data, warm = Path(thumbnail_path).read_bytes(), Path(warm_path).read_bytes()
    checkpoint = zoo.decoder_checkpoint(SPEED_ENCODER, decoder)
    runtime = Runtime.for_device(torch.device("cpu"), reduced_precision=not fp32)
    codec = HyperThumbCodec(zoo.load_checkpoint(checkpoint), name=checkpoint, marker=SPEED_ENCODER, runtime=runtime)
    codec.decode(warm)
    sampler = PeakRss({os.getpid()})
    started = time.perf_counter()
    codec.decode(data)
    first = time.perf_counter() - started
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        codec.decode(data)
        times.append(time.perf_counter() - started)
    _, peak, idle = sampler.stop()
    import torch

    queue.put({"first": first, "times": times, "threads": torch.get_num_threads(), "peak": peak, "idle": idle,
               "lifetime": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024})


def time_in_pytorch(thumbnails: dict[int, Path], warm: Path, decoders, runs: int) -> list[dict]:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    rows = []
    for (megapixels, path), decoder, fp32 in itertools.product(thumbnails.items(), decoders, (False, True)):
        queue = context.Queue()
        worker = context.Process(target=_torch_worker,
                                 args=(str(path), str(warm), PYTHON_DECODER[decoder], runs, fp32, queue))
        worker.start()
        worker.join()
        row = {"part": "speed", "set": "mosaic", "photo": path.name, "encoder": SPEED_ENCODER, "bpp": SPEED_BPP,
               "megapixels": megapixels, "decoder": decoder, "runtime": "pytorch",
               "backend": "cpu fp32" if fp32 else "cpu default"}
        if worker.exitcode != 0 or queue.empty():
            row["note"] = f"the worker exited with {worker.exitcode}"
            print(f"  PyTorch {decoder} {megapixels} MP: failed ({row['note']})", flush=True)
        else:
            got = queue.get()
            row.update(threads=got["threads"], first_s=got["first"], median_s=statistics.median(got["times"]),
                       runs_s=" ".join(f"{t:.2f}" for t in got["times"]), peak_rss_mb=got["peak"] / 2**20,
                       idle_rss_mb=got["idle"] / 2**20,
                       note=f"process lifetime peak RSS (ru_maxrss) {got['lifetime'] / 2**20:.0f} MB")
            print(f"  PyTorch CPU {'fp32' if fp32 else 'default'} ({got['threads']} threads) {decoder:5} {megapixels:>2} MP: first "
                  f"{got['first']:.2f} s, median {row['median_s']:.2f} s of {runs}; process peak RSS "
                  f"{row['peak_rss_mb']:.0f} MB while restoring (after the warm-up {row['idle_rss_mb']:.0f} MB, "
                  f"lifetime peak {got['lifetime'] / 2**20:.0f} MB)", flush=True)
        rows.append(row)
    return rows


def speed(args, url: str, work: Path) -> list[dict]:
    thumbnails, warm = speed_photos(args, work), warm_up_thumbnail(args, work)
    print(f"\nSpeed and memory ({SPEED_ENCODER} thumbnails at {SPEED_BPP} bpp; warm-up on {warm.name}):", flush=True)
    with chromium() as browser:
        rows = time_in_chromium(browser, url, thumbnails, warm, args.decoders, "wasm", args.runs, "speed")
    return rows + time_in_pytorch(thumbnails, warm, args.decoders, args.runs)


def webgpu(args, url: str, work: Path) -> list[dict]:
    print("\nWebGPU without a GPU:", flush=True)
    rows = []
    for flags in WEBGPU_FLAGS:
        console: list = []
        with chromium(tuple(flags)) as browser, viewer(browser, url, console) as (page, _):
            found = page.evaluate(ADAPTER)
        said = "; ".join(dict.fromkeys(m for m in console if "adapter" in m.lower() or "webgpu" in m.lower()))
        adapter = found.get("adapter")
        print(f"  flags {' '.join(flags)}: navigator.gpu {'present' if found['gpu'] else 'absent'}, "
              f"adapter {json.dumps(adapter) if adapter else 'none'}"
              f"{'; ' + found['error'] if found.get('error') else ''}{'; the browser said: ' + said if said else ''}",
              flush=True)
        rows.append({"part": "webgpu-adapter", "runtime": "chromium", "backend": "webgpu",
                     "note": f"flags {' '.join(flags)}: adapter {json.dumps(adapter) if adapter else 'none'} {said}"})
        if adapter:
            thumbnails, warm = speed_photos(args, work), warm_up_thumbnail(args, work)
            console = []
            with chromium(tuple(flags)) as browser:
                rows += time_in_chromium(browser, url, thumbnails, warm, args.decoders, "webgpu", args.runs, "webgpu",
                                         console, WGSL_ERRORS)
            wgsl = list(dict.fromkeys(m for m in console if m.startswith("WGSL error")))
            for message in wgsl:
                print(f"    the page's WebGPU device reported: {message}")
            if wgsl:
                rows[-1]["note"] = (rows[-1].get("note") or "") + " | " + " | ".join(wgsl)
            # its pixels, against the Python decode (the fast decoder: the full one is minutes a photo here)
            return rows + agreement(args, url, work, "webgpu", "fast", tuple(flags), limit=2, rates=(0.3,))
    print("  no flag set gave a WebGPU adapter: nothing to time")
    return rows


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[2:]))
    parser.add_argument("--parts", nargs="+", choices=("agreement", "speed", "webgpu"),
                        default=["agreement", "speed", "webgpu"], help="what to measure (default: all)")
    parser.add_argument("--limit", type=int, default=None, help="at most N photos per set in the agreement part")
    parser.add_argument("--sizes", type=int, nargs="+", choices=sorted(SIZES_MP), default=sorted(SIZES_MP),
                        help="photo sizes in megapixels for the speed and WebGPU parts (default: 2 12 24)")
    parser.add_argument("--decoders", nargs="+", choices=tuple(PYTHON_DECODER), default=["full", "fast"],
                        help="the page's decoder kinds to time (default: full fast)")
    parser.add_argument("--runs", type=int, default=2, help="timed runs after the first, whose median is given")
    parser.add_argument("--kodak", type=Path, default=KODAK, help=f"folder of the Kodak photos (default: {KODAK})")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "hyperthumb" / "bench_browser",
                        help="where the photos and thumbnails are kept between runs")
    parser.add_argument("--out", type=Path, default=None, help="write every measurement to this CSV file")
    args = parser.parse_args(argv)
    if not os.path.exists(CHROMIUM):
        parser.error(f"{CHROMIUM} is missing (apt-get install chromium)")

    from hyperthumb.release.web_site import build_site

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB; Chromium at {CHROMIUM}", flush=True)
    site = build_site(progress=lambda message: print(f"  site: {message}", flush=True))
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    with serving(site, args.work) as url:
        with chromium() as browser:
            print(f"Chromium {browser.version}", flush=True)
        if "agreement" in args.parts:
            print("\nAgreement, photo by photo:", flush=True)
            rows += agreement(args, url, args.work)
        if "speed" in args.parts:
            rows += speed(args, url, args.work)
        if "webgpu" in args.parts:
            rows += webgpu(args, url, args.work)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w", newline="") as file:
            writer = csv.DictWriter(file, CSV_FIELDS)
            writer.writeheader()
            for row in rows:
                writer.writerow({key: (f"{value:.4f}" if isinstance(value, float) else value)
                                 for key, value in row.items()})
        print(f"\nwrote {len(rows)} rows to {args.out}")


if __name__ == "__main__":
    main()
