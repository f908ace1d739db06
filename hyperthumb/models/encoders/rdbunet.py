"""RDBUnet encoder (HyperThumbnail, Qi et al., CVPR 2023): a U-Net of residual dense blocks.

    HR --pixel-unshuffle(4)--> stem --RDBs--> skip0 --down--> RDBs --> skip1 --down--> RDBs
       <--up-- (+skip1) RDBs <--up-- (+skip0) RDBs --> head --> residual + bicubic(HR)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hyperthumb.models.encoders.stem import UnshuffledConv
from hyperthumb.models.pixels import bicubic_downscale


@dataclass
class RDBUnetConfig:
    features: int = 64  # the paper's width; the shipped CPU checkpoint uses fewer
    growth: int = 32
    dense_layers: int = 4
    blocks_per_level: int = 2


class ResidualDenseBlock(nn.Module):
    """Densely connected convs fused by a 1x1 conv, with a scaled residual (Zhang et al. 2018)."""

    def __init__(self, features: int, growth: int, layers: int):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(features + i * growth, growth, 3, padding=1) for i in range(layers))
        self.fuse = nn.Conv2d(features + layers * growth, features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Concatenation copies every feature so far (a tenth of a lite encoder's time on a CPU): the
        # first conv reads x itself, and the residual's scale rides on the add.
        features = [x]
        for conv in self.convs:
            features.append(F.leaky_relu(conv(torch.cat(features, 1) if len(features) > 1 else x), 0.2))
        return torch.add(x, self.fuse(torch.cat(features, 1)), alpha=0.2)


class RDBUnetEncoder(nn.Module):
    def __init__(self, config: RDBUnetConfig, scale: int):
        super().__init__()
        self.scale = scale
        f, g, n = config.features, config.growth, config.dense_layers

        def level(width: int) -> nn.Sequential:
            return nn.Sequential(*(ResidualDenseBlock(width, g, n) for _ in range(config.blocks_per_level)))

        self.stem = UnshuffledConv(scale, f)
        self.level0 = level(f)
        self.down1 = nn.Conv2d(f, 2 * f, 3, stride=2, padding=1)
        self.level1 = level(2 * f)
        self.down2 = nn.Conv2d(2 * f, 2 * f, 3, stride=2, padding=1)
        self.bottom = level(2 * f)
        self.up2 = nn.Sequential(nn.Conv2d(2 * f, 2 * f * 4, 3, padding=1), nn.PixelShuffle(2))
        self.decode1 = level(2 * f)
        self.up1 = nn.Sequential(nn.Conv2d(2 * f, f * 4, 3, padding=1), nn.PixelShuffle(2))
        self.decode0 = level(f)
        self.head = nn.Conv2d(f, 3, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, hr: torch.Tensor) -> torch.Tensor:
        """HR (N,3,H,W), sides multiples of 4*scale -> thumbnail (N,3,H/scale,W/scale)."""
        skip0 = self.level0(self.stem(hr))
        skip1 = self.level1(self.down1(skip0))
        x = self.bottom(self.down2(skip1))
        x = self.decode1(self.up2(x) + skip1)
        x = self.decode0(self.up1(x) + skip0)
        return (bicubic_downscale(hr, self.scale) + self.head(x)).clamp(0, 1)
