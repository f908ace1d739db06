"""What a thumbnail file holds, read from its header alone: parsed once, checked against a pixel
limit, and handed to the decode that follows (the app answers an upload with it, then restores)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Union

from hyperthumb.codec.thumbnail_codec import read_thumbnail_bytes
from hyperthumb.errors import ImageSizeError, InvalidThumbnailError
from hyperthumb.jpeg.marker import ThumbnailMarker, find_marker


@dataclass(frozen=True)
class ThumbnailInfo:
    jpeg: bytes
    marker: ThumbnailMarker

    @property
    def model(self) -> str:
        """The model whose decoders restore this file (the marker's name)."""
        return self.marker.encoder

    @property
    def size(self) -> tuple[int, int]:
        """The size of the photo it restores."""
        return self.marker.width, self.marker.height

    @property
    def bpp(self) -> float:
        """The file's bits per pixel of the photo it restores."""
        return len(self.jpeg) * 8 / (self.marker.width * self.marker.height)


def inspect_thumbnail(source: Union[bytes, str, os.PathLike, ThumbnailInfo],
                      max_pixels: Optional[int] = None) -> ThumbnailInfo:
    """The file's bytes and marker; refuses a file without a valid marker, or one that would restore
    a photo over `max_pixels` (a server's own limit, below the library's), naming it in megapixels."""
    if isinstance(source, ThumbnailInfo):
        info = source
    else:
        jpeg = read_thumbnail_bytes(source)
        if not jpeg:
            raise InvalidThumbnailError("the thumbnail file is empty")
        info = ThumbnailInfo(jpeg, find_marker(jpeg))
    width, height = info.size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageSizeError(f"it would restore a {width}x{height} photo ({width * height / 1e6:.1f} MP), over "
                             f"this server's limit of {max_pixels / 1e6:g} MP")
    return info
