"""An Ultralytics-shaped YOLOv10 source tree with Large Separable Kernel Attention (LSKA, PSALSKA)."""

__version__ = "0.1.0"
__all__ = ["YOLO", "__version__"]


def __getattr__(name):
    """Import the YOLO facade lazily, so that `import ultralytics.utils` stays light."""
    if name == "YOLO":
        from ultralytics.engine.model import YOLO

        return YOLO
    raise AttributeError(f"module 'ultralytics' has no attribute {name!r}")
