"""The library's own error types: every bad input ends in one of these, never a bare traceback."""


class HyperThumbError(Exception):
    """Base class of every error the library raises on purpose."""


class InvalidImageError(HyperThumbError):
    """The input is not a usable image: unreadable, corrupt, too small or too large."""


class ImageSizeError(InvalidImageError):
    """The image is readable but too small or too large to encode."""


class InvalidThumbnailError(HyperThumbError):
    """The file is not a HyperThumb thumbnail this library can decode."""


class EncoderMismatchError(InvalidThumbnailError):
    """The thumbnail was made by another version of its model's encoder than the checkpoint loaded."""


class InvalidSettingError(HyperThumbError, ValueError):
    """A setting out of range: a target bpp, a rate setting, a device this machine lacks."""


class CheckpointNotFoundError(HyperThumbError):
    """No checkpoint could be found locally or on the Hugging Face Hub."""


class StudyUploadError(HyperThumbError):
    """The study pool will not take a user's photo: it holds it already, or it is full."""
