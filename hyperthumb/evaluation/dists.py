"""DISTS offline: Ding, Ma, Wang and Simoncelli, "Image Quality Assessment: Unifying Structure and
Texture Similarity", TPAMI 2020.

DISTS compares two images channel by channel, on the pixels and on five VGG16 stages (with L2
pooling in place of max pooling): how alike their feature means are (texture) and how correlated
their features are (structure), weighted by the alpha and beta its authors fitted to human ratings.
The sharp decoders never train on DISTS, but it is not wholly independent of their loss, LPIPS-VGG:
both read VGG16's convolutions (DISTS through L2 pooling, as statistics rather than position by
position); LPIPS-AlexNet is the judge on another network.

Weights, without any download: the `dists-pytorch` package ships alpha and beta as plain tensors
(`weights.pt`, read with `weights_only=True`), but its class builds torchvision's ImageNet VGG16,
which downloads; so it is never constructed here. The VGG16 convolutions come from the safetensors
file `python -m hyperthumb lpips-weights` converts (LPIPS-VGG's backbone: lpips' `sliceK` holds
exactly DISTS's stage K's convolutions).

The statistics are whole-map means of features, of their squares and of their products: sums that
tiles add up exactly, as long as each tile's core holds exactly the whole photo's features (as in
`metrics.lpips_distance`), so memory is bounded at any size (measured: a process's peak 2.2 GB for
two images of 4 MP against one reference, the reference's features of one tile kept; 0.9 GB for a
pair with 512-pixel tiles). Time is not: one VGG16 pass takes about 10 s per megapixel on one CPU thread (measured: 3.8 s for a
0.39 MP Kodak photo on a 2-core EPYC), so photos over MAX_PIXELS are measured on their centred crop
of about that many pixels, at full resolution (a downscale would blur away the detail a 4x decoder
restores), and `dists_distances` measures many restorations of one photo against its features
computed once: n images in n + 1 passes rather than 2n.
"""
from __future__ import annotations

import math
from functools import lru_cache
from importlib.resources import files
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hyperthumb.codec.tiling import halo_spans
from hyperthumb.evaluation.lpips_weights import load_state_dict, weights_path
from hyperthumb.evaluation.metrics import _core

MAX_PIXELS = 4_000_000
# A tile's core. 768 takes a 768x512 Kodak photo whole: 18 % less time than 512 (measured), whose
# halos overlap there; 1024 took 30 % less time for 4 MP than 512, but more memory again.
TILE = 768
# A conv5_3 feature reaches 105 pixels either side of its centre through the stages' 3x3 convolutions
# and 3x3 poolings; tiles start on the deepest stage's 16-pixel grid so their features fall on the
# photo's, and the halo is that reach rounded up to the grid.
GRID = 16
HALO = 112
SOURCE_STRIDES = (1, 1, 2, 4, 8, 16)  # pixels per feature: the photo itself, then VGG16's five stages
# The constants c1 = c2 that keep the paper's two similarity ratios finite on flat channels (its
# "small positive constants"; the authors' code uses 1e-6).
STABILITY = 1e-6
# What torchvision's ImageNet VGG16 expects its 0..1 input normalised with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class L2Pooling(nn.Module):
    """DISTS's replacement for VGG's max pooling: the square root of a Hann-weighted (1-2-1 by 1-2-1)
    mean of squares, at stride 2, which does not alias as max pooling does."""

    def __init__(self, channels: int):
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("window", (torch.outer(taps, taps) / 16).expand(channels, 1, 3, 3).contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.conv2d(x * x, self.window, stride=2, padding=1, groups=x.shape[1])
        return (pooled + 1e-12).sqrt()  # keeps the root's gradient finite at zero


class DistsNetwork(nn.Module):
    """VGG16 up to relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3, L2-pooled between stages, with
    DISTS's per-channel weights (`alpha`, `beta`: per source, normalised to sum to one together)."""

    def __init__(self, vgg: dict[str, torch.Tensor], alpha: torch.Tensor, beta: torch.Tensor):
        super().__init__()
        stages: list[nn.Sequential] = []
        for index in range(1, 6):
            prefix = f"net.slice{index}."
            positions = sorted({int(key[len(prefix):].split(".")[0]) for key in vgg if key.startswith(prefix)})
            layers: list[nn.Module] = [] if index == 1 else [L2Pooling(stages[-1][-2].out_channels)]
            for position in positions:
                weight = vgg[f"{prefix}{position}.weight"]
                conv = nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1)
                conv.load_state_dict({"weight": weight, "bias": vgg[f"{prefix}{position}.bias"]})
                layers += [conv, nn.ReLU(inplace=True)]
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        channels = [3] + [stage[-2].out_channels for stage in stages]
        convolutions = sum(isinstance(layer, nn.Conv2d) for stage in stages for layer in stage)
        if convolutions != 13 or alpha.numel() != sum(channels) or beta.numel() != sum(channels):
            raise RuntimeError(f"DISTS's weights do not match VGG16 ({channels} channels, {alpha.numel()} weights); "
                               f"delete {weights_path('vgg')} and run `python -m hyperthumb lpips-weights` again")
        total = alpha.double().sum() + beta.double().sum()
        self.alpha = [part.double() / total for part in alpha.flatten().split(channels)]
        self.beta = [part.double() / total for part in beta.flatten().split(channels)]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def features(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        """One image's features per source (0..1 pixels, then each stage), one stage alive at a time.
        In float32: bf16 autocast ran twice as fast, but moved DISTS of a near-identical pair by 7e-4."""
        yield x
        x = (x - self.mean) / self.std
        for stage in self.stages:
            x = stage(x)
            yield x


def _alpha_beta() -> tuple[torch.Tensor, torch.Tensor]:
    """The package's fitted weights; `weights_only` admits tensors and plain containers only."""
    weights = torch.load(files("DISTS_pytorch") / "weights.pt", map_location="cpu", weights_only=True)
    return weights["alpha"], weights["beta"]


@lru_cache(maxsize=1)
def _model() -> Optional[DistsNetwork]:
    vgg = load_state_dict("vgg")
    if vgg is None:
        return None
    return DistsNetwork(vgg, *_alpha_beta()).eval().requires_grad_(False)


def dists_available() -> bool:
    return _model() is not None


def _moments(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per channel the sums of a, b, a^2, b^2 and ab over positions (5, C), in float64: a tile's share
    of the whole map's means, which later tiles add to."""
    def channel_sums(x: torch.Tensor) -> torch.Tensor:  # rows in float32, then float64: no float64 copy of x
        return x.sum(3).sum((0, 2), dtype=torch.float64)

    return torch.stack([channel_sums(a), channel_sums(b), channel_sums(a * a), channel_sums(b * b),
                        channel_sums(a * b)])


def _similarity(moments: torch.Tensor, count: int, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """One source's weighted texture (means) and structure (covariance) similarities, the paper's two
    ratios per channel."""
    mean_a, mean_b, square_a, square_b, product = moments / count
    variance_a, variance_b = square_a - mean_a ** 2, square_b - mean_b ** 2
    covariance = product - mean_a * mean_b
    texture = (2 * mean_a * mean_b + STABILITY) / (mean_a ** 2 + mean_b ** 2 + STABILITY)
    structure = (2 * covariance + STABILITY) / (variance_a + variance_b + STABILITY)
    return (alpha * texture).sum() + (beta * structure).sum()


def centred_crop(height: int, width: int, max_pixels: int) -> tuple[slice, slice]:
    """The centred window of the photo's shape with at most `max_pixels` pixels (the whole photo if it fits)."""
    scale = min(1.0, math.sqrt(max_pixels / (height * width)))
    rows, cols = max(1, int(height * scale)), max(1, int(width * scale))
    top, left = (height - rows) // 2, (width - cols) // 2
    return slice(top, top + rows), slice(left, left + cols)


def dists_window(image, max_pixels: Optional[int] = MAX_PIXELS) -> np.ndarray:
    """The part of an image DISTS measures: its centred crop of at most `max_pixels` (None: all of it)."""
    image = np.asarray(image)
    return image if max_pixels is None else image[centred_crop(*image.shape[:2], max_pixels)]


def _to_tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(pixels, dtype=np.float32) / 255).permute(2, 0, 1).unsqueeze(0)


@torch.inference_mode()
def dists_distances(reference, images: Sequence, max_pixels: Optional[int] = MAX_PIXELS) -> Optional[list[float]]:
    """DISTS of each of `images` against one `reference` (all the same size, uint8 arrays or PIL images):
    0 for an identical image, growing with the distortion; None without the VGG16 weights.

    The reference's features are computed once per tile for all of them, so n images cost n + 1 VGG16
    passes rather than 2n. Photos over `max_pixels` (None: no limit) are measured on their centred crop
    of about that many pixels, at full resolution; within it the figure is the whole window's, computed
    in tiles."""
    model = _model()
    if model is None:
        return None
    reference = dists_window(reference, max_pixels)
    images = [dists_window(image, max_pixels) for image in images]
    for image in images:
        if image.shape != reference.shape:
            raise ValueError(f"DISTS compares images of one size, not {image.shape} and {reference.shape}")
    moments = [[torch.zeros(())] * len(SOURCE_STRIDES) for _ in images]
    counts = [0] * len(SOURCE_STRIDES)
    for rows in halo_spans(reference.shape[0], TILE, HALO, GRID):
        for cols in halo_spans(reference.shape[1], TILE, HALO, GRID):
            window = (slice(rows.start, rows.end), slice(cols.start, cols.end))
            cores = [(..., _core(rows, stride), _core(cols, stride)) for stride in SOURCE_STRIDES]
            reference_features = [features[core] for core, features
                                  in zip(cores, model.features(_to_tensor(reference[window])))]
            for source, features in enumerate(reference_features):
                counts[source] += features[0, 0].numel()
            for image, image_moments in zip(images, moments):
                pairs = zip(cores, reference_features, model.features(_to_tensor(image[window])))
                for source, (core, reference_part, features) in enumerate(pairs):
                    image_moments[source] = image_moments[source] + _moments(features[core], reference_part)
    return [float(1.0 - sum(_similarity(*source) for source in zip(image_moments, counts, model.alpha, model.beta)))
            for image_moments in moments]


def dists_distance(a, b, max_pixels: Optional[int] = MAX_PIXELS) -> Optional[float]:
    """DISTS between two same-sized RGB images (see `dists_distances`); symmetric."""
    distances = dists_distances(b, [a], max_pixels)
    return None if distances is None else distances[0]
