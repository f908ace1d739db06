"""Frequency-aware decoder (HyperThumbnail, Qi et al., CVPR 2023), deliberately small.

    dequantized DCT (192 ch, 1/8 thumb) --conv--> ResBlocks --1x1, pixel-shuffle(8)--> 24 ch
    decoded thumbnail RGB (3 ch) -----------------------------------------------------^ concat (27)
      --conv--> ResBlocks --conv--> residual + bicubic(thumbnail), both as scale^2 phases --pixel-shuffle--> HR

The bicubic upscale is computed as the convolution it is (`BicubicPhases`) and added before the
pixel shuffle, at the thumbnail's resolution: at 6K on two CPU cores the convolution took 0.07 s
against 0.4-0.8 s for `interpolate` (NCHW / channels-last), and an HR-sized addition is saved; a
one-block decoder went from 1.62 to 0.95 s (`tools/bench_decoder_depth.py`). At inference on a
CPU the HR branch streams over bands of rows (`_restore_in_bands`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from hyperthumb.models.pixels import round_to_pixel_values_

# Dequantized coefficients span about +-1024; this brings them near unit scale.
_COEFFICIENT_SCALE = 1.0 / 64.0
_BLOCK = 8  # thumbnail rows per row of coefficient blocks
_BAND_ROWS = 32  # thumbnail rows per band at inference (whole blocks), unless the network is deeper
_BICUBIC_REACH = 2  # rows the bicubic phases' 5x5 convolution reads past a band


@dataclass
class DecoderConfig:
    features: int = 24
    coefficient_blocks: int = 16
    hr_blocks: int = 16
    # The HR branch runs at the thumbnail's full resolution and dominates the decode's time, so it
    # may be narrower than the coefficient branch (None: as wide).
    hr_features: Optional[int] = None


def cubic_weights(offset: float, a: float = -0.75) -> list[float]:
    """Keys' cubic convolution weights (a = -0.75, as PyTorch's and OpenCV's bicubic) of the four
    samples around a position `offset` in [0, 1) past the second of them."""
    def kernel(d: float) -> float:
        d = abs(d)
        if d <= 1:
            return ((a + 2) * d - (a + 3)) * d * d + 1
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return [kernel(offset + 1), kernel(offset), kernel(1 - offset), kernel(2 - offset)]


class BicubicPhases(nn.Module):
    """`interpolate(x, scale_factor=scale, mode="bicubic")` before its pixel shuffle: a fixed 5x5
    convolution to scale^2 phases per channel over an edge-replicated border (PyTorch clamps the
    taps at the edges), always in fp32. Pixel-shuffled, it equals the upscale to float rounding."""

    def __init__(self, scale: int, channels: int = 3):
        super().__init__()
        taps = torch.zeros(scale, 5, dtype=torch.float64)  # per output phase, input offsets -2..2
        for phase in range(scale):
            position = (phase + 0.5) / scale - 0.5  # in input pixels from the nearest one, align_corners=False
            first = math.floor(position) - 1  # the four taps start one sample before the position
            taps[phase, first + 2:first + 6] = torch.tensor(cubic_weights(position - (first + 1)), dtype=torch.float64)
        kernel = torch.einsum("iy,jx->ijyx", taps, taps).reshape(scale * scale, 1, 5, 5)
        self.register_buffer("kernel", kernel.float().repeat(channels, 1, 1, 1), persistent=False)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            padded = F.pad(x.float(), (2, 2, 2, 2), mode="replicate")
            return F.conv2d(padded, self.kernel, groups=self.channels)


class ResidualBlock(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(features, features, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(features, features, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        out += x  # in place: one activation fewer at a time (at 6K, 150 MB at 24 features)
        return out


def _streams(thumbnail: torch.Tensor) -> bool:
    """Whether to restore band by band: at inference on a CPU, not in training, tracing or
    compiling (which need the whole graph), nor on a GPU (which wants its work in large pieces)."""
    return not (torch.is_grad_enabled() or torch.jit.is_tracing() or torch.compiler.is_compiling()
                or thumbnail.device.type != "cpu")


class FrequencyAwareDecoder(nn.Module):
    def __init__(self, config: DecoderConfig, scale: int):
        super().__init__()
        self.scale = scale
        f = config.features
        hr_f = config.hr_features or f
        self.coefficient_branch = nn.Sequential(
            nn.Conv2d(192, f, 3, padding=1),
            *(ResidualBlock(f) for _ in range(config.coefficient_blocks)),
            nn.Conv2d(f, f * 64, 1), nn.PixelShuffle(8),
        )
        self.hr_branch = nn.Sequential(
            nn.Conv2d(f + 3, hr_f, 3, padding=1),
            *(ResidualBlock(hr_f) for _ in range(config.hr_blocks)),
        )
        self.upsample = nn.Sequential(nn.Conv2d(hr_f, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale))
        nn.init.zeros_(self.upsample[0].weight)
        nn.init.zeros_(self.upsample[0].bias)
        self.bicubic_phases = BicubicPhases(scale)

    def forward(self, coefficient_channels: torch.Tensor, thumbnail: torch.Tensor,
                out: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(N,192,h/8,w/8) dequantized coefficients + (N,3,h,w) decoded thumbnail -> HR (N,3,sh,sw).

        `out`, for inference: a uint8 (N,3,sh,sw) view of an (N,sh,sw,3) array (the codec's image),
        which gets the HR as 8-bit pixels and is returned; on a CPU band by band, so that no
        HR-sized float buffer exists (302 MB at 6K)."""
        frequency = self.coefficient_branch[:-2](coefficient_channels * _COEFFICIENT_SCALE)
        if not _streams(thumbnail):
            features = self.hr_branch(self._joined(frequency, thumbnail))
            restored = self.upsample[1](self._phases(features, thumbnail))
            if out is None:
                return restored
            # rounded and cast on the device, then pixel-major into the caller's buffer: a quarter
            # of the float's bytes (at 6K on an H200, copying the float HR to the host took 167 of
            # the decode's 350 ms)
            pixels = round_to_pixel_values_(restored).to(torch.uint8).permute(0, 2, 3, 1)
            out.permute(0, 2, 3, 1).copy_(pixels)
            return out
        return self._restore_in_bands(frequency, thumbnail, out)

    def _joined(self, frequency: torch.Tensor, thumbnail: torch.Tensor) -> torch.Tensor:
        """The coefficient branch's features brought to the thumbnail's resolution (its 1x1
        convolution and pixel shuffle, which reach no neighbour), and the thumbnail."""
        features = self.coefficient_branch[-2:](frequency)
        # The thumbnail joins in the features' precision, as the next convolution would cast it anyway.
        return torch.cat([features, thumbnail.to(features.dtype)], dim=1)

    def _phases(self, features: torch.Tensor, thumbnail: torch.Tensor) -> torch.Tensor:
        """The HR output as scale^2 phases per colour at the thumbnail's resolution, fp32."""
        phases = self.bicubic_phases(thumbnail)
        phases += self.upsample[0](features)  # in place, in fp32: one HR-sized buffer fewer
        return phases

    def _restore_in_bands(self, frequency: torch.Tensor, thumbnail: torch.Tensor,
                          out: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Inference: the HR branch and the upsampling run over the image as a stream of bands of
        thumbnail rows, each layer passing on the rows it can finish (`_RowConv`), and each band of
        finished phases is shuffled straight into the output. So no activation at the thumbnail's
        resolution exists whole, nothing is computed twice, and the bands' buffers are small enough
        to be reused from the heap instead of faulted in afresh. At 6K in fp32, repeated decodes in
        one process: the full RDBUnet decoder 5.1-5.4 s with 0.09-0.17 million page faults against
        6.3-6.5 s and 1.5 million layer by layer over the whole image; the fast one 1.2-1.5 s
        against 1.5-1.7 s; peaks 0.52-0.61 GB against 0.54-0.81 GB (0.27-0.45 GB rounding into the
        codec's 8-bit image, `out`). Bands of 32 rows peaked 0.1-0.2 GB below bands of 64 or 128
        (more of them fit the heap's holes). Exact, as every convolution sees the rows it would see
        whole.

        The phases are ordered (row phase, column phase, colour) here rather than the trained
        (colour, row phase, column phase): in channels-last memory the shuffle then moves runs of
        `scale` pixels' colours instead of single values (a 6K fast decode: 0.03 s less)."""
        n, _, height, width = thumbnail.shape
        s = self.scale
        conv = self.upsample[0]
        pixel_major = torch.arange(3 * s * s, device=conv.weight.device).view(3, s * s).t().reshape(-1)
        layers = [_RowResidual(layer) if isinstance(layer, ResidualBlock) else _RowConv(layer.weight, layer.bias)
                  for layer in self.hr_branch] + [_RowConv(conv.weight[pixel_major], conv.bias[pixel_major])]
        if out is None:
            out = torch.empty((n, 3, height * s, width * s), device=thumbnail.device,
                              memory_format=torch.channels_last if thumbnail.is_contiguous(
                                  memory_format=torch.channels_last) else torch.contiguous_format)
        # Each convolution passes on one row fewer than it gets of the first band, and each needs two.
        convs = sum(isinstance(layer, nn.Conv2d) for layer in self.hr_branch.modules()) + 1
        band = max(_BAND_ROWS, -(-(convs + 2) // _BLOCK) * _BLOCK)
        done = 0  # output rows written, in thumbnail rows
        for top in range(0, height, band):
            last = top + band >= height
            rows = self._joined(frequency[:, :, top // _BLOCK:(top + band) // _BLOCK], thumbnail[:, :, top:top + band])
            for layer in layers:
                rows = layer(rows, last)
            count = rows.shape[2]
            lo, hi = max(done - _BICUBIC_REACH, 0), min(done + count + _BICUBIC_REACH, height)
            bicubic = self.bicubic_phases(thumbnail[:, :, lo:hi])[:, :, done - lo:done - lo + count]
            phases = rows.float()
            phases.view(n, s, s, 3, count, width).add_(bicubic.view(n, 3, s, s, count, width).permute(0, 2, 3, 1, 4, 5))
            if out.dtype == torch.uint8:
                phases = round_to_pixel_values_(phases)
            # pixel shuffle: out[., c, y*s + i, x*s + j] = phases[., (i*s + j)*3 + c, y, x]
            out[:, :, done * s:(done + count) * s].view(n, 3, count, s, width, s).copy_(
                phases.view(n, s, s, 3, count, width).permute(0, 3, 4, 1, 5, 2))
            done += count
        return out


class _RowConv:
    """A 3x3 convolution (padding 1) over an image that arrives in bands of rows, top to bottom:
    each call returns the rows whose three input rows have arrived (the band's less its last, and
    the previous band's last); the image's top and bottom get their zero rows."""

    def __init__(self, weight: torch.Tensor, bias: Optional[torch.Tensor]):
        self.weight, self.bias = weight, bias
        self.carry: Optional[torch.Tensor] = None  # the last two rows seen

    def __call__(self, rows: torch.Tensor, last: bool) -> torch.Tensor:
        edge = torch.zeros_like(rows[:, :, :1])
        window = torch.cat([edge if self.carry is None else self.carry, rows] + ([edge] if last else []), dim=2)
        self.carry = window[:, :, -2:].clone()  # not a view, which would keep the whole window
        return F.conv2d(window, self.weight, self.bias, padding=(0, 1))


class _RowResidual:
    """A residual block over bands of rows: its two convolutions as `_RowConv`s, each output row
    added to its input row, the last rows of which wait for the next band's."""

    def __init__(self, block: ResidualBlock):
        first, self.relu, second = block.body
        self.first, self.second = _RowConv(first.weight, first.bias), _RowConv(second.weight, second.bias)
        self.waiting: Optional[torch.Tensor] = None

    def __call__(self, rows: torch.Tensor, last: bool) -> torch.Tensor:
        out = self.second(self.relu(self.first(rows, last)), last)
        held = 0 if self.waiting is None else self.waiting.shape[2]
        if held:
            out[:, :, :held] += self.waiting
        used = out.shape[2] - held
        out[:, :, held:] += rows[:, :, :used]
        self.waiting = rows[:, :, used:].clone()
        return out
