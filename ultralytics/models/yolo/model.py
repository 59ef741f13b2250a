"""The YOLO facade: `YOLO('yolov10n-LSKA.yaml')` or `YOLO('best.pt')`, then .train / .val / .predict / .export.

The generic work (loading, callbacks, the prepared-model cache, each mode's call) is engine/model.py's `Model`;
this file only names the classes of each task, as upstream's `task_map`.
"""

from __future__ import annotations

from ultralytics.engine.model import Model
from ultralytics.models.yolo import detect
from ultralytics.nn.tasks import DetectionModel


class YOLO(Model):
    """YOLOv10 (with or without LSKA): detection only. See engine/model.py Model for the methods."""

    @property
    def task_map(self) -> dict:
        """{task: the model, trainer, validator and predictor classes} (detect only in this project)."""
        return {
            "detect": {
                "model": DetectionModel,
                "trainer": detect.DetectionTrainer,
                "validator": detect.DetectionValidator,
                "predictor": detect.DetectionPredictor,
            },
        }
