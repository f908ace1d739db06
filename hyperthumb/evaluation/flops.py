"""Cost accounting: FLOPs per HR megapixel of the encoder and the decoder."""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from hyperthumb.models import differentiable_jpeg
from hyperthumb.models.model import HyperThumbModel


@torch.inference_mode()
def gflops_per_megapixel(model: HyperThumbModel, side: int = 256) -> dict[str, float]:
    hr = torch.rand(1, 3, side, side)
    with FlopCounterMode(display=False) as counter:
        thumbnail = model.encoder(hr)
    encoder = counter.get_total_flops()
    coefficients = differentiable_jpeg.image_to_coefficients(thumbnail)
    with FlopCounterMode(display=False) as counter:
        model.decoder(differentiable_jpeg.coefficients_as_channels(coefficients), thumbnail)
    decoder = counter.get_total_flops()
    megapixels = side * side / 1e6
    return {"encoder": encoder / megapixels / 1e9, "decoder": decoder / megapixels / 1e9}
