"""Standard JPEG tables (Annex K scaled by the IJG quality) in the QPM's place, for baselines."""
from __future__ import annotations

import torch
from torch import nn

from hyperthumb.models.qpm import ANNEX_K_TABLES


def ijg_tables(quality: torch.Tensor) -> torch.Tensor:
    """IJG quality 1..100 (N,) -> tables (N,128): libjpeg's jpeg_quality_scaling formula."""
    quality = quality.clamp(1, 100).reshape(-1, 1)
    scaling = torch.where(quality < 50, 5000 / quality, 200 - 2 * quality)
    return torch.floor((ANNEX_K_TABLES.flatten().to(quality) * scaling + 50) / 100).clamp(1, 255)


def quality_of(rate_t: torch.Tensor) -> torch.Tensor:
    """t -> IJG quality, 100..5 over training's t in [-3, 1] (higher t, lower rate); clamped to 1..100 later.

    The map spans the whole range the codec's bpp search can reach: an earlier map gave quality 95 at
    t = -1, so the decoder never saw the near-lossless thumbnails that smooth photos get at 0.2-0.5 bpp,
    and there it did worse than bicubic upscaling.
    """
    return 100 - 23.75 * (rate_t + 3)


class StandardTablePredictor(nn.Module):
    """Ignores the image: tables depend on the rate setting alone, as in an ordinary JPEG."""

    def forward(self, statistics: torch.Tensor, rate_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tables = ijg_tables(quality_of(rate_t.reshape(-1).to(statistics))).expand(statistics.shape[0], -1)
        return tables[:, :64], tables[:, 64:]
