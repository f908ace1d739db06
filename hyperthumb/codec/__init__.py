"""Photo in, file out, and back: the file-level codec (`thumbnail_codec.py`), the one door for input
photos (`image_io.py`), tiles for large photos (`tiling.py`), and how the networks run (`runtime.py`,
`engines.py`)."""
from hyperthumb.codec.thumbnail_codec import BPP_TOLERANCE, HyperThumbCodec, Thumbnail, read_thumbnail_bytes

__all__ = ["BPP_TOLERANCE", "HyperThumbCodec", "Thumbnail", "read_thumbnail_bytes"]
