"""The assembled HyperThumb model: it owns the method, from the photo to the file's integers and back.

    HR --encoder--> thumbnail --DCT--> coefficients, statistics            `make_thumbnail`, `analyze`
       --QPM(statistics, rate t)--> tables --quantize--> integers + tables `quantize` (the file's content)
       --dequantize--> coefficients --IDCT--> decoded thumbnail (what a viewer shows)
       --decoder(coefficients, decoded thumbnail)--> restored HR           `decompress`

As in CompressAI, `forward` is the training path and `compress` / `decompress` the real one, built
from the same pieces (`make_thumbnail`, `analyze`, the QPM, `synthesize`): in training the tables
are real-valued and the rounding straight-through; at inference the tables are integers in 1..255,
the rounding exact and the coefficients clamped to the baseline range. The encoder does not see the
rate setting, so the work splits where the rate enters: `analyze` once per photo, `quantize` once
per rate setting (the codec's bpp search). `codec.py` adds only what is about files, and runs the
two networks through its engine and tiles (the `decoder` argument of `decompress`).
`from_pretrained` / `save_pretrained` read and write a checkpoint folder or Hub repository
(`pretrained.py`).
"""
from __future__ import annotations

import contextlib
import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Callable, NamedTuple, Optional

import torch
from torch import nn

from hyperthumb.models import differentiable_jpeg
from hyperthumb.models.decoder import DecoderConfig, FrequencyAwareDecoder
from hyperthumb.models.encoders import build_encoder
from hyperthumb.models.pretrained import HyperThumbHubMixin
from hyperthumb.models.qpm import QuantizationTablePredictor, StandardTablePredictor, dct_statistics
from hyperthumb.models.rate_model import CoefficientRateModel

BLOCK_GRID = 8  # JPEG block side in thumbnail pixels
MAX_COEFFICIENT = 2047  # baseline JPEG, 8-bit samples


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


class Analysis(NamedTuple):
    """What encoding computes once per photo, whatever the rate setting."""

    coefficients: torch.Tensor  # the thumbnail's DCT (N,3,h/8,w/8,8,8)
    statistics: torch.Tensor  # what the QPM sees of them (N,192)


class QuantizedThumbnail(NamedTuple):
    """What a thumbnail file stores: quantized DCT coefficients and the tables that divided them.

    From `quantize`: int16 coefficients within +-MAX_COEFFICIENT and int16 tables in 1..255, as
    `jpeg_file` writes and reads them.
    """

    coefficients: torch.Tensor  # (N,3,bh,bw,8,8): Y, Cb, Cr
    luma_table: torch.Tensor  # (N,64) natural order, or (1,64) shared by the batch
    chroma_table: torch.Tensor


DecoderNetwork = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (coefficient channels, decoded) -> HR


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

    def with_decoder(self, config: DecoderConfig) -> "HyperThumbModel":
        """A copy with a decoder of `config`: everything else as trained, the decoder's layers that
        keep their name and shape (a shallower decoder keeps the first blocks) copied, the rest new."""
        return self._with_config(decoder=asdict(config))

    def with_encoder_options(self, options: dict) -> "HyperThumbModel":
        """A copy with an encoder of `options`: the QPM, rate model and decoder as trained, the
        encoder's layers that keep their name and shape copied, the rest new (a new encoder starts
        as the bicubic thumbnail, its head zero)."""
        return self._with_config(encoder_options=dict(options))

    def _with_config(self, **changes) -> "HyperThumbModel":
        model = HyperThumbModel(HyperThumbConfig.from_dict({**self.config.to_dict(), **changes}))
        new_state = model.state_dict()
        model.load_state_dict({name: value for name, value in self.state_dict().items()
                               if name in new_state and new_state[name].shape == value.shape}, strict=False)
        return model

    def encoder_id(self) -> str:
        """12 hex digits naming the weights that make a thumbnail file: the encoder, QPM and rate model
        (everything but the decoder), so that every decoder trained against them shares it."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self.state_dict().items()):
            if not name.startswith("decoder."):
                digest.update(name.encode())
                digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return digest.hexdigest()[:12]

    def rate_lambda(self, rate_t: torch.Tensor) -> torch.Tensor:
        """Rate setting t -> the rate weight of the loss: lambda_min at t = -1, lambda_max at t = 1, log-linear."""
        lo, hi = math.log(self.config.lambda_min), math.log(self.config.lambda_max)
        return torch.exp(lo + (rate_t + 1) / 2 * (hi - lo))

    def make_thumbnail(self, hr: torch.Tensor, network_dtype: Optional[torch.dtype] = None,
                       encoder: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> torch.Tensor:
        """HR (N,3,H,W) in [0,1], sides multiples of `hr_multiple` -> the thumbnail before JPEG, fp32.
        The encoder network runs under `network_dtype` autocast, as `encoder` when given (the codec's
        engine) or as this model's module; its bicubic base stays fp32 (autocast leaves it alone)."""
        with _autocast(hr.device, network_dtype):
            return (encoder or self.encoder)(hr).float()

    @staticmethod
    def analyze(thumbnail: torch.Tensor) -> Analysis:
        """Thumbnail -> its DCT coefficients and their statistics: the encoding the rate does not change."""
        coefficients = differentiable_jpeg.image_to_coefficients(thumbnail)
        return Analysis(coefficients, dct_statistics(coefficients))

    def quantize(self, analysis: Analysis, rate_t: torch.Tensor) -> QuantizedThumbnail:
        """The file's integers at rate settings `rate_t` (N,): integer tables, exact rounding."""
        luma, chroma = (table.round().clamp(1, 255) for table in self.table_predictor(analysis.statistics, rate_t))
        tables = differentiable_jpeg.component_tables(luma, chroma)
        integers = differentiable_jpeg.quantize(analysis.coefficients, tables, differentiable=False)
        integers.clamp_(-MAX_COEFFICIENT, MAX_COEFFICIENT)  # in place: no second copy of 19 MB on a 6K photo
        return QuantizedThumbnail(*(x.to(torch.int16) for x in (integers, luma, chroma)))

    def compress(self, hr: torch.Tensor, rate_t: torch.Tensor,
                 network_dtype: Optional[torch.dtype] = None) -> QuantizedThumbnail:
        """HR -> the file's integers: `quantize(analyze(make_thumbnail(hr)), rate_t)`."""
        return self.quantize(self.analyze(self.make_thumbnail(hr, network_dtype)), rate_t)

    @staticmethod
    def dequantize(quantized: QuantizedThumbnail) -> torch.Tensor:
        """The file's integers -> the coefficients a JPEG decoder sees, fp32."""
        tables = differentiable_jpeg.component_tables(quantized.luma_table.float(), quantized.chroma_table.float())
        return quantized.coefficients.float() * tables

    def decompress(self, quantized: QuantizedThumbnail, network_dtype: Optional[torch.dtype] = None,
                   decoder: Optional[DecoderNetwork] = None,
                   out: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The file's integers -> (decoded thumbnail, restored HR): `synthesize(dequantize(quantized))`."""
        return self.synthesize(self.dequantize(quantized), network_dtype, decoder, out)

    def synthesize(self, dequantized: torch.Tensor, network_dtype: Optional[torch.dtype] = None,
                   decoder: Optional[DecoderNetwork] = None,
                   out: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Dequantized coefficients -> (decoded thumbnail, restored HR).

        The JPEG steps stay fp32 (exact pixels; bf16 cannot hold a coefficient to the nearest
        integer); only the decoder network runs under `network_dtype` autocast, as `decoder` when
        given (the codec's engine) or as this model's module. With `out` (uint8, see
        `FrequencyAwareDecoder.forward`; `decoder` must take it), the restored HR is written into it
        as 8-bit pixels, and `out` is returned in its place.
        """
        decoded = differentiable_jpeg.coefficients_to_image(dequantized)
        channels = differentiable_jpeg.coefficients_as_channels(dequantized)
        with _autocast(decoded.device, network_dtype):
            if out is not None:
                return decoded, (decoder or self.decoder)(channels, decoded, out=out)
            restored = (decoder or self.decoder)(channels, decoded).float()
        return decoded, restored

    def forward(self, hr: torch.Tensor, rate_t: torch.Tensor,
                network_dtype: Optional[torch.dtype] = None) -> ForwardResult:
        """Training path: differentiable end to end (rounding by straight-through estimate).

        `network_dtype` (e.g. bf16 on a GPU) runs the encoder and decoder networks under autocast.
        """
        thumbnail = self.make_thumbnail(hr, network_dtype)
        coefficients, statistics = self.analyze(thumbnail)
        luma, chroma = self.table_predictor(statistics, rate_t)
        tables = differentiable_jpeg.component_tables(luma, chroma)
        scaled = coefficients / tables
        # The rate gradient reaches the QPM's tables but not the encoder: the encoder is not told
        # the rate setting t, and averaged over t the rate term only taught it to blur the thumbnail
        # (thumbnail PSNR fell to 28 dB in 500 CPU steps). Rate is the tables' job.
        bits = self.rate_model(coefficients.detach() / tables)
        decoded, restored = self.synthesize(differentiable_jpeg.straight_through_round(scaled) * tables, network_dtype)
        return ForwardResult(thumbnail, decoded, restored, bits, scaled, luma, chroma)


def _autocast(device: torch.device, dtype: Optional[torch.dtype]) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def parameter_counts(model: HyperThumbModel) -> dict[str, int]:
    """Parameters per part, as printed by `python -m hyperthumb info`."""
    parts = {"encoder": model.encoder, "qpm": model.table_predictor, "rate_model": model.rate_model,
             "decoder": model.decoder,
             "decoder.coefficient_branch": model.decoder.coefficient_branch}
    return {name: sum(p.numel() for p in part.parameters()) for name, part in parts.items()}
