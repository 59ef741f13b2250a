"""The loader's fast paths give what the plain paths give: reduced-scale JPEG decode (within a stated tolerance),
cache='ram' (identical batches), the worker count from the CPU affinity, and the loader benchmark's CSV."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from ultralytics.data import build_yolo_dataset
from ultralytics.data.build import usable_cpus
from ultralytics.data.image_io import imread, reduce_factor

ROOT = Path(__file__).resolve().parents[1]
HYP = dict(mosaic=1.0, degrees=5.0, translate=0.1, scale=0.5, shear=2.0, perspective=0.0, flipud=0.1,
           fliplr=0.5, hsv_h=0.015, hsv_s=0.7, hsv_v=0.4, mixup=0.0, copy_paste=0.0)
# Mean absolute difference (grey levels, 0-255) allowed between a reduced-scale decode + resize and a full decode +
# resize of the same JPEG: after the resize alone, and after each augmentation step that follows it.
TOL_RESIZE, TOL_SAMPLE = 2.5, 2.5  # measured: about 1.2-1.3 and 0.0-1.3
IMGSZ = 160


def _cfg(**kw):
    d = dict(imgsz=IMGSZ, rect=False, cache=False, single_cls=False, seed=0, fraction=1.0, **HYP)
    d.update(kw)
    return SimpleNamespace(**d)


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    """A photo-like BGR image: smooth gradients, filled shapes, mild grain."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([np.sin(xx / w * 9) * 60 + 120, np.cos(yy / h * 7) * 50 + 110, (xx + yy) / (w + h) * 120 + 60], 2)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
        cv2.rectangle(img, (x0, y0), (x0 + w // 6, y0 + h // 6), rng.uniform(0, 255, 3).tolist(), -1)
    img += rng.normal(0, 4, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def speed_data(tmp_path_factory):
    """5 images: 3 JPEGs 4x / 2.5x larger than IMGSZ, one JPEG smaller than IMGSZ, one PNG; boxes at the borders."""
    root = tmp_path_factory.mktemp("speed")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    sizes = [(360, 640, "jpg"), (640, 480, "jpg"), (400, 300, "jpg"), (90, 120, "jpg"), (500, 700, "png")]
    for k, (h, w, ext) in enumerate(sizes):
        cv2.imwrite(str(root / "images" / f"{k}.{ext}"), _photo(h, w, k),
                    [cv2.IMWRITE_JPEG_QUALITY, 92] if ext == "jpg" else [])
        # boxes touching the left/top border, the right/bottom border, and one in the middle
        (root / "labels" / f"{k}.txt").write_text("0 0.05 0.06 0.1 0.12\n1 0.97 0.98 0.06 0.04\n2 0.5 0.5 0.3 0.2\n")
    return {"path": str(root), "train": str(root / "images"), "val": str(root / "images"), "nc": 3,
            "names": {0: "a", 1: "b", 2: "c"}}


def _mad(a, b) -> float:
    a, b = (x.numpy() if isinstance(x, torch.Tensor) else x for x in (a, b))
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def test_reduce_factor_by_hand():
    assert reduce_factor((1080, 1920), 640) == 2  # 1920 / 640 = 3: 1/2 scale (960 >= 640), not 1/4 (480)
    assert reduce_factor((1080, 1920), 480) == 4
    assert reduce_factor((1080, 1920), 240) == 8
    assert reduce_factor((1080, 1920), 200) == 8  # no DCT scale beyond 1/8
    assert reduce_factor((1280, 100), 640) == 2  # exactly 2x: the reduced long side equals the target
    assert reduce_factor((1279, 100), 640) == 1
    assert reduce_factor((300, 400), 640) == 1  # smaller than the target: full decode, then enlarged


def test_imread_reduced_shape_and_tolerance(speed_data):
    f = Path(speed_data["train"]) / "0.jpg"  # 360 x 640
    full, half, eighth = imread(f), imread(f, 2), imread(f, 8)
    assert full.shape == (360, 640, 3) and half.shape == (180, 320, 3) and eighth.shape == (45, 80, 3)
    assert _mad(half, cv2.resize(full, (320, 180), interpolation=cv2.INTER_AREA)) < TOL_RESIZE
    png = Path(speed_data["train"]) / "4.png"  # not a JPEG: always the full image
    assert np.array_equal(imread(png, 4), imread(png))


def _pair(speed_data, **kw):
    fast = build_yolo_dataset(_cfg(**kw), speed_data["train"], 5, speed_data)
    slow = build_yolo_dataset(_cfg(**kw), speed_data["train"], 5, speed_data)
    slow.fast_decode = False
    return fast, slow


def test_load_image_reduced_equals_full_within_tolerance(speed_data):
    fast, slow = _pair(speed_data)
    names = [Path(f).name for f in fast.im_files]
    for i, name in enumerate(names):
        a, b = fast.load_image(i), slow.load_image(i)
        assert a[1:] == b[1:], name  # same original and resized shapes
        if name in ("3.jpg", "4.png"):  # smaller than imgsz / not a JPEG: bit-identical
            assert np.array_equal(a[0], b[0]), name
        else:
            assert 0 < _mad(a[0], b[0]) < TOL_RESIZE, name


@pytest.mark.parametrize("mosaic", [1.0, 0.0])
def test_augmented_samples_same_labels_image_within_tolerance(speed_data, mosaic):
    """For the same (seed, epoch, index) draws, the fast decode changes no label and the image only slightly."""
    fast, slow = _pair(speed_data, mosaic=mosaic)
    for epoch in range(2):
        keys = [(epoch, i) for i in range(len(fast))]
        for a, b in zip(fast.__getitems__(keys), slow.__getitems__(keys)):
            assert torch.equal(a["cls"], b["cls"]) and torch.equal(a["bboxes"], b["bboxes"])
            assert a["img"].shape == b["img"].shape == (3, IMGSZ, IMGSZ)
            assert _mad(a["img"], b["img"]) < TOL_SAMPLE
            assert len(a["bboxes"]) > 0


def test_cache_ram_same_batches_as_no_cache(speed_data):
    plain = build_yolo_dataset(_cfg(), speed_data["train"], 5, speed_data)
    cached = build_yolo_dataset(_cfg(cache="ram"), speed_data["train"], 5, speed_data)
    assert cached.cache == "ram" and all(im is not None and im.dtype == np.uint8 for im in cached.ims)
    assert max(max(im.shape[:2]) for im in cached.ims) == IMGSZ  # stored resized
    keys = [(1, i) for i in (4, 0, 2, 3, 1)]
    a, b = plain.collate_fn(plain.__getitems__(keys)), cached.collate_fn(cached.__getitems__(keys))
    for k in ("img", "cls", "bboxes", "batch_idx"):
        assert torch.equal(a[k], b[k]), k
    assert a["ratio_pad"] == b["ratio_pad"] and a["ori_shape"] == b["ori_shape"]


def test_usable_cpus_follows_affinity(monkeypatch):
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert usable_cpus() == 3


def test_loader_benchmark_writes_csv(tiny_data, tmp_path):
    out = tmp_path / "speed.csv"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "loader_speed.py"), "--data", tiny_data, "--images", "4",
           "--batch", "4", "--workers", "0", "--imgsz", "64", "--csv", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 1 and rows[0]["images"] == "4" and rows[0]["cache"] == "none"
    assert float(rows[0]["warm_img_s"]) > 0 and float(rows[0]["cold_img_s"]) > 0
    assert "| warm img/s |" in proc.stdout.replace("  ", " ") or "warm img/s" in proc.stdout
