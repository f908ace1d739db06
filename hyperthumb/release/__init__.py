"""Releasing checkpoints: model cards (`model_card.py`) and publishing to the Hub (`publish.py`)."""
