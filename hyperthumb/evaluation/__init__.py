"""Judging the methods: metrics, the compared methods as codecs, `evaluate`, Bjontegaard deltas,
charts, training curves, speed (`bench.py`) and cost (`flops.py`)."""
