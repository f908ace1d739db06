"""Runs a convolutional network over overlapping tiles and blends them, so memory stays bounded.

Each axis is cut into cores on a grid (the network's alignment); a window is its core widened by
`halo` on every inner side, the context the network needs there, and all windows share one size
so they batch. Neighbouring outputs are cross-faded over a linear ramp `halo` input pixels wide,
centred on the core boundary; the outer half of each halo only feeds context. The ramps of two
neighbours sum to one, so blending needs no weight buffer, and only one band of tile rows is held
in float before its finished rows go straight into the caller's (H, W, C) array (uint8 or float).
`halo_spans` cuts an axis the same way for computations that need no blending (the metrics).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from hyperthumb.models.pixels import round_to_pixel_values_

_STORE_ROWS = 64  # output rows per pass of `_store`: 6K float rows of 3 colours are 4.7 MB


@dataclass(frozen=True)
class Window:
    """A tile's input region in base pixels: rows [top, bottom), columns [left, right)."""

    top: int
    left: int
    bottom: int
    right: int

    def slices(self, stride: int = 1) -> tuple[slice, slice]:
        """Row and column slices of an input with `stride` base pixels per element (e.g. 8 for blocks)."""
        return (slice(self.top // stride, self.bottom // stride), slice(self.left // stride, self.right // stride))


@dataclass(frozen=True)
class Span:
    """One piece of an axis: the core it answers for, [core_start, core_end), inside the window
    [start, end) it reads."""

    core_start: int
    core_end: int
    start: int
    end: int


def halo_spans(length: int, core: int, halo: int, grid: int = 1) -> list[Span]:
    """Cuts an axis into about equal cores of about `core` pixels that start on multiples of `grid`,
    each read with up to `halo` pixels of context on both sides: for whole-photo computations that
    depend on a bounded neighbourhood only (the metrics), so that every core comes out exactly as
    it would from the whole photo. `core` is at least two grid steps."""
    if core < 2 * grid:
        raise ValueError(f"core {core} must be at least two grid steps ({2 * grid})")
    count = -(-length // core)
    starts = [i * length // count // grid * grid for i in range(count)] + [length]
    return [Span(lo, hi, max(lo - halo, 0), min(hi + halo, length)) for lo, hi in pairwise(starts)]


def _spans(length: int, tile: Optional[int], halo: int, grid: int) -> list[Span]:
    """Equal cores on the grid, each inside a window of one common size that holds its halo."""
    if tile is None or length <= tile:
        return [Span(0, length, 0, length)]
    units, core_units = length // grid, (tile - 2 * halo) // grid
    count = -(-units // core_units)
    base, extra = divmod(units, count)
    sizes = [(base + (i < extra)) * grid for i in range(count)]
    window = min(max(sizes) + 2 * halo, length)
    spans, start = [], 0
    for size in sizes:
        spans.append(Span(start, start + size, *_clamped(start - halo, window, length)))
        start += size
    return spans


def _clamped(start: int, size: int, length: int) -> tuple[int, int]:
    start = min(max(start, 0), length - size)
    return start, start + size


def _extent(spans: Sequence[Span], index: int, factor: Fraction, ramp: int) -> tuple[int, int]:
    """Output pixels where span `index` has weight: its core plus half a ramp on inner sides."""
    span = spans[index]
    lo = int(span.core_start * factor) - (ramp if index > 0 else 0)
    hi = int(span.core_end * factor) + (ramp if index < len(spans) - 1 else 0)
    return lo, hi


def _weights(spans: Sequence[Span], index: int, factor: Fraction, ramp: int) -> np.ndarray:
    """1-D blending weights over the span's extent: rising and falling ramps that sum to one."""
    lo, hi = _extent(spans, index, factor, ramp)
    centres = np.arange(lo, hi, dtype=np.float32) + 0.5
    weights = np.ones(hi - lo, dtype=np.float32)
    if index > 0:
        weights = np.minimum(weights, (centres - lo) / (2 * ramp))
    if index < len(spans) - 1:
        weights = np.minimum(weights, (hi - centres) / (2 * ramp))
    return weights


def _store(out: torch.Tensor, top: int, rows: torch.Tensor) -> None:
    """Writes finished float rows (h, W, C) into `out`, cropping to its size; uint8 is rounded.
    The rows are overwritten. In torch, not numpy, so that these passes use all threads (at 6K they
    took a quarter of a one-block decode in numpy), and in chunks of rows that stay in the cache
    through the four passes (a 6K photo's: 37 against 64 ms whole)."""
    rows = rows[:max(out.shape[0] - top, 0), :out.shape[1]]
    for first in range(0, rows.shape[0], _STORE_ROWS):
        chunk = rows[first:first + _STORE_ROWS]
        if out.dtype == torch.uint8:
            chunk = round_to_pixel_values_(chunk)
        out[top + first:top + first + chunk.shape[0]] = chunk


def run_tiled(fn: Callable[[list[Window]], torch.Tensor], size: tuple[int, int], out: np.ndarray,
              factor: Fraction, tile: Optional[int], halo: int, grid: int, batch: int = 1) -> None:
    """Fills `out` (H, W, C) with `fn` run over tiles of an input of `size` (height, width).

    `fn` gets windows of one size and returns their outputs stacked, (N, C, h * factor, w * factor);
    `out` may be smaller than size * factor (its extra rows and columns are cropped away).
    `tile` is the largest window side (None: one window), `halo` the context on inner sides;
    sizes, tile and halo are multiples of `grid`, with tile >= 4 * halo.
    """
    if any(v % grid for v in (*size, halo, tile or 0)):
        raise ValueError(f"size {size}, tile {tile} and halo {halo} must be multiples of {grid}")
    if tile is not None and tile < 4 * halo:
        raise ValueError(f"tile {tile} must be at least four halos ({4 * halo})")
    ramp = int(halo * factor) // 2
    if tile is not None and ramp < 1:
        raise ValueError(f"halo {halo} leaves no blending ramp at output factor {factor}")
    rows, cols = _spans(size[0], tile, halo, grid), _spans(size[1], tile, halo, grid)
    target = torch.from_numpy(out)
    if len(rows) == len(cols) == 1:  # one window: nothing to blend
        _store(target, 0, fn([Window(0, 0, *size)])[0].float().cpu().permute(1, 2, 0))
        return
    col_weights = [torch.from_numpy(_weights(cols, j, factor, ramp)) for j in range(len(cols))]
    out_width = int(size[1] * factor)
    carry = torch.zeros((0, out_width, out.shape[2]))
    for i, row in enumerate(rows):
        lo, hi = _extent(rows, i, factor, ramp)
        band = torch.zeros((hi - lo, out_width, out.shape[2]))
        band[:carry.shape[0]] = carry
        row_weights = torch.from_numpy(_weights(rows, i, factor, ramp))
        windows = [Window(row.start, col.start, row.end, col.end) for col in cols]
        for first in range(0, len(windows), batch):
            results = fn(windows[first:first + batch]).float().cpu()
            for j, result in enumerate(results, start=first):
                c_lo, c_hi = _extent(cols, j, factor, ramp)
                top, left = lo - int(row.start * factor), c_lo - int(cols[j].start * factor)
                part = result[:, top:top + hi - lo, left:left + c_hi - c_lo].permute(1, 2, 0)
                band[:, c_lo:c_hi].addcmul_(part, torch.outer(row_weights, col_weights[j])[:, :, None])
        done = _extent(rows, i + 1, factor, ramp)[0] - lo if i + 1 < len(rows) else hi - lo
        _store(target, lo, band[:done])
        carry = band[done:].clone()
        del band
