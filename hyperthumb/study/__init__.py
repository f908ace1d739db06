"""The blind pairwise study: the pool of trials (`pool.py`), people's own photos (`uploads.py`), the
vote store (`votes.py`) and the ranking (`ranking.py`)."""
