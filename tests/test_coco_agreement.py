"""A trained model's real output, scored by our validator and by pycocotools' COCOeval: the numbers agree.

tests/data/yolov10t-shapes.pt is a small YOLOv10 (tests/faults/yolov10t-faults.yaml, 334k parameters) trained
on the built-in shapes data (tests/data/README.md says how). Its top-300 output is what a still-learning YOLOv10
gives: many near-duplicate boxes, the case where matching highest-IoU-first instead of by score halves mAP.
Both validators read the same detections: ours in memory, COCOeval from the JSON files that save_json writes.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from ultralytics import YOLO

CKPT = Path(__file__).resolve().parent / "data" / "yolov10t-shapes.pt"
TOL = 0.002


@pytest.fixture(scope="module")
def held_out(make_shapes_yaml) -> str:
    """48 shapes images the model never saw (another seed), as a data YAML."""
    return make_shapes_yaml("held_out", 2, 48, seed=7)


def cocoeval_from_files(run: Path, max_det: int) -> dict:
    """COCOeval (bbox) on run/ground_truth.json and run/predictions.json, maxDets up to max_det."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(run / "ground_truth.json"))
        ev = COCOeval(gt, gt.loadRes(str(run / "predictions.json")), "bbox")
        ev.params.maxDets = [1, 10, max_det]
        ev.evaluate()
        ev.accumulate()
    prec = ev.eval["precision"]  # (T, R, K, A, M): A = all, small, medium, large; M = maxDets

    def ap(t=slice(None), area=0):
        s = prec[t, :, :, area, -1]
        return float(s[s > -1].mean()) if (s > -1).any() else -1.0

    return {"map": ap(), "map50": ap(0), "small": ap(area=1), "medium": ap(area=2), "large": ap(area=3)}


def near_duplicates(run: Path) -> int:
    """Pairs of same-image, same-class detections with IoU > 0.7 in predictions.json."""
    import torch

    from ultralytics.utils.ops import box_iou

    by_key: dict = {}
    for p in json.loads((run / "predictions.json").read_text()):
        x, y, w, h = p["bbox"]
        by_key.setdefault((p["image_id"], p["category_id"]), []).append([x, y, x + w, y + h])
    n = 0
    for boxes in by_key.values():
        b = torch.tensor(boxes)
        n += int((box_iou(b, b).triu(1) > 0.7).sum())
    return n


@pytest.mark.parametrize("nms", [False, True])
def test_validator_equals_cocoeval_on_real_predictions(held_out, tmp_path, nms):
    pytest.importorskip("pycocotools")
    model = YOLO(CKPT)
    m = model.val(data=held_out, imgsz=128, batch=16, workers=0, conf=0.001, max_det=300, nms=nms, save_json=True,
                  plots=False, project=str(tmp_path), name="v")
    run = tmp_path / "v"
    coco = cocoeval_from_files(run, 300)
    box = m.box
    ours = {"map": box.map, "map50": box.map50, "small": box.map_small, "medium": box.map_medium,
            "large": box.map_large}
    assert box.map > 0.1 and min(ours[k] for k in ("small", "medium", "large")) >= 0  # a learnt model, every size
    if not nms:
        assert near_duplicates(run) > 100  # the one-to-one top-300 does hold near-duplicates
    for k, v in coco.items():
        assert abs(ours[k] - v) < TOL, (k, ours[k], v)
    assert np.isfinite(box.mp) and np.isfinite(box.mr)
