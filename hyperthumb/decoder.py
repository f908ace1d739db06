"""Frequency-aware decoder (HyperThumbnail, Qi et al., CVPR 2023), deliberately small.

    dequantized DCT (192 ch, 1/8 thumb) --conv--> ResBlocks --1x1, pixel-shuffle(8)--> 24 ch
    decoded thumbnail RGB (3 ch) -----------------------------------------------------^ concat (27)
      --conv--> ResBlocks --conv--> residual + bicubic(thumbnail), both as scale^2 phases --pixel-shuffle--> HR

The bicubic upscale is computed as the convolution it is (`BicubicPhases`) and added before the
pixel shuffle, at the thumbnail's resolution: at 6K on two CPU cores the convolution took 0.07 s
against 0.4-0.8 s for `interpolate` (NCHW / channels-last), and an HR-sized addition is saved; a
one-block decoder went from 1.62 to 0.95 s (`tests/bench_decoder_depth.py`).
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
        return x + self.body(x)


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
        frequency_features = self.coefficient_branch(coefficient_channels * _COEFFICIENT_SCALE)
        # The thumbnail joins in the features' precision, as the next convolution would cast it anyway.
        features = self.hr_branch(torch.cat([frequency_features, thumbnail.to(frequency_features.dtype)], dim=1))
        residual_conv, pixel_shuffle = self.upsample
        phases = self.bicubic_phases(thumbnail)
        phases += residual_conv(features)  # in place, in fp32: one HR-sized buffer fewer
        return pixel_shuffle(phases)
