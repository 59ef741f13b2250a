"""Sliced validation (slice=...) of a trained model: scored on full-image coordinates, and pycocotools agrees with
ours on the merged predictions that save_json writes.

tests/data/yolov10t-shapes.pt (tests/data/README.md) was trained at imgsz 128, so slice=128 cuts each ~380 px
shapes image into 3 x 3 or 3 x 4 windows: the merge has real seams to work on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ultralytics import YOLO

CKPT = Path(__file__).resolve().parent / "data" / "yolov10t-shapes.pt"
TOL = 1e-4  # ours vs COCOeval on the same detections (as tests/test_coco_agreement.py)


@pytest.fixture(scope="module")
def held_out(make_shapes_yaml) -> str:
    """6 shapes images the model never saw."""
    return make_shapes_yaml("sliced_val", 2, 6, seed=7)


@pytest.fixture(scope="module")
def sliced_run(held_out, tmp_path_factory):
    pytest.importorskip("pycocotools")
    tmp = tmp_path_factory.mktemp("sliced_val")
    m = YOLO(CKPT).val(data=held_out, imgsz=128, batch=16, workers=0, conf=0.001, save_json=True, plots=False,
                       slice=128, overlap=0.2, project=str(tmp), name="v")
    return m, tmp / "v"


def test_sliced_val_equals_pycocotools_on_its_json(sliced_run):
    from test_coco_agreement import cocoeval_from_files

    m, run = sliced_run
    coco = cocoeval_from_files(run, 300)
    b = m.box
    ours = {"map": b.map, "map50": b.map50, "small": b.map_small, "medium": b.map_medium, "large": b.map_large}
    for k, v in coco.items():
        assert abs(ours[k] - v) < TOL, (k, ours[k], v)
    assert coco["map50"] > 0.05  # a real model's real detections, not an empty file


def test_json_holds_the_merged_full_image_predictions(sliced_run, held_out):
    """predictions.json of one image equals the sliced detector run directly on the file (full-image pixels)."""
    import torch

    from ultralytics.cfg import get_cfg
    from ultralytics.data import check_det_dataset
    from ultralytics.data.image_io import imread
    from ultralytics.models.yolo.detect.sliced import SlicedDetector

    _, run = sliced_run
    preds = json.loads((run / "predictions.json").read_text())
    gt = json.loads((run / "ground_truth.json").read_text())
    img = gt["images"][0]
    mine = np.array([p["bbox"] + [p["score"], p["category_id"]] for p in preds if p["image_id"] == img["id"]])
    assert len(mine) and (mine[:, 0] + mine[:, 2]).max() > 128  # full-image pixels, beyond one window
    assert (mine[:, 0] >= 0).all() and (mine[:, 0] + mine[:, 2] <= img["width"] + 1e-3).all()

    model = YOLO(CKPT).model.float().eval()
    model.fuse(verbose=False)
    args = get_cfg(overrides={"mode": "val", "imgsz": 128, "slice": 128, "overlap": 0.2, "batch": 16})
    sd = SlicedDetector(model, args, torch.device("cpu"), conf=0.001)
    folder = Path(check_det_dataset(held_out)["val"])
    file = next(folder.glob(img["file_name"]))
    det = sd(imread(file), str(file)).numpy().astype(np.float64)  # the file: the full pass reads it as val does
    direct = np.concatenate([det[:, :2], det[:, 2:4] - det[:, :2], det[:, 4:]], 1)
    assert len(direct) == len(mine)
    np.testing.assert_allclose(direct[np.lexsort(direct.T[::-1])], mine[np.lexsort(mine.T[::-1])], atol=2e-3)


def test_sliced_and_whole_image_validation_differ(sliced_run, held_out, tmp_path):
    """The slice setting reached the validator: the same model scored on whole images gives other detections."""
    m, run = sliced_run
    whole = YOLO(CKPT).val(data=held_out, imgsz=128, batch=16, workers=0, conf=0.001, plots=False,
                           project=str(tmp_path), name="w")
    assert abs(whole.box.map50 - m.box.map50) > 1e-3


def test_sliced_val_nms_head_and_nms_merge_equal_pycocotools(held_out, tmp_path):
    """nms=True (one-to-many head + NMS in every window) merged by merge=nms/iou: still what pycocotools gives."""
    from test_coco_agreement import cocoeval_from_files

    m = YOLO(CKPT).val(data=held_out, imgsz=128, batch=16, workers=0, conf=0.001, save_json=True, plots=False,
                       slice=128, overlap=0.2, nms=True, merge="nms", merge_metric="iou", max_det=100,
                       project=str(tmp_path), name="n")
    coco = cocoeval_from_files(tmp_path / "n", 100)
    ours = {"map": m.box.map, "map50": m.box.map50, "small": m.box.map_small, "medium": m.box.map_medium,
            "large": m.box.map_large}
    for k, v in coco.items():
        assert abs(ours[k] - v) < TOL, (k, ours[k], v)
    per_image: dict = {}
    for p in json.loads((tmp_path / "n" / "predictions.json").read_text()):
        per_image[p["image_id"]] = per_image.get(p["image_id"], 0) + 1
    assert max(per_image.values()) <= 100
