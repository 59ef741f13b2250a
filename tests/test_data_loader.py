"""Tests of YOLODataset sampling, rect batches, the epoch-aware loader and prediction sources."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from ultralytics.data import (build_dataloader, build_yolo_dataset, ensure_builtin_dataset,
                              load_inference_source)
from ultralytics.data.augment import Mosaic
from ultralytics.utils import UserError

HYP = dict(mosaic=1.0, degrees=0.0, translate=0.1, scale=0.5, shear=0.0, perspective=0.0, flipud=0.0,
           fliplr=0.5, hsv_h=0.015, hsv_s=0.7, hsv_v=0.4, mixup=0.0, copy_paste=0.0)


def _cfg(**kw):
    d = dict(imgsz=96, rect=False, cache=False, single_cls=False, seed=0, fraction=1.0, **HYP)
    d.update(kw)
    return SimpleNamespace(**d)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = ensure_builtin_dataset(tmp_path_factory.mktemp("shapes"), n_train=24, n_val=10, seed=1)
    names = {0: "circle", 1: "square", 2: "triangle", 3: "star", 4: "cross", 5: "ring"}
    return {"path": str(root), "train": str(root / "images" / "train"), "val": str(root / "images" / "val"),
            "names": names, "nc": 6}


def _fingerprint(batch):
    return (tuple(Path(f).name for f in batch["im_file"]), batch["img"].float().mean().item(),
            batch["bboxes"].sum().item(), batch["batch_idx"].tolist())


def _epochs(loader, epochs):
    out = []
    for e in epochs:
        loader.set_epoch(e)
        out.append([_fingerprint(b) for b in loader])
    return out


def test_sample_reproducible_per_seed_epoch_index(shapes):
    ds = build_yolo_dataset(_cfg(), shapes["train"], 8, shapes)
    a, b = ds[(3, 5)], ds[(3, 5)]
    assert torch.equal(a["img"], b["img"]) and torch.equal(a["bboxes"], b["bboxes"])
    assert not torch.equal(ds[(4, 5)]["img"], a["img"])
    ds.set_epoch(3)
    assert torch.equal(ds[5]["img"], a["img"])
    other_seed = build_yolo_dataset(_cfg(seed=1), shapes["train"], 8, shapes)
    assert not torch.equal(other_seed[(3, 5)]["img"], a["img"])
    assert a["img"].shape == (3, 96, 96) and a["img"].dtype == torch.uint8
    assert ((a["bboxes"] >= 0) & (a["bboxes"] <= 1)).all()
    assert a["cls"].shape[0] == a["bboxes"].shape[0] == a["batch_idx"].shape[0]


def test_batch_through_getitems_and_collate(shapes):
    ds = build_yolo_dataset(_cfg(), shapes["train"], 8, shapes)
    items = ds.__getitems__([(0, i) for i in range(4)])
    again = ds.__getitems__([(0, i) for i in range(4)])
    assert all(torch.equal(x["img"], y["img"]) and torch.equal(x["bboxes"], y["bboxes"]) for x, y in zip(items, again))
    batch = ds.collate_fn(items)
    n = [len(it["cls"]) for it in items]
    assert batch["img"].shape == (4, 3, 96, 96) and batch["cls"].shape == (sum(n), 1)
    assert batch["batch_idx"].tolist() == [float(i) for i, k in enumerate(n) for _ in range(k)]
    assert len(batch["im_file"]) == len(batch["ori_shape"]) == len(batch["ratio_pad"]) == 4


def test_loader_order_reproducible_and_differs_across_epochs(shapes):
    ds = build_yolo_dataset(_cfg(), shapes["train"], 8, shapes)
    run1 = _epochs(build_dataloader(ds, 8, 0, shuffle=True, seed=5), [0, 1, 2])
    run2 = _epochs(build_dataloader(ds, 8, 0, shuffle=True, seed=5), [0, 1, 2])
    assert run1 == run2
    assert len(run1[0]) == 3
    files = [sorted(f for b in ep for f in b[0]) for ep in run1]
    assert files[0] == files[1] == sorted(Path(f).name for f in ds.im_files)  # every image once per epoch
    orders = [[f for b in ep for f in b[0]] for ep in run1]
    assert orders[0] != orders[1] and orders[1] != orders[2]
    resumed = _epochs(build_dataloader(ds, 8, 0, shuffle=True, seed=5), [2])  # resume at epoch 2
    assert resumed[0] == run1[2]
    other = _epochs(build_dataloader(ds, 8, 0, shuffle=True, seed=6), [0])
    assert [f for b in other[0] for f in b[0]] != orders[0]


def test_loader_workers_match_main_process_and_close_mosaic(shapes):
    ds = build_yolo_dataset(_cfg(), shapes["train"], 8, shapes)
    ref = build_dataloader(ds, 8, 0, shuffle=True, seed=2)
    par = build_dataloader(ds, 8, 2, shuffle=True, seed=2)
    assert par.num_workers == 2 and not par.pin_memory or torch.cuda.is_available()
    assert _epochs(ref, [0, 1]) == _epochs(par, [0, 1])
    it_before = par._it
    par.set_epoch(2)
    assert par._it is it_before  # continuing epoch: workers kept
    ds.close_mosaic()
    assert not any(isinstance(t, Mosaic) for t in ds.transforms.transforms)
    assert _epochs(ref, [2]) == _epochs(par, [2])  # workers restarted and see the change
    assert par._it is not it_before


def test_loader_partial_epoch_then_next(shapes):
    ds = build_yolo_dataset(_cfg(), shapes["train"], 8, shapes)
    dl = build_dataloader(ds, 8, 0, shuffle=True, seed=0)
    dl.set_epoch(0)
    next(iter(dl))  # abandon epoch 0 after one batch
    full = _epochs(build_dataloader(ds, 8, 0, shuffle=True, seed=0), [1])
    assert _epochs(dl, [1]) == full


def test_workers_clipped(shapes):
    ds = build_yolo_dataset(_cfg(), shapes["train"], 4, shapes)
    assert build_dataloader(ds, 1, 8, shuffle=False).num_workers == 0
    assert build_dataloader(ds, 4, 64, shuffle=False).num_workers <= 4


def test_rect_val_batches(shapes):
    ds = build_yolo_dataset(_cfg(imgsz=128), shapes["val"], 4, shapes, mode="val", rect=True, stride=32)
    assert ds.rect and not ds.augment
    assert (ds.batch_shapes % 32 == 0).all() and ds.batch_shapes.max() <= 128 + 32
    ar = np.array([lb["shape"][0] / lb["shape"][1] for lb in ds.labels])
    assert (np.diff(ar) >= 0).all()  # sorted by aspect ratio
    dl = build_dataloader(ds, 4, 0, shuffle=True)  # shuffle refused for rect
    for k, batch in enumerate(dl):
        bh, bw = ds.batch_shapes[k]
        assert batch["img"].shape[2:] == (bh, bw)
        for (h0, w0), ((rh, rw), (pw, ph)) in zip(batch["ori_shape"], batch["ratio_pad"]):
            r = 128 / max(h0, w0)
            assert abs(rh - r) < 0.01 and abs(rw - r) < 0.01
            assert 2 * pw <= bw - w0 * rw + 1 and 2 * ph <= bh - h0 * rh + 1
    ar_b = [ar[ds.batch == k] for k in range(len(ds.batch_shapes))]
    for (bh, bw), a in zip(ds.batch_shapes, ar_b):
        if a.max() < 1:
            assert bw == int(np.ceil(128 / 32 + 0.5)) * 32 and bh == int(np.ceil(a.max() * 128 / 32 + 0.5)) * 32


def test_fraction_single_cls_and_mixup_warning(shapes, log_messages):
    ds = build_yolo_dataset(_cfg(fraction=0.5, single_cls=True, mixup=0.2), shapes["train"], 4, shapes)
    assert len(ds) == 12 and ds.stats["images_used"] == 12
    assert all((lb["cls"] == 0).all() for lb in ds.labels)
    assert sum("mixup" in m for m in log_messages) == 1
    with pytest.raises(UserError, match="hsv_h"):
        build_yolo_dataset(SimpleNamespace(**{k: v for k, v in vars(_cfg()).items() if k != "hsv_h"}),
                           shapes["train"], 4, shapes)


def test_inference_sources(tmp_path):
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"im{i}.jpg"), np.full((20, 30, 3), 50 * i, np.uint8))
    (tmp_path / "broken.png").write_bytes(b"broken")
    got = list(load_inference_source(tmp_path))
    assert [Path(n).name for n, _ in got] == ["im0.jpg", "im1.jpg"] and got[1][1].shape == (20, 30, 3)
    assert len(list(load_inference_source(str(tmp_path / "*.jpg")))) == 2
    assert len(list(load_inference_source([tmp_path / "im0.jpg", str(tmp_path / "im1.jpg")]))) == 2
    arr = np.zeros((8, 9, 3), np.uint8)
    (name, im), = list(load_inference_source(arr))
    assert name == "image0.jpg" and im.shape == (8, 9, 3)
    assert [n for n, _ in load_inference_source([arr, np.zeros((8, 9), np.uint8)])] == ["image0.jpg", "image1.jpg"]
    with pytest.raises(UserError, match="nothere.jpg"):
        load_inference_source(tmp_path / "nothere.jpg")
    with pytest.raises(UserError, match="broken.png"):
        list(load_inference_source(tmp_path / "broken.png"))
    with pytest.raises(UserError, match="float"):
        load_inference_source(np.zeros((4, 4, 3), np.float32))
