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

# IJG / JPEG Annex K example tables, natural order: the starting point of the prediction.
_ANNEX_K_LUMA = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]
_ANNEX_K_CHROMA = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
] + [99] * 32
ANNEX_K_TABLES = torch.tensor([_ANNEX_K_LUMA, _ANNEX_K_CHROMA], dtype=torch.float32)

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
