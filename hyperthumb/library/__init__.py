"""Whole photo libraries: every photo of folders, globs or URLs into thumbnails, and back, with a
Parquet manifest that lets a stopped run go on where it stopped."""
from hyperthumb.library.convert import RunSummary, convert_library, restore_library

__all__ = ["convert_library", "restore_library", "RunSummary"]
