"""The networks and the method: encoders, differentiable JPEG, QPM, rate model, decoder, assembled
in `HyperThumbModel` (`model.py`), and its checkpoint folder format (`pretrained.py`)."""
from hyperthumb.models.model import HyperThumbConfig, HyperThumbModel, QuantizedThumbnail

__all__ = ["HyperThumbConfig", "HyperThumbModel", "QuantizedThumbnail"]
