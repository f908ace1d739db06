"""No learned encoder: the plain bicubic thumbnail, for the `bicubic-jpeg-sr` baseline."""
import torch
from torch import nn

from hyperthumb.models.pixels import bicubic_downscale


class BicubicEncoder(nn.Module):
    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale

    def forward(self, hr: torch.Tensor) -> torch.Tensor:
        return bicubic_downscale(hr, self.scale)
