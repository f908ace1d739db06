"""DISTS offline: the authors' computation on our VGG16 weights, zero for identical images, growing
as JPEG quality falls, exact in tiles and with many images against one reference, and a centred crop
for photos over the pixel limit."""
from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from hyperthumb.cache import CACHE_ENV
from hyperthumb.evaluation import dists
from hyperthumb.evaluation.dists import centred_crop, dists_available, dists_distance

BRIDGE = Path(__file__).resolve().parent.parent / "examples" / "Bridge_by_Sander_Klootwijk.jpg"


@pytest.fixture(scope="module")
def bridge() -> Image.Image:
    """A 256 x 256 crop of a real photo: DISTS on VGG16 at this size takes about half a second."""
    if not dists_available():
        pytest.skip("DISTS's VGG16 weights are not provisioned (python -m hyperthumb lpips-weights)")
    photo = Image.open(BRIDGE).convert("RGB")
    left, top = (photo.width - 256) // 2, (photo.height - 256) // 2
    return photo.crop((left, top, left + 256, top + 256))


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(buffer).convert("RGB")


def test_identical_images_score_zero_and_the_order_does_not_matter(bridge):
    assert abs(dists_distance(bridge, bridge)) < 1e-6
    degraded = _jpeg(bridge, 20)
    assert dists_distance(bridge, degraded) == pytest.approx(dists_distance(degraded, bridge), abs=1e-9)


def test_dists_grows_as_jpeg_quality_falls(bridge):
    """Measured on this crop: 0.011 / 0.116 / 0.231 / 0.293 at quality 90 / 50 / 20 / 5."""
    scores = [dists_distance(bridge, _jpeg(bridge, quality)) for quality in (90, 50, 20, 5)]
    assert scores == sorted(scores) and 0.001 < scores[0] and scores[-1] < 0.5


def test_it_equals_the_authors_dists_on_the_same_weights(bridge, monkeypatch):
    """The dists-pytorch class, its VGG16 built without weights (its own would download) and then
    given ours: the reimplementation computes what the authors' code does. Theirs runs in float64:
    in float32 its covariance cancels on a flat crop (5e-6 off on this bit of sky), ours sums in float64."""
    from DISTS_pytorch import DISTS_pt

    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
    monkeypatch.setattr(DISTS_pt.models, "vgg16", lambda pretrained: SimpleNamespace(features=features))
    authors = DISTS_pt.DISTS(load_weights=False)
    ours = dists._model()
    for index, stage in enumerate(ours.stages, start=1):
        theirs = [layer for layer in getattr(authors, f"stage{index}") if isinstance(layer, torch.nn.Conv2d)]
        for their_conv, our_conv in zip(theirs, [layer for layer in stage if isinstance(layer, torch.nn.Conv2d)],
                                        strict=True):
            their_conv.load_state_dict(our_conv.state_dict())
    authors.alpha.data, authors.beta.data = dists._alpha_beta()
    authors.double()

    reference = bridge.crop((0, 0, 160, 112))
    degraded = _jpeg(reference, 30)
    with torch.no_grad():
        expected = float(authors(*(torch.from_numpy(np.asarray(image, np.float64) / 255).permute(2, 0, 1)[None]
                                   for image in (reference, degraded))))
    assert dists_distance(reference, degraded) == pytest.approx(expected, abs=1e-6)


def test_tiles_give_the_whole_images_figure(bridge, monkeypatch):
    """Three tiles across, the middle one's window inside the photo on both sides: the halo covers
    conv5_3's reach, so only float rounding differs; a halo short of it shows."""
    a = np.asarray(bridge.resize((416, 96)))
    b = np.asarray(_jpeg(Image.fromarray(a), 20))
    whole = dists_distance(a, b)
    monkeypatch.setattr(dists, "TILE", 144)
    assert dists_distance(a, b) == pytest.approx(whole, abs=1e-6)
    monkeypatch.setattr(dists, "HALO", 48)
    assert dists_distance(a, b) != pytest.approx(whole, abs=1e-6)


def test_many_images_against_one_reference_give_each_pairs_figure(bridge):
    """The reference's features shared by all: the same figures as one pair at a time."""
    degraded = [_jpeg(bridge, quality) for quality in (90, 20, 5)]
    shared = dists.dists_distances(bridge, degraded)
    assert shared == pytest.approx([dists_distance(image, bridge) for image in degraded], abs=1e-9)
    with pytest.raises(ValueError, match="one size"):
        dists.dists_distances(bridge, [bridge.crop((0, 0, 128, 128))])


def test_photos_over_the_limit_are_measured_on_their_centred_crop(bridge):
    assert centred_crop(4000, 6000, dists.MAX_PIXELS) == (slice(1184, 2816), slice(1775, 4224))  # 24 MP -> 4.0 MP
    assert centred_crop(300, 200, dists.MAX_PIXELS) == (slice(0, 300), slice(0, 200))
    a = np.asarray(bridge)
    b = a.copy()
    b[:40] = 0  # outside the centred 128 x 128
    assert dists_distance(a, b, max_pixels=128 * 128) == pytest.approx(0.0, abs=1e-6)
    assert dists_distance(a, b, max_pixels=None) > 0.01


def test_the_model_is_built_without_any_download(bridge, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("DISTS tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torchvision.models, "vgg16", refuse)
    assert isinstance(dists._model.__wrapped__(), dists.DistsNetwork)


def test_without_the_vgg_weights_there_is_no_figure(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    dists._model.cache_clear()
    try:
        black = np.zeros((8, 8, 3), np.uint8)
        assert not dists_available() and dists_distance(black, black) is None
    finally:
        dists._model.cache_clear()
