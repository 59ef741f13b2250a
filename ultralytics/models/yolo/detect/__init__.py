"""The detection task: trainer, validator, predictor."""

from ultralytics.models.yolo.detect.predict import DetectionPredictor
from ultralytics.models.yolo.detect.train import DetectionTrainer
from ultralytics.models.yolo.detect.val import DetectionValidator

__all__ = ["DetectionPredictor", "DetectionTrainer", "DetectionValidator"]
