"""Encoders: HR RGB in [0,1] -> thumbnail RGB at 1/scale per side, in [0,1].

Every encoder predicts a residual over the bicubic thumbnail, so it starts as an ordinary
thumbnail and learns only what helps the decoder.
"""
from __future__ import annotations

from torch import nn

from hyperthumb.models.encoders.bicubic import BicubicEncoder
from hyperthumb.models.encoders.rdbunet import RDBUnetConfig, RDBUnetEncoder
from hyperthumb.models.encoders.transformer import TransformerEncoder, TransformerEncoderConfig

ENCODERS = {
    "rdbunet": (RDBUnetEncoder, RDBUnetConfig),
    "transformer": (TransformerEncoder, TransformerEncoderConfig),
    "bicubic": (BicubicEncoder, None),
}


def build_encoder(name: str, scale: int, options: dict) -> nn.Module:
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose one of {sorted(ENCODERS)}")
    module, config = ENCODERS[name]
    return module(scale) if config is None else module(config(**options), scale)
