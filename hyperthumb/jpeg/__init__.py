"""The thumbnail file: a standard baseline JPEG (`file.py`), its HyperThumb marker (`marker.py`), its
size computed without writing it (`size.py`), and the standard IJG tables (`standard_tables.py`)."""
