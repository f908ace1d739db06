"""What a photo carries besides pixels, kept in its thumbnail and handed back with the restored
photo: its EXIF (APP1; capture time, camera, GPS) and its ICC colour profile (APP2), so that a
library converted to thumbnails loses none of it. The thumbnail's own marker and pixels do not
depend on them.

EXIF is kept with the orientation tag removed (the pixels are stored upright) and without the
embedded EXIF thumbnail (Pillow writes the main image's directories only). An ICC profile is kept
only where it describes RGB values: a CMYK or grayscale photo's profile no longer fits the RGB
pixels it becomes.
"""
from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import Optional

from PIL import Image

from hyperthumb.jpeg.marker import header_segments

log = logging.getLogger(__name__)

EXIF_ID = b"Exif\x00\x00"  # APP1's identifier (EXIF 2.32, section 4.5.4)
ICC_ID = b"ICC_PROFILE\x00"  # APP2's identifier (ICC.1:2010, annex B.4)
_SEGMENT_ROOM = 65533  # a segment's payload, after its two length bytes
_ICC_CHUNK = _SEGMENT_ROOM - len(ICC_ID) - 2  # each chunk also holds its sequence number and the count
_ORIENTATION = 0x0112


@dataclass(frozen=True)
class PhotoMetadata:
    exif: Optional[bytes] = None  # Pillow's form: EXIF_ID, then the TIFF structure
    icc_profile: Optional[bytes] = None

    def __bool__(self) -> bool:
        return bool(self.exif or self.icc_profile)

    @classmethod
    def of_image(cls, image: Image.Image) -> "PhotoMetadata":
        """The metadata worth keeping of an upright photo as Pillow opened it (see the module's note)."""
        icc = image.info.get("icc_profile") or None
        if icc is not None and icc[16:20] != b"RGB ":  # the profile's data colour space (ICC.1, 7.2.6)
            icc = None
        try:
            exif = image.getexif()
            exif.pop(_ORIENTATION, None)
            data = exif.tobytes() if len(exif) else None
        except Exception as exc:  # a damaged EXIF block is left behind, the photo is not refused
            log.info("EXIF not kept: %s", exc)
            data = None
        if data is not None and len(data) > _SEGMENT_ROOM:
            log.info("EXIF not kept: %d bytes, over one JPEG segment", len(data))
            data = None
        return cls(data, icc)

    def segments(self) -> bytes:
        """The APP1 and APP2 segments that carry this metadata in a JPEG."""
        out = b""
        if self.exif:
            out += b"\xff\xe1" + struct.pack(">H", len(self.exif) + 2) + self.exif
        if self.icc_profile:
            chunks = [self.icc_profile[i:i + _ICC_CHUNK] for i in range(0, len(self.icc_profile), _ICC_CHUNK)]
            for number, chunk in enumerate(chunks, 1):
                payload = ICC_ID + bytes([number, len(chunks)]) + chunk
                out += b"\xff\xe2" + struct.pack(">H", len(payload) + 2) + payload
        return out

    def attach(self, image: Image.Image) -> Image.Image:
        """Puts the metadata in `image.info`, where saving with `codec.image_io.save_options` writes it."""
        for key, value in (("exif", self.exif), ("icc_profile", self.icc_profile)):
            if value:
                image.info[key] = value
        return image


def read_metadata(jpeg: bytes) -> PhotoMetadata:
    """The EXIF and ICC profile a JPEG's header carries (an ICC profile in chunks, put in order)."""
    exif, chunks = None, {}
    for kind, payload in header_segments(jpeg):
        if kind == 0xE1 and payload.startswith(EXIF_ID) and exif is None:
            exif = payload
        elif kind == 0xE2 and payload.startswith(ICC_ID) and len(payload) > len(ICC_ID) + 2:
            chunks[payload[len(ICC_ID)]] = payload[len(ICC_ID) + 2:]
    return PhotoMetadata(exif, b"".join(chunks[n] for n in sorted(chunks)) or None)
