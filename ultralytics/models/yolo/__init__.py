"""YOLO: the facade (model.py) and its tasks (detect/)."""

from ultralytics.models.yolo.model import YOLO

__all__ = ["YOLO"]
