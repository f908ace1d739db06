"""`python -m hyperthumb bench`: encode and decode speed and peak memory, against two floors.

The floors are measured in the same run on the same thumbnail: a plain bicubic 4x upscale
(`torch.nn.functional.interpolate`) and a Pillow decode of the JPEG file, so the decoder's cost
reads as a ratio to the cheapest possible upscale and to merely opening the thumbnail.
Each engine (`engines.py`) decodes the same thumbnail, made by torch fp32, and its HR PSNR is
reported against torch fp32's own, as is the PSNR of its whole round trip at the same rate
setting: the 0.05 dB rule the codec's default engine follows.
"""
from __future__ import annotations

import importlib
import io
import platform
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Optional

import numpy as np
import psutil
import torch
import torch.nn.functional as F
from PIL import Image

from hyperthumb.codec.engines import ENGINES, engine_available
from hyperthumb.codec.image_io import to_tensor
from hyperthumb.codec.runtime import Runtime, cpu_has_native_bf16, release_freed_memory
from hyperthumb.codec.thumbnail_codec import HyperThumbCodec, Thumbnail
from hyperthumb.evaluation.metrics import psnr
from hyperthumb.jpeg.file import read_thumbnail
from hyperthumb.models.model import HyperThumbModel

_NOISE_TILE = 256


def synthetic_photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Smooth colour fields, hard-edged shapes and grain, at any size in about a second per 50 MP:
    drawn at 1/16 scale, bicubic-upscaled, then overlaid with a repeating noise tile."""
    rng = np.random.default_rng(seed)
    small_w, small_h = max(width // 16, 8), max(height // 16, 8)
    y, x = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    fields = np.stack([128 + 90 * np.sin(x / 7 + seed), 128 + 90 * np.cos(y / 5), 128 + 60 * np.sin((x + y) / 11)], -1)
    shapes = rng.random((small_h, small_w, 1)) < 0.02
    fields = np.where(shapes, rng.integers(0, 255, (small_h, small_w, 3)), fields)
    photo = np.asarray(Image.fromarray(np.clip(fields, 0, 255).astype(np.uint8)).resize((width, height), Image.BICUBIC))
    noise = rng.integers(-12, 13, (_NOISE_TILE, _NOISE_TILE, 3), dtype=np.int16)
    reps = (-(-height // _NOISE_TILE), -(-width // _NOISE_TILE), 1)
    grain = np.tile(noise, reps)[:height, :width]
    return Image.fromarray(np.clip(photo + grain, 0, 255).astype(np.uint8))


class _PeakMemory:
    """Peak memory above the start: process RSS sampled every 5 ms on the CPU, the allocator's peak on CUDA."""

    def __init__(self, device: torch.device):
        self.device, self.peak_bytes = device, 0

    def __enter__(self) -> "_PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            process, self._base, self._stop = psutil.Process(), psutil.Process().memory_info().rss, threading.Event()
            self._samples = [self._base]
            self._thread = threading.Thread(target=self._sample, args=(process,), daemon=True)
            self._thread.start()
        return self

    def _sample(self, process: psutil.Process) -> None:
        while not self._stop.wait(0.005):
            self._samples.append(process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self._base
        else:
            self._stop.set()
            self._thread.join()
            self.peak_bytes = max(self._samples) - self._base


def timed(fn: Callable[[], object], repeats: int, device: torch.device) -> tuple[float, int, object]:
    """(median seconds, peak memory bytes over all runs, last result). Memory kept from earlier work
    (`runtime.keep_freed_memory`) is released first, so the peak is this work's own."""
    release_freed_memory()
    times, result = [], None
    with _PeakMemory(device) as memory:
        for _ in range(repeats):
            started = time.perf_counter()
            result = fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - started)
    return statistics.median(times), memory.peak_bytes, result


@dataclass
class Reference:
    """Torch fp32's thumbnail of the photo and the HR PSNR of its restoration: what engines are held to."""

    thumbnail: Thumbnail
    psnr_hr: float

    @cached_property
    def parses_per_s(self) -> tuple[float, float]:
        """Measured once: every engine's row decodes this same file, and its parse is the CPU's alone."""
        return parses_of(self.thumbnail.jpeg)


def fp32_reference(model: HyperThumbModel, name: str, device: str, photo: Image.Image,
                   target_bpp: float) -> Reference:
    codec = HyperThumbCodec(model, name, device, runtime=Runtime())
    thumbnail = codec.encode(photo, target_bpp=target_bpp)
    return Reference(thumbnail, psnr(codec.decode(thumbnail.jpeg), photo))


@dataclass
class BenchResult:
    encoder: str
    width: int
    height: int
    encode_s: float
    decode_s: float
    encode_peak_mb: float
    decode_peak_mb: float
    bicubic_s: float
    pillow_s: float
    engine: str = "torch"
    decode_db: Optional[float] = None  # HR PSNR decoding the reference thumbnail, minus torch fp32's
    round_trip_db: Optional[float] = None  # HR PSNR of the engine's own encode and decode, minus torch fp32's
    parses_per_s: tuple[float, float] = (float("nan"), float("nan"))  # `read_thumbnail`: one thread, torch's threads

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


def bench_codec(codec: HyperThumbCodec, photo: Image.Image, repeats: int, target_bpp: float = 0.3,
                reference: Optional[Reference] = None) -> BenchResult:
    """Times `codec`; with a `reference`, decodes its thumbnail and compares HR PSNR with torch fp32."""
    device = codec.device
    encode_s, encode_peak, thumb = timed(lambda: codec.encode(photo, target_bpp=target_bpp), repeats, device)
    decoded = reference.thumbnail if reference else thumb
    decode_s, decode_peak, restored = timed(lambda: codec.decode(decoded.jpeg), repeats, device)
    lr = to_tensor(decoded.image).to(device)
    bicubic_s, _, _ = timed(lambda: F.interpolate(lr, scale_factor=codec.scale, mode="bicubic"), repeats, device)
    pillow_s, _, _ = timed(lambda: Image.open(io.BytesIO(decoded.jpeg)).load(), repeats, device)
    parses = reference.parses_per_s if reference else parses_of(decoded.jpeg)
    decode_db = round_trip_db = None
    if reference:
        decode_db = psnr(restored, photo) - reference.psnr_hr
        own = codec.encode(photo, target_bpp=None, rate_t=reference.thumbnail.rate_t)
        round_trip_db = psnr(codec.decode(own.jpeg), photo) - reference.psnr_hr
    return BenchResult(codec.name, photo.width, photo.height, encode_s, decode_s, encode_peak / 2**20,
                       decode_peak / 2**20, bicubic_s, pillow_s, engine_label(codec), decode_db, round_trip_db, parses)


def parses_of(jpeg: bytes) -> tuple[float, float]:
    """Parses per second on one thread and on torch's threads."""
    return parses_per_second(jpeg, 1), parses_per_second(jpeg, torch.get_num_threads())


def parses_per_second(jpeg: bytes, threads: int, count: int = 12) -> float:
    """Files `read_thumbnail` parses per second with `threads` threads at once: what feeds
    `decode_stream`, whose workers read the next files while the device restores."""
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(read_thumbnail, [jpeg] * threads))  # warm-up
        started = time.perf_counter()
        list(pool.map(read_thumbnail, [jpeg] * count))
        return count / (time.perf_counter() - started)


def engine_label(codec: HyperThumbCodec) -> str:
    """The engine and the arithmetic it ran, e.g. "openvino bf16" or "torch bf16 channels-last"."""
    label = f"{codec.engine} {codec.engine_precision}"
    if codec.engine == "torch":
        label += (" channels-last" if codec.runtime.channels_last else "") + (" compiled" if codec.runtime.compile else "")
    return label


def _db(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:+.3f}"


def format_table(results: list[BenchResult]) -> str:
    header = ("| encoder | engine | size | MP | encode s | enc MP/s | decode s | dec MP/s | peak MB enc / dec "
              "| bicubic x4 s | decode / bicubic | Pillow JPEG s | decode / Pillow "
              "| HR dB vs fp32: decode / round trip | parses/s, 1 / all threads |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in results:
        lines.append(
            f"| {r.encoder} | {r.engine} | {r.width}x{r.height} | {r.megapixels:.1f} | {r.encode_s:.2f} | "
            f"{r.megapixels / r.encode_s:.2f} | {r.decode_s:.2f} | {r.megapixels / r.decode_s:.2f} | "
            f"{r.encode_peak_mb:.0f} / {r.decode_peak_mb:.0f} | {r.bicubic_s:.3f} | {r.decode_s / r.bicubic_s:.1f}x | "
            f"{r.pillow_s:.4f} | {r.decode_s / r.pillow_s:.0f}x | {_db(r.decode_db)} / {_db(r.round_trip_db)} | "
            f"{r.parses_per_s[0]:.1f} / {r.parses_per_s[1]:.1f} |")
    return "\n".join(lines)


def run_bench(size: tuple[int, int], device: str, encoders: list[str], repeats: int, target_bpp: float = 0.3,
              compile: bool = False, threads: Optional[int] = None,
              engines: tuple[str, ...] = ("torch",), fp32: bool = False) -> list[BenchResult]:
    """Benchmarks the shipped checkpoints of `encoders` on one synthetic photo of `size` (width, height),
    once per engine, each against torch fp32 on the same thumbnail. Each codec runs once on a small
    photo first, so that exporting and compiling are not timed. `fp32` forces fp32 arithmetic in
    every engine: what a CPU without native bf16 runs."""
    from hyperthumb.zoo import load_model

    if threads:
        torch.set_num_threads(threads)
    photo = synthetic_photo(*size)
    warm_up = synthetic_photo(256, 256)
    results = []
    for encoder in encoders:
        model = load_model(encoder, device=device).model
        reference = fp32_reference(model, encoder, device, photo, target_bpp)
        for engine in engines:
            if engine == "torch" or fp32:  # an exported engine reads only "fp32 or its own choice" from it
                runtime = Runtime.for_device(torch.device(device), compile, reduced_precision=not fp32)
            else:
                runtime = None
            codec = HyperThumbCodec(model, encoder, device, runtime=runtime, engine=engine)
            codec.decode(codec.encode(warm_up, target_bpp=None, rate_t=0.0).jpeg)
            results.append(bench_codec(codec, photo, repeats, target_bpp, reference))
    return results


def available_engines(requested: list[str]) -> tuple[list[str], list[str]]:
    """(runnable here, not runnable) among `requested`, in order (`engines.unavailable_reason` says why)."""
    return ([engine for engine in requested if engine_available(engine)],
            [engine for engine in requested if not engine_available(engine)])


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def describe_machine(device: str) -> str:
    """The CPU (and its native bf16), or the GPU, with the library versions that the figures depend on."""
    cpu = (f"{cpu_name()}, {psutil.cpu_count()} cores, native bf16: {'yes' if cpu_has_native_bf16() else 'no'}, "
           f"{torch.get_num_threads()} torch threads")
    machine = f"{torch.cuda.get_device_name(device)}; {cpu}" if torch.device(device).type == "cuda" else cpu
    versions = [f"torch {torch.__version__}"]
    for engine in ENGINES[1:]:
        if engine_available(engine):
            versions.append(f"{engine} {importlib.import_module(engine).__version__.split('-')[0]}")
    return f"{machine}; {', '.join(versions)}"
