"""Frequency-aware decoder (HyperThumbnail, Qi et al., CVPR 2023), deliberately small.

    dequantized DCT (192 ch, 1/8 thumb) --conv--> ResBlocks --1x1, pixel-shuffle(8)--> 24 ch
    decoded thumbnail RGB (3 ch) -----------------------------------------------------^ concat (27)
      --conv--> ResBlocks --conv--> residual + bicubic(thumbnail), both as scale^2 phases --pixel-shuffle--> HR

The bicubic upscale is computed as the convolution it is (`BicubicPhases`) and added before the
pixel shuffle, at the thumbnail's resolution: at 6K on two CPU cores the convolution took 0.07 s
against 0.4-0.8 s for `interpolate` (NCHW / channels-last), and an HR-sized addition is saved; a
one-block decoder went from 1.62 to 0.95 s (`tests/bench_decoder_depth.py`). Without autograd the
output is written in bands of rows, so that a whole 6K decode peaks at 0.78 GB instead of 1.08 GB.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

# Dequantized coefficients span about +-1024; this brings them near unit scale.
_COEFFICIENT_SCALE = 1.0 / 64.0
_BAND_ROWS = 64  # thumbnail rows per band of the inference output
_BAND_CONTEXT = 2  # rows the bicubic phases' 5x5 convolution (and the 3x3 before it) reach past a band


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

    def forward(self, coefficient_channels: torch.Tensor, thumbnail: torch.Tensor) -> torch.Tensor:
        """(N,192,h/8,w/8) dequantized coefficients + (N,3,h,w) decoded thumbnail -> HR (N,3,sh,sw)."""
        features = self.hr_branch(self._joined(coefficient_channels, thumbnail))  # nothing else held meanwhile
        if torch.is_grad_enabled() or torch.jit.is_tracing() or torch.compiler.is_compiling():
            return self.upsample[1](self._phases(features, thumbnail))
        return self._restore_in_bands(features, thumbnail)

    def _joined(self, coefficient_channels: torch.Tensor, thumbnail: torch.Tensor) -> torch.Tensor:
        """The coefficient branch's features at the thumbnail's resolution, and the thumbnail."""
        frequency_features = self.coefficient_branch(coefficient_channels * _COEFFICIENT_SCALE)
        # The thumbnail joins in the features' precision, as the next convolution would cast it anyway.
        return torch.cat([frequency_features, thumbnail.to(frequency_features.dtype)], dim=1)

    def _phases(self, features: torch.Tensor, thumbnail: torch.Tensor) -> torch.Tensor:
        """The HR output as scale^2 phases per colour at the thumbnail's resolution, fp32."""
        phases = self.bicubic_phases(thumbnail)
        phases += self.upsample[0](features)  # in place, in fp32: one HR-sized buffer fewer
        return phases

    def _restore_in_bands(self, features: torch.Tensor, thumbnail: torch.Tensor) -> torch.Tensor:
        """Inference: the output written band by band, each band's phases shuffled straight into it,
        so that neither the phases nor the residual exist whole (three HR-sized fp32 buffers at once
        otherwise). Exact: the 3x3 and 5x5 convolutions see two rows of context past each band."""
        n, _, height, width = thumbnail.shape
        s = self.scale
        out = torch.empty((n, 3, height * s, width * s), device=thumbnail.device,
                          memory_format=torch.channels_last if features.is_contiguous(
                              memory_format=torch.channels_last) else torch.contiguous_format)
        for top in range(0, height, _BAND_ROWS):
            bottom = min(top + _BAND_ROWS, height)
            lo, hi = max(top - _BAND_CONTEXT, 0), min(bottom + _BAND_CONTEXT, height)
            rows = bottom - top
            phases = self._phases(features[:, :, lo:hi], thumbnail[:, :, lo:hi])[:, :, top - lo:top - lo + rows]
            # pixel shuffle: out[., c, y*s + i, x*s + j] = phases[., c*s*s + i*s + j, y, x]
            out[:, :, top * s:bottom * s].view(n, 3, rows, s, width, s).copy_(
                phases.view(n, 3, s, s, rows, width).permute(0, 1, 4, 2, 5, 3))
        return out
