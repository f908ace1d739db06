"""The sharp decoders' optional adversarial term: a small patch discriminator that tells restored
patches from original ones, and the decoder rewarded for fooling it.

Light by design, as in ESRGAN's recipe (Wang et al., ECCV 2018 workshops: L1 1e-2, perceptual 1,
adversarial 5e-3): the perceptual term carries the texture, and the adversarial one may only push
what LPIPS-VGG leaves blurred. Spectral normalisation keeps the discriminator Lipschitz, which
keeps the small batches of a CPU run from tipping the game (Miyato et al., ICLR 2018).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

DISCRIMINATOR_NAME = "discriminator.safetensors"


class PatchDiscriminator(nn.Module):
    """A score per receptive field (about 70 pixels across), not per image: it judges texture, which is
    what a sharp decoder adds, rather than a patch's content."""

    def __init__(self, features: int = 32, layers: int = 3):
        super().__init__()
        blocks: list[nn.Module] = [spectral_norm(nn.Conv2d(3, features, 4, stride=2, padding=1)),
                                   nn.LeakyReLU(0.2, inplace=True)]
        width = features
        for _ in range(layers - 1):
            blocks += [spectral_norm(nn.Conv2d(width, width * 2, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, inplace=True)]
            width *= 2
        blocks += [spectral_norm(nn.Conv2d(width, width, 3, padding=1)), nn.LeakyReLU(0.2, inplace=True),
                   spectral_norm(nn.Conv2d(width, 1, 3, padding=1))]
        self.net = nn.Sequential(*blocks)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Logits (N, 1, H/2^layers, W/2^layers) for 0..1 pixels: high for originals."""
        return self.net(pixels * 2 - 1)


def generator_loss(discriminator: PatchDiscriminator, restored: torch.Tensor) -> torch.Tensor:
    """Per patch, the non-saturating loss of restored pixels judged as originals."""
    return F.softplus(-discriminator(restored)).mean(dim=(1, 2, 3))


def discriminator_loss(discriminator: PatchDiscriminator, original: torch.Tensor,
                       restored: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss on originals and (detached) restorations, mean over the batch."""
    real = F.softplus(-discriminator(original)).mean()
    fake = F.softplus(discriminator(restored.detach())).mean()
    return real + fake
