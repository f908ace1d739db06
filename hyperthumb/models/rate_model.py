"""Training-time rate: a learned factorized density per component and DCT frequency.

CompressAI's EntropyBottleneck (Balle et al., ICLR 2018) over 192 channels gives the likelihood of
each quantized coefficient; -log2 of it is the bit cost the encoder and the QPM learn to lower.
The real rate is always measured on the written file.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

with warnings.catch_warnings():  # compressai imports torch_geometric, which calls torch.jit.script at import
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
    from compressai.entropy_models import EntropyBottleneck

from hyperthumb.models.differentiable_jpeg import coefficients_as_channels


class CoefficientRateModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.bottleneck = EntropyBottleneck(192, init_scale=8)
        # The entropy coder's CDF tables stay empty: compressai fills them in update(), for real
        # entropy coding, which a training-time rate never does. Not part of a checkpoint.
        for name in ("_offset", "_quantized_cdf", "_cdf_length"):
            self.bottleneck.register_buffer(name, getattr(self.bottleneck, name), persistent=False)

    def forward(self, scaled_coefficients: torch.Tensor) -> torch.Tensor:
        """Coefficients divided by their tables (N,3,bh,bw,8,8) -> estimated bits per image (N,)."""
        channels = coefficients_as_channels(scaled_coefficients)
        _, likelihoods = self.bottleneck(channels)
        return -torch.log2(likelihoods).flatten(1).sum(dim=1)

    def auxiliary_loss(self) -> torch.Tensor:
        """Trains the density's quantiles; optimised by its own optimiser."""
        return self.bottleneck.loss()
