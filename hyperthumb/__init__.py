"""HyperThumb: learned 4x image rescaling into a standard JPEG thumbnail (HyperThumbnail, CVPR 2023).

    import hyperthumb
    codec = hyperthumb.load_model("rdbunet")
    thumb = codec.encode("photo.jpg", target_bpp=0.3)   # thumb.jpeg is an ordinary JPEG file
    photo = hyperthumb.decode(thumb.jpeg)                 # the model is named in the file

The package follows the pipeline: `models/` (the networks and the method), `jpeg/` (the file),
`codec/` (photo in, file out and back), `zoo` (which checkpoints exist, loading them),
`library/` (whole photo libraries), `training/`, `evaluation/`, `study/` (people's judgements) and
`release/` (model cards, the Hub).
"""
from hyperthumb.codec.thumbnail_codec import HyperThumbCodec, Thumbnail
from hyperthumb.errors import (
                               CheckpointNotFoundError,
                               EncoderMismatchError,
                               HyperThumbError,
                               ImageSizeError,
                               InvalidImageError,
                               InvalidSettingError,
                               InvalidThumbnailError,
)
from hyperthumb.zoo import ENCODER_METHODS as ENCODER_NAMES
from hyperthumb.zoo import decode, default_device, load_model

__all__ = ["load_model", "decode", "HyperThumbCodec", "Thumbnail", "ENCODER_NAMES", "default_device",
           "HyperThumbError", "InvalidImageError", "ImageSizeError", "InvalidThumbnailError", "InvalidSettingError",
           "CheckpointNotFoundError", "EncoderMismatchError"]
