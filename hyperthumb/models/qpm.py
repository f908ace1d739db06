"""Quantization Prediction Module: one luma and one chroma table per image, conditioned on rate.

From the image's own DCT statistics (mean magnitude per component and frequency, pooled over all
blocks) and the rate setting `t` (lower t, finer tables), an MLP predicts the shape of the log-tables; a learned,
always-positive gain on `t` scales the whole table, so tables are monotone in `t`, one checkpoint
spans the whole rate range and a bisection on `t` reaches a target bpp.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hyperthumb.jpeg.standard_tables import ANNEX_K_TABLES, ijg_tables

_LOG_MAX_TABLE = math.log(255.0)


def dct_statistics(coefficients: torch.Tensor) -> torch.Tensor:
    """(N,3,bh,bw,8,8) coefficients -> (N,192) log mean magnitude per component and frequency."""
    return torch.log1p(coefficients.abs().mean(dim=(2, 3)).flatten(1))


class QuantizationTablePredictor(nn.Module):
    def __init__(self, hidden: int = 128, initial_gain: float = 1.85):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(192 + 1, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
            nn.Linear(hidden, 128),
        )
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)
        self.base_log_table = nn.Parameter(torch.log(ANNEX_K_TABLES.flatten()) - 1.15)
        self.raw_gain = nn.Parameter(torch.tensor(math.log(math.expm1(initial_gain))))

    def forward(self, statistics: torch.Tensor, rate_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (luma, chroma) tables (N,64), continuous, strictly inside (1, 255)."""
        t = rate_t.reshape(-1, 1).to(statistics)
        log_table = self.base_log_table + self.mlp(torch.cat([statistics, t], dim=1))
        # The image-adaptive shape is squashed smoothly into (log 1, log 255); the rate gain acts
        # after the squash, so t scales every entry and no entry can saturate out of rate control.
        mid = _LOG_MAX_TABLE / 2
        shape = mid + mid * torch.tanh((log_table - mid) / mid)
        tables = torch.exp(shape + F.softplus(self.raw_gain) * t)
        tables = tables + (tables.clamp(1.0, 255.0) - tables).detach()  # baseline range, gradient kept
        return tables[:, :64], tables[:, 64:]


def quality_of(rate_t: torch.Tensor) -> torch.Tensor:
    """t -> IJG quality, 100..5 over training's t in [-3, 1] (higher t, lower rate); clamped to 1..100 later.

    The map spans the whole range the codec's bpp search can reach: an earlier map gave quality 95 at
    t = -1, so the decoder never saw the near-lossless thumbnails that smooth photos get at 0.2-0.5 bpp,
    and there it did worse than bicubic upscaling.
    """
    return 100 - 23.75 * (rate_t + 3)


class StandardTablePredictor(nn.Module):
    """The QPM's stand-in for the `bicubic-jpeg-sr` baseline: it ignores the image, and its tables
    depend on the rate setting alone, as in an ordinary JPEG."""

    def forward(self, statistics: torch.Tensor, rate_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tables = ijg_tables(quality_of(rate_t.reshape(-1).to(statistics))).expand(statistics.shape[0], -1)
        return tables[:, :64], tables[:, 64:]
