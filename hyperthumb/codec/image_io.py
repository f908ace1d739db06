"""The one door every input photo comes through: decoded, upright, 8-bit RGB, within limits."""
from __future__ import annotations

import contextlib
import functools
import io
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional, Union

import numpy as np
from PIL import Image, ImageOps

from hyperthumb.errors import ImageSizeError, InvalidImageError
from hyperthumb.limits import MAX_PIXELS, MIN_SIDE

if TYPE_CHECKING:
    import torch

_ORIENTATION = 0x0112  # the EXIF tag
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif"}

ImageSource = Union[str, os.PathLike, bytes, Image.Image]


@functools.cache
def _register_heif() -> None:
    """Phones' HEIC/HEIF photos open in Pillow through pillow-heif, registered on the first photo
    opened rather than at import: importing it costs tens of milliseconds that most commands never
    need. libheif applies the file's own rotation and sets the EXIF orientation to 1, so a HEIC
    photo comes upright through the same `_upright` as every other format."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def _open(source: ImageSource) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    _register_heif()
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise InvalidImageError("the file is empty")
        return Image.open(io.BytesIO(source))
    path = Path(source)  # messages name the file only: they may reach a web page, never a server's folders
    if not path.exists():
        raise InvalidImageError(f"no such file: {path.name}")
    if path.is_dir():
        raise InvalidImageError(f"{path.name} is a directory, not an image")
    if path.stat().st_size == 0:
        raise InvalidImageError("the file is empty")
    return Image.open(path)


def _to_8bit_rgb(image: Image.Image) -> Image.Image:
    """Alpha is composited on white: a thumbnail is an opaque JPEG."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode != "F" else max(float(array.max()), 1.0)
        image = Image.fromarray(np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _upright(image: Image.Image) -> Image.Image:
    """EXIF orientation applied; an upright photo passes as it is (a 6K copy is 0.1 s)."""
    return ImageOps.exif_transpose(image) if image.getexif().get(_ORIENTATION, 1) != 1 else image


@contextlib.contextmanager
def _plain_errors() -> Iterator[None]:
    """Pillow's many error types, and its messages that name the server's path, as InvalidImageError."""
    try:
        with warnings.catch_warnings():  # our own limit decides; Pillow's hard limit still raises
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except InvalidImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageSizeError("the image is too large to open safely") from None
    except Exception:
        raise InvalidImageError("the file is not a readable image (damaged, or not a photo format)") from None


def _checked_header(source: ImageSource, max_pixels: int) -> Image.Image:
    """The image opened, its size within limits; its pixels not decoded yet."""
    image = _open(source)
    width, height = image.size
    if width * height > max_pixels:
        raise ImageSizeError(f"the image is {width}x{height} ({width * height / 1e6:.0f} MP), over the limit "
                             f"of {max_pixels / 1e6:.0f} MP")
    if min(width, height) < MIN_SIDE:
        raise ImageSizeError(f"the image is {width}x{height}; each side must be at least {MIN_SIDE} pixels")
    return image


def load_image(source: ImageSource, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Opens a photo and returns it upright (EXIF orientation applied) as 8-bit RGB, its EXIF and ICC
    profile in `info` (jpeg.metadata says which of them a thumbnail keeps).

    Raises InvalidImageError for anything that is not a decodable image of a usable size.
    """
    with _plain_errors():
        image = _checked_header(source, max_pixels)
        image.load()
        upright = _upright(image)
        photo = _to_8bit_rgb(upright)
        for key in ("exif", "icc_profile"):  # kept through every conversion, for the thumbnail to carry
            if upright.info.get(key) and not photo.info.get(key):
                photo.info[key] = upright.info[key]
        return photo


def probe_image(source: ImageSource, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """(width, height) as stored, from the header alone, checked as `load_image` checks it: a
    quick first answer to an upload (a damaged body still waits for `load_image`)."""
    with _plain_errors():
        return _checked_header(source, max_pixels).size


def to_tensor(image: Union[Image.Image, np.ndarray], device: "Optional[torch.device | str]" = None,
              channels_last: bool = False):
    """PIL RGB or uint8 array (H,W,3) -> float tensor (1,3,H,W) in [0,1], made on `device`: the
    8-bit pixels cross to it (a quarter of the float's bytes), then one pass converts and reorders
    (`channels_last`: keeps the pixel-major order, the layout a channels-last network takes)."""
    import torch

    with warnings.catch_warnings():  # a PIL image's array is read-only, and is only read here
        warnings.filterwarnings("ignore", "The given NumPy array is not writable")
        pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8)).to(device)
    tensor = torch.empty((1, 3, *pixels.shape[:2]), dtype=torch.float32, device=pixels.device,
                         memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    tensor[0].copy_(pixels.permute(2, 0, 1))
    return tensor.div_(255.0)


def list_images(folder: Union[str, os.PathLike]) -> list[Path]:
    """The photos under `folder` and its subfolders, sorted; none is an InvalidImageError."""
    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise InvalidImageError(f"no images found in {folder}")
    return paths


def save_options(image: Image.Image) -> dict:
    """What makes Pillow write a photo's EXIF and ICC profile when saving it (PNG, JPEG, WebP): a
    restored photo carries those its thumbnail kept."""
    return {key: image.info[key] for key in ("exif", "icc_profile") if image.info.get(key)}
