"""Data pipeline: dataset YAMLs, label checks and cache, augmentations, loaders, the built-in dataset."""

from ultralytics.data.build import build_dataloader, build_yolo_dataset
from ultralytics.data.builtin import ensure_builtin_dataset
from ultralytics.data import builtin_icons  # noqa: F401  (registers the 'icons' generator)
from ultralytics.data import builtin_small  # noqa: F401  (registers the 'small-shapes' generator)
from ultralytics.data.dataset import YOLODataset
from ultralytics.data.loaders import load_inference_source
from ultralytics.data.utils import check_det_dataset

__all__ = ("YOLODataset", "build_yolo_dataset", "build_dataloader", "check_det_dataset", "load_inference_source",
           "ensure_builtin_dataset")
