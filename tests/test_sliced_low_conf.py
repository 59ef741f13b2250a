"""Below conf 0.1 the default sliced merge (NMM/IOS) becomes NMS/IOU, as SAHI 0.12's get_sliced_prediction does
(recorded by running sahi: benchmarks/sahi_low_conf.py); a merge the user chose is kept."""

from __future__ import annotations

import types

import pytest
import torch

from ultralytics.cfg import get_cfg, load_default_cfg
from ultralytics.models.yolo.detect.sliced import DEFAULT_MERGE, LOW_CONF, SlicedDetector


def _detector(conf: float, **overrides) -> SlicedDetector:
    model = types.SimpleNamespace(stride=torch.tensor([8.0, 16.0, 32.0]))
    args = get_cfg(overrides={"slice": 64, "imgsz": 64, **overrides})
    return SlicedDetector(model, args, torch.device("cpu"), conf=conf)


def test_default_merge_constant_is_default_yaml():
    d = load_default_cfg()
    assert (d["merge"], d["merge_metric"]) == DEFAULT_MERGE
    assert LOW_CONF == 0.1


@pytest.mark.parametrize("conf, expected", [(0.001, ("nms", "iou")), (0.099, ("nms", "iou")),
                                            (0.1, ("nmm", "ios")), (0.25, ("nmm", "ios"))])
def test_low_conf_switches_default_merge_like_sahi(conf, expected, log_messages):
    """sahi 0.12.8 switched at 0.099 and 0.05 and 0.001, not at 0.1 or 0.11 (strictly below 0.1)."""
    det = _detector(conf)
    assert (det.method, det.metric) == expected
    switched = [m for m in log_messages if "merge=nms merge_metric=iou" in m]
    assert len(switched) == (1 if expected == ("nms", "iou") else 0)


@pytest.mark.parametrize("merge, metric", [("nmm", "iou"), ("nms", "ios"), ("nms", "iou")])
def test_user_merge_is_kept_at_low_conf(merge, metric, log_messages):
    det = _detector(0.001, merge=merge, merge_metric=metric)
    assert (det.method, det.metric) == (merge, metric)
    assert not [m for m in log_messages if "merge=nms merge_metric=iou" in m]


def test_nested_low_score_boxes_survive_at_low_conf():
    """The probe sahi was driven with: a box inside another (IOS 1, IOU 0.04). At conf 0.3 the greedy merge keeps
    one box (0..100), at conf 0.05 NMS/IOU keeps both, as sahi's get_sliced_prediction returned."""
    from ultralytics.utils.slicing import merge_detections

    boxes = torch.tensor([[0, 0, 100, 100, 0.5, 0], [10, 10, 30, 30, 0.4, 0]], dtype=torch.float32)
    for conf, n in ((0.3, 1), (0.05, 2)):
        d = _detector(conf)
        assert len(merge_detections(boxes.clone(), d.method, d.metric, d.threshold)) == n


def test_validation_header_names_the_merge_used():
    """The line above the validation table names the merge the slicer runs, not the setting it replaced."""
    from ultralytics.models.yolo.detect.val import DetectionValidator

    det = _detector(0.001)
    fake = types.SimpleNamespace(args=det.args, training=False)
    line = DetectionValidator.head_description(fake, det)
    assert "merge=nms/iou/0.5" in line, line
    assert "merge=nmm/ios/0.5" in DetectionValidator.head_description(fake)
