"""fast_decode: prediction and validation show the model the same pixels; the setting reaches the loader; the
shared-memory collate falls back to a plain stack where torch's private _new_shared is missing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from ultralytics.cfg import get_cfg
from ultralytics.data import build_yolo_dataset
from ultralytics.data.dataset import YOLODataset
from ultralytics.models.yolo.detect.predict import DetectionPredictor

IMGSZ = 320


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory):
    """A 1000x700 textured JPEG (>= 2x imgsz 320: fast_decode reads it at 1/2 scale) with one label."""
    root = tmp_path_factory.mktemp("fastdec")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    rng = np.random.default_rng(0)
    im = cv2.GaussianBlur(rng.integers(0, 256, (700, 1000, 3), dtype=np.uint8), (0, 0), 1.5)
    cv2.rectangle(im, (100, 100), (400, 300), (255, 255, 255), 3)
    cv2.imwrite(str(root / "images" / "a.jpg"), im, [cv2.IMWRITE_JPEG_QUALITY, 90])
    (root / "labels" / "a.txt").write_text("0 0.25 0.286 0.3 0.286\n")
    return root


def val_pixels(root, fast: bool) -> np.ndarray:
    """The unpadded (h, w, 3) RGB pixels of the image as the validator's dataset gives them (rect=True)."""
    cfg = get_cfg(overrides={"imgsz": IMGSZ, "fast_decode": fast, "mode": "val"})
    ds = build_yolo_dataset(cfg, str(root / "images"), 1, {"nc": 1, "names": {0: "a"}}, mode="val", rect=True)
    assert ds.fast_decode is fast
    s = ds[0]
    (gh, gw), (left, top) = s["ratio_pad"]
    h, w = round(700 * gh), round(1000 * gw)
    return s["img"].numpy().transpose(1, 2, 0)[int(top):int(top) + h, int(left):int(left) + w]


def predict_pixels(root, fast: bool) -> np.ndarray:
    """The unpadded RGB pixels the predictor feeds the model for the same file and setting."""
    from ultralytics.data import load_inference_source

    p = DetectionPredictor({"imgsz": IMGSZ, "fast_decode": fast})
    p.imgsz, p.stride, p.device, p.half = [IMGSZ, IMGSZ], 32, torch.device("cpu"), False
    items = list(load_inference_source(str(root / "images" / "a.jpg")))
    x, rps = p.preprocess([c.image for c in items], [c.file for c in items])
    (gh, gw), (left, top) = rps[0]
    h, w = round(700 * gh), round(1000 * gw)
    a = (x[0] * 255).round().byte().numpy().transpose(1, 2, 0)
    return a[int(top):int(top) + h, int(left):int(left) + w]


@pytest.mark.parametrize("fast", [True, False])
def test_predict_and_val_pixels_equal(big_jpeg, fast):
    v, p = val_pixels(big_jpeg, fast), predict_pixels(big_jpeg, fast)
    assert v.shape == p.shape == (224, 320, 3)
    assert np.array_equal(v, p)


def test_the_setting_changes_the_pixels(big_jpeg):
    """fast_decode reaches both paths: on and off differ (a 1/2-scale DCT decode is not a full decode + AREA)."""
    fast, full = val_pixels(big_jpeg, True), val_pixels(big_jpeg, False)
    d = np.abs(fast.astype(int) - full.astype(int))
    assert 0 < d.mean() < 8
    assert not np.array_equal(predict_pixels(big_jpeg, True), predict_pixels(big_jpeg, False))


def test_on_by_default_and_dataset_follows_the_setting(big_jpeg):
    assert YOLODataset.fast_decode is True and get_cfg().fast_decode is True
    kw = dict(img_path=str(big_jpeg / "images"), imgsz=IMGSZ, augment=False)
    assert YOLODataset(**kw).fast_decode is True and YOLODataset(**kw, fast_decode=False).fast_decode is False
    assert YOLODataset.fast_decode is True  # an instance's setting leaves the class default alone


def _batch():
    return [{"img": torch.full((3, 4, 5), i, dtype=torch.uint8), "cls": torch.zeros(1, 1), "bboxes": torch.zeros(1, 4),
             "batch_idx": torch.zeros(1), "im_file": f"{i}.jpg", "ori_shape": (4, 5), "resized_shape": (4, 5),
             "ratio_pad": ((1, 1), (0, 0))} for i in range(3)]


def test_collate_in_a_worker_uses_shared_memory(monkeypatch):
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: object())
    out = YOLODataset.collate_fn(_batch())
    assert out["img"].is_shared() and out["img"][:, 0, 0, 0].tolist() == [0, 1, 2]


def test_collate_falls_back_without_new_shared(monkeypatch):
    """Without torch.UntypedStorage._new_shared (a private API) the worker collate stacks plainly, same values."""
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: object())
    owner = next(c for c in torch.UntypedStorage.__mro__ if "_new_shared" in vars(c))  # defined on a base class
    monkeypatch.delattr(owner, "_new_shared")
    assert not hasattr(torch.UntypedStorage, "_new_shared")
    out = YOLODataset.collate_fn(_batch())
    assert out["img"].shape == (3, 3, 4, 5) and not out["img"].is_shared()
    assert out["img"][:, 0, 0, 0].tolist() == [0, 1, 2] and out["batch_idx"].tolist() == [0, 1, 2]
