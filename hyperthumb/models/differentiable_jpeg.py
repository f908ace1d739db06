"""Differentiable JPEG (baseline, 4:4:4): colour transform, 8x8 DCT and quantization in torch.

The same functions run in training (with a straight-through rounding) and at export time (with
integer tables and exact rounding), so the coefficients written to the file are the ones the
model was trained on.
"""
from __future__ import annotations

import math

import torch

BLOCK = 8

# JFIF full-range RGB -> YCbCr (ITU-T T.871).
_RGB_TO_YCBCR = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [-0.168735892, -0.331264108, 0.5],
        [0.5, -0.418687589, -0.081312411],
    ]
)
_YCBCR_TO_RGB = torch.linalg.inv(_RGB_TO_YCBCR)
_CHROMA_OFFSET = torch.tensor([0.0, 128.0, 128.0])


def _dct_matrix() -> torch.Tensor:
    """Orthonormal 8-point DCT-II; D @ X @ D.T equals the JPEG forward DCT of block X."""
    k = torch.arange(BLOCK, dtype=torch.float64)
    basis = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / (2 * BLOCK))
    scale = torch.full((BLOCK, 1), math.sqrt(2 / BLOCK), dtype=torch.float64)
    scale[0] = math.sqrt(1 / BLOCK)
    return (basis * scale).float()


_DCT = _dct_matrix()


def rgb_to_ycbcr(rgb255: torch.Tensor) -> torch.Tensor:
    """(N,3,H,W) RGB in 0..255 -> YCbCr in 0..255."""
    m = _RGB_TO_YCBCR.to(rgb255)
    return torch.einsum("ij,njhw->nihw", m, rgb255) + _CHROMA_OFFSET.to(rgb255).view(1, 3, 1, 1)


def ycbcr_to_rgb(ycbcr255: torch.Tensor) -> torch.Tensor:
    m = _YCBCR_TO_RGB.to(ycbcr255)
    shifted = ycbcr255 - _CHROMA_OFFSET.to(ycbcr255).view(1, 3, 1, 1)
    return torch.einsum("ij,njhw->nihw", m, shifted)


def blockwise_dct(planes: torch.Tensor) -> torch.Tensor:
    """(N,C,H,W) level-shifted samples -> (N,C,H/8,W/8,8,8) DCT coefficients, natural order."""
    n, c, h, w = planes.shape
    blocks = planes.reshape(n, c, h // BLOCK, BLOCK, w // BLOCK, BLOCK).permute(0, 1, 2, 4, 3, 5)
    d = _DCT.to(planes)
    return d @ blocks @ d.T


def blockwise_idct(coefficients: torch.Tensor) -> torch.Tensor:
    """Inverse of `blockwise_dct`."""
    n, c, bh, bw = coefficients.shape[:4]
    d = _DCT.to(coefficients)
    blocks = d.T @ coefficients @ d
    return blocks.permute(0, 1, 2, 4, 3, 5).reshape(n, c, bh * BLOCK, bw * BLOCK)


def image_to_coefficients(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0,1], sides multiples of 8 -> unquantized DCT coefficients (N,3,H/8,W/8,8,8)."""
    return blockwise_dct(rgb_to_ycbcr(rgb * 255.0) - 128.0)


def coefficients_to_image(coefficients: torch.Tensor) -> torch.Tensor:
    """Dequantized coefficients -> RGB in [0,1], clamping samples as a JPEG decoder does."""
    ycbcr = (blockwise_idct(coefficients) + 128.0).clamp(0.0, 255.0)
    return (ycbcr_to_rgb(ycbcr) / 255.0).clamp(0.0, 1.0)


def component_tables(luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """(N,64) luma and chroma tables -> (N,3,1,1,8,8), broadcastable over coefficients."""
    tables = torch.stack([luma, chroma, chroma], dim=1)
    return tables.reshape(tables.shape[0], 3, 1, 1, BLOCK, BLOCK)


def straight_through_round(x: torch.Tensor) -> torch.Tensor:
    """Rounds in the forward pass, passes the gradient unchanged (Bengio et al. 2013)."""
    return x + (torch.round(x) - x).detach()


def quantize(coefficients: torch.Tensor, tables: torch.Tensor, differentiable: bool) -> torch.Tensor:
    """Coefficients / table, rounded: the integers a JPEG file stores."""
    scaled = coefficients / tables
    return straight_through_round(scaled) if differentiable else torch.round(scaled)


def coefficients_as_channels(coefficients: torch.Tensor) -> torch.Tensor:
    """(N,3,bh,bw,8,8) -> (N,192,bh,bw): one channel per component and frequency."""
    n, c, bh, bw = coefficients.shape[:4]
    return coefficients.permute(0, 1, 4, 5, 2, 3).reshape(n, c * BLOCK * BLOCK, bh, bw)
