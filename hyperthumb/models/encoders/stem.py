"""The encoders' first layer: a 3x3 conv over the HR photo pixel-unshuffled by the scale."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class UnshuffledConv(nn.Conv2d):
    """A 3x3 conv over `pixel_unshuffle(hr, scale)`, computed as the equal conv of side 3 * scale
    and stride `scale` over the HR itself, so the tile is never copied into the unshuffled layout
    (on a 2-core CPU that copy cost more than the conv). The weights, and so checkpoints, are those
    of the 3x3 conv over 3 * scale**2 channels."""

    def __init__(self, scale: int, out_channels: int):
        super().__init__(3 * scale * scale, out_channels, 3, padding=1)
        self.scale = scale

    def forward(self, hr: torch.Tensor) -> torch.Tensor:
        s, out = self.scale, self.out_channels
        # Unshuffled channel c * s * s + dy * s + dx, at (y, x), is hr[c, s * y + dy, s * x + dx].
        kernel = self.weight.view(out, 3, s, s, 3, 3).permute(0, 1, 4, 2, 5, 3).reshape(out, 3, 3 * s, 3 * s)
        return F.conv2d(hr, kernel, self.bias, stride=s, padding=s)
