"""The assembled HyperThumb model and its configuration.

    HR --encoder--> thumbnail --DCT--> coefficients --QPM(stats, rate t)--> tables
       --quantize--> integers (the file) --dequantize--> coefficients + decoded thumbnail
       --decoder--> restored HR

`forward` is the training path (straight-through rounding, estimated bits); `codec.py` runs the
same modules on real files. `from_pretrained` / `save_pretrained` read and write a checkpoint
folder or Hub repository (`pretrained.py`).
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, field
from typing import NamedTuple, Optional

import torch
from torch import nn

from . import jpeg_sim
from .decoder import DecoderConfig, FrequencyAwareDecoder
from .encoders import build_encoder
from .pretrained import HyperThumbHubMixin
from .qpm import QuantizationTablePredictor, dct_statistics
from .rate_model import CoefficientRateModel
from .standard_tables import StandardTablePredictor

BLOCK_GRID = 8  # JPEG block side in thumbnail pixels


@dataclass
class HyperThumbConfig:
    encoder: str = "rdbunet"
    encoder_options: dict = field(default_factory=dict)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    scale: int = 4
    qpm_hidden: int = 128
    # Rate weights at t = -1 and t = 1; the map is log-linear and extends past them (training samples t in
    # [-3, 1], about 1 down to 0.03 bpp on full-size photos).
    lambda_min: float = 0.01
    lambda_max: float = 1.0

    @property
    def hr_multiple(self) -> int:
        """HR sides are padded to this so the thumbnail is a whole number of JPEG blocks."""
        return self.scale * BLOCK_GRID

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "HyperThumbConfig":
        data = dict(data)
        data["decoder"] = DecoderConfig(**data.get("decoder", {}))
        return cls(**data)


class ForwardResult(NamedTuple):
    thumbnail: torch.Tensor  # encoder output, before JPEG
    decoded_thumbnail: torch.Tensor  # what a JPEG viewer shows
    restored: torch.Tensor  # HR reconstruction
    bits: torch.Tensor  # estimated bits per image (N,)
    scaled_coefficients: torch.Tensor  # coefficients / tables, before rounding
    luma_table: torch.Tensor
    chroma_table: torch.Tensor


class HyperThumbModel(nn.Module, HyperThumbHubMixin):
    config_class = HyperThumbConfig

    def __init__(self, config: HyperThumbConfig):
        super().__init__()
        self.config = config
        self.encoder = build_encoder(config.encoder, config.scale, config.encoder_options)
        self.table_predictor = (StandardTablePredictor() if config.encoder == "bicubic"
                                else QuantizationTablePredictor(config.qpm_hidden))
        self.rate_model = CoefficientRateModel()
        self.decoder = FrequencyAwareDecoder(config.decoder, config.scale)

    def rate_lambda(self, rate_t: torch.Tensor) -> torch.Tensor:
        """Rate setting t -> the rate weight of the loss: lambda_min at t = -1, lambda_max at t = 1, log-linear."""
        lo, hi = math.log(self.config.lambda_min), math.log(self.config.lambda_max)
        return torch.exp(lo + (rate_t + 1) / 2 * (hi - lo))

    def predict_tables(self, coefficients: torch.Tensor, rate_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.table_predictor(dct_statistics(coefficients), rate_t)

    def restore(self, dequantized: torch.Tensor,
                network_dtype: Optional[torch.dtype] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Dequantized coefficients (N,3,bh,bw,8,8) -> (decoded thumbnail, restored HR)."""
        decoded = jpeg_sim.coefficients_to_image(dequantized)
        with _autocast(decoded.device, network_dtype):
            restored = self.decoder(jpeg_sim.coefficients_as_channels(dequantized), decoded).float()
        return decoded, restored

    def forward(self, hr: torch.Tensor, rate_t: torch.Tensor,
                network_dtype: Optional[torch.dtype] = None) -> ForwardResult:
        """Training path: differentiable end to end (rounding by straight-through estimate).

        `network_dtype` (e.g. bf16 on a GPU) runs the encoder and decoder networks under autocast;
        the JPEG steps stay fp32, since bf16 cannot hold a DCT coefficient to the nearest integer.
        """
        with _autocast(hr.device, network_dtype):
            thumbnail = self.encoder(hr).float()
        coefficients = jpeg_sim.image_to_coefficients(thumbnail)
        luma, chroma = self.predict_tables(coefficients, rate_t)
        tables = jpeg_sim.component_tables(luma, chroma)
        scaled = coefficients / tables
        # The rate gradient reaches the QPM's tables but not the encoder: the encoder is not told
        # the rate setting t, and averaged over t the rate term only taught it to blur the thumbnail
        # (thumbnail PSNR fell to 28 dB in 500 CPU steps). Rate is the tables' job.
        bits = self.rate_model(coefficients.detach() / tables)
        dequantized = jpeg_sim.straight_through_round(scaled) * tables
        decoded, restored = self.restore(dequantized, network_dtype)
        return ForwardResult(thumbnail, decoded, restored, bits, scaled, luma, chroma)


def _autocast(device: torch.device, dtype: Optional[torch.dtype]) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def parameter_counts(model: HyperThumbModel) -> dict[str, int]:
    """Parameters per part, as printed by `python -m hyperthumb info`."""
    parts = {"encoder": model.encoder, "qpm": model.table_predictor, "rate_model": model.rate_model,
             "decoder": model.decoder,
             "decoder.coefficient_branch": model.decoder.coefficient_branch}
    return {name: sum(p.numel() for p in part.parameters()) for name, part in parts.items()}
