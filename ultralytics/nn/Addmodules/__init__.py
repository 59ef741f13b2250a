"""Modules added to YOLOv10 (the blog's step 2: import each new module here)."""

from ultralytics.nn.Addmodules.LSKA import LSKA, PSALSKA, lska_geometry

__all__ = ["LSKA", "PSALSKA", "lska_geometry"]
