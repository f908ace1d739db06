"""`python -m hyperthumb bench`: encode and decode speed and peak memory, against two floors.

The floors are measured in the same run on the same thumbnail: a plain bicubic 4x upscale
(`torch.nn.functional.interpolate`) and a Pillow decode of the JPEG file, so the decoder's cost
reads as a ratio to the cheapest possible upscale and to merely opening the thumbnail.
"""
from __future__ import annotations

import io
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import psutil
import torch
import torch.nn.functional as F
from PIL import Image

from .codec import HyperThumbCodec
from .image_io import to_tensor
from .runtime import Runtime

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


def _timed(fn: Callable[[], object], repeats: int, device: torch.device) -> tuple[float, int, object]:
    """(median seconds, peak memory bytes over all runs, last result)."""
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

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


def bench_codec(codec: HyperThumbCodec, photo: Image.Image, repeats: int, target_bpp: float = 0.3) -> BenchResult:
    device = codec.device
    encode_s, encode_peak, thumb = _timed(lambda: codec.encode(photo, target_bpp=target_bpp), repeats, device)
    decode_s, decode_peak, _ = _timed(lambda: codec.decode(thumb.jpeg), repeats, device)
    lr = to_tensor(thumb.image).to(device)
    bicubic_s, _, _ = _timed(lambda: F.interpolate(lr, scale_factor=codec.scale, mode="bicubic"), repeats, device)
    pillow_s, _, _ = _timed(lambda: Image.open(io.BytesIO(thumb.jpeg)).load(), repeats, device)
    return BenchResult(codec.name, photo.width, photo.height, encode_s, decode_s, encode_peak / 2**20,
                       decode_peak / 2**20, bicubic_s, pillow_s)


def format_table(results: list[BenchResult]) -> str:
    header = ("| encoder | size | MP | encode s | enc MP/s | decode s | dec MP/s | peak MB enc / dec "
              "| bicubic x4 s | decode / bicubic | Pillow JPEG s | decode / Pillow |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in results:
        lines.append(
            f"| {r.encoder} | {r.width}x{r.height} | {r.megapixels:.1f} | {r.encode_s:.2f} | "
            f"{r.megapixels / r.encode_s:.2f} | {r.decode_s:.2f} | {r.megapixels / r.decode_s:.2f} | "
            f"{r.encode_peak_mb:.0f} / {r.decode_peak_mb:.0f} | {r.bicubic_s:.3f} | {r.decode_s / r.bicubic_s:.1f}x | "
            f"{r.pillow_s:.4f} | {r.decode_s / r.pillow_s:.0f}x |")
    return "\n".join(lines)


def run_bench(size: tuple[int, int], device: str, encoders: list[str], repeats: int, target_bpp: float = 0.3,
              compile: bool = False, threads: Optional[int] = None) -> list[BenchResult]:
    """Benchmarks the shipped checkpoints of `encoders` on one synthetic photo of `size` (width, height)."""
    from . import load_model

    if threads:
        torch.set_num_threads(threads)
    photo = synthetic_photo(*size)
    results = []
    for encoder in encoders:
        loaded = load_model(encoder, device=device)
        codec = HyperThumbCodec(loaded.model, encoder, device, runtime=Runtime.for_device(loaded.device, compile))
        results.append(bench_codec(codec, photo, repeats, target_bpp))
    return results


def describe_machine(device: str, compile: bool = False) -> str:
    runtime = Runtime.for_device(torch.device(device), compile)
    if runtime.autocast_dtype is None and not runtime.channels_last:
        path = "fp32"
    else:
        path = f"{str(runtime.autocast_dtype).removeprefix('torch.')} autocast, channels-last"
    path += ", torch.compile" if compile else ""
    machine = (torch.cuda.get_device_name(device) if torch.device(device).type == "cuda"
               else f"CPU, {psutil.cpu_count()} cores, {torch.get_num_threads()} torch threads")
    return f"{machine}, torch {torch.__version__}, decoder path: {path}"
