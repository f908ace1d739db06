"""Standard JPEG tables: the Annex K examples (ITU T.81), scaled by the IJG quality as libjpeg does."""
from __future__ import annotations

import torch

# ITU T.81 Annex K example tables (the IJG defaults), natural order; the QPM starts its prediction from them.
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


def ijg_tables(quality: torch.Tensor) -> torch.Tensor:
    """IJG quality 1..100 (N,) -> tables (N,128): libjpeg's jpeg_quality_scaling formula."""
    quality = quality.clamp(1, 100).reshape(-1, 1)
    scaling = torch.where(quality < 50, 5000 / quality, 200 - 2 * quality)
    return torch.floor((ANNEX_K_TABLES.flatten().to(quality) * scaling + 50) / 100).clamp(1, 255)
