"""Frequency-aware decoder (HyperThumbnail, Qi et al., CVPR 2023), deliberately small.

    dequantized DCT (192 ch, 1/8 thumb) --conv--> ResBlocks --1x1, pixel-shuffle(8)--> 24 ch
    decoded thumbnail RGB (3 ch) -----------------------------------------------------^ concat (27)
      --conv--> ResBlocks --conv, pixel-shuffle(scale)--> residual + bicubic(thumbnail) = HR
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .resize import bicubic_upscale

# Dequantized coefficients span about +-1024; this brings them near unit scale.
_COEFFICIENT_SCALE = 1.0 / 64.0


@dataclass
class DecoderConfig:
    features: int = 24
    coefficient_blocks: int = 16
    hr_blocks: int = 16


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
        self.coefficient_branch = nn.Sequential(
            nn.Conv2d(192, f, 3, padding=1),
            *(ResidualBlock(f) for _ in range(config.coefficient_blocks)),
            nn.Conv2d(f, f * 64, 1), nn.PixelShuffle(8),
        )
        self.hr_branch = nn.Sequential(
            nn.Conv2d(f + 3, f, 3, padding=1),
            *(ResidualBlock(f) for _ in range(config.hr_blocks)),
        )
        self.upsample = nn.Sequential(nn.Conv2d(f, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale))
        nn.init.zeros_(self.upsample[0].weight)
        nn.init.zeros_(self.upsample[0].bias)

    def forward(self, coefficient_channels: torch.Tensor, thumbnail: torch.Tensor) -> torch.Tensor:
        """(N,192,h/8,w/8) dequantized coefficients + (N,3,h,w) decoded thumbnail -> HR (N,3,sh,sw)."""
        frequency_features = self.coefficient_branch(coefficient_channels * _COEFFICIENT_SCALE)
        features = self.hr_branch(torch.cat([frequency_features, thumbnail], dim=1))
        return bicubic_upscale(thumbnail, self.scale) + self.upsample(features)
