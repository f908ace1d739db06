"""Cost accounting: FLOPs per HR megapixel of the encoder and the decoder."""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from . import jpeg_sim
from .model import HyperThumbModel


@torch.inference_mode()
def gflops_per_megapixel(model: HyperThumbModel, side: int = 256) -> dict[str, float]:
    hr = torch.rand(1, 3, side, side)
    with FlopCounterMode(display=False) as counter:
        thumbnail = model.encoder(hr)
    encoder = counter.get_total_flops()
    coefficients = jpeg_sim.image_to_coefficients(thumbnail)
    with FlopCounterMode(display=False) as counter:
        model.decoder(jpeg_sim.coefficients_as_channels(coefficients), thumbnail)
    decoder = counter.get_total_flops()
    megapixels = side * side / 1e6
    return {"encoder": encoder / megapixels / 1e9, "decoder": decoder / megapixels / 1e9}
