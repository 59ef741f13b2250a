"""An Ultralytics-shaped YOLOv10 source tree with Large Separable Kernel Attention (LSKA, PSALSKA)."""

from ultralytics.version import __version__

__all__ = ["YOLO", "__version__"]


def __getattr__(name):
    """Import the YOLO facade lazily, so that `import ultralytics.utils` stays light."""
    if name == "YOLO":
        from ultralytics.models.yolo import YOLO

        return YOLO
    raise AttributeError(f"module 'ultralytics' has no attribute {name!r}")
