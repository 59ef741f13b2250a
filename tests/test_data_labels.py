"""Tests of image reading, label checks, the label cache and dataset statistics."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ultralytics.data import YOLODataset
from ultralytics.data import cache as cache_mod
from ultralytics.data.image_io import ImageReadError, image_info, imread
from ultralytics.data.labels import parse_label_bytes, verify_image_label
from ultralytics.utils import LOGGER

BAD_LABEL = (
    b"0 0.5 0.5 0.2 0.2\n"  # 1 good
    b"1 0.5 0.5 0.2\n"  # 2 columns
    b"abc 0.5 0.5 0.2 0.2\n"  # 3 non_numeric
    b"0 nan 0.5 0.2 0.2\n"  # 4 non_numeric
    b"0 inf 0.5 0.2 0.2\n"  # 5 non_numeric
    b"7 0.5 0.5 0.2 0.2\n"  # 6 class_id (nc = 3)
    b"-1 0.5 0.5 0.2 0.2\n"  # 7 class_id
    b"1.5 0.5 0.5 0.2 0.2\n"  # 8 class_id
    b"0 1.5 0.5 0.2 0.2\n"  # 9 out_of_bounds
    b"0 0.5 0.5 0 0.2\n"  # 10 size
    b"0 0.5 0.5 -0.1 0.2\n"  # 11 size
    b"0 0.5 0.5 0.2 0.2\n"  # 12 duplicate of row 1
    b"2 0.3 0.3 0.1 0.1 \xff\n"  # 13 not_utf8
    b"2 0.1 0.1 0.3 0.1 0.2 0.4\n"  # 14 polygon -> box x 0.1..0.3, y 0.1..0.4
    b"1 0.995 0.5 0.02 0.2\n"  # 15 reaches past the right edge: clipped
    b"0 1.005 0.5 0.2 0.2\n"  # 16 centre within tolerance: clipped
    b"\n"  # 17 blank: ignored
    b"1 0.5 0.5 0.2 0.2 0.3\n"  # 18 columns (6 values)
)
EXPECTED_DROPS = {"columns": 2, "non_numeric": 3, "class_id": 3, "out_of_bounds": 1, "size": 2, "duplicate": 1,
                  "not_utf8": 1}


def test_parse_bad_label_file_exact_counts():
    cls, boxes, dropped = parse_label_bytes(BAD_LABEL, nc=3)
    counts = {}
    for _, reason in dropped:
        counts[reason] = counts.get(reason, 0) + 1
    assert counts == EXPECTED_DROPS
    assert dict(dropped)[2] == "columns" and dict(dropped)[12] == "duplicate" and dict(dropped)[13] == "not_utf8"
    assert cls.tolist() == [0, 2, 1, 0]
    np.testing.assert_allclose(boxes, [[0.5, 0.5, 0.2, 0.2], [0.2, 0.25, 0.2, 0.3], [0.9925, 0.5, 0.015, 0.2],
                                       [0.9525, 0.5, 0.095, 0.2]], atol=1e-6)


def test_parse_bom_and_empty():
    cls, boxes, dropped = parse_label_bytes(b"\xef\xbb\xbf1 0.5 0.5 0.1 0.1\r\n", nc=2)
    assert cls.tolist() == [1] and not dropped and boxes.shape == (1, 4)
    cls, boxes, dropped = parse_label_bytes(b"  \n\n", nc=2)
    assert cls.shape == (0,) and boxes.shape == (0, 4) and dropped == []


def _marker_image(h=20, w=40) -> np.ndarray:
    """RGB image, black with a red block at the top-left."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:6, :8] = (255, 0, 0)
    return a


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".jpg"), ("PNG", ".png")])
def test_imread_exif_rotation(tmp_path, fmt, suffix):
    p = tmp_path / f"rot{suffix}"
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    Image.fromarray(_marker_image()).save(p, fmt, exif=exif.tobytes(), quality=100)
    im = imread(p)
    assert im.shape == (40, 20, 3) and im.dtype == np.uint8
    assert image_info(p) == (40, 20)
    assert im[:5, -5:, 2].min() > 200 and im[:5, -5:, :2].max() < 60  # red block now top-right (BGR)
    assert im[-5:, :5].max() < 60


def test_imread_modes(tmp_path):
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 0  # red, fully transparent: alpha dropped
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    im = imread(tmp_path / "a.png")
    assert im.shape == (10, 12, 3) and (im[..., 2] == 200).all() and (im[..., :2] == 0).all()
    Image.fromarray(np.full((10, 12), 77, np.uint8), "L").save(tmp_path / "g.png")
    assert (imread(tmp_path / "g.png") == 77).all() and imread(tmp_path / "g.png").shape == (10, 12, 3)
    cv2.imwrite(str(tmp_path / "d.png"), np.full((10, 12), 0x1234, np.uint16))
    im16 = imread(tmp_path / "d.png")
    assert im16.dtype == np.uint8 and im16.shape == (10, 12, 3) and (im16 == 0x12).all()
    Image.fromarray(_marker_image()).convert("P").save(tmp_path / "p.png")
    assert imread(tmp_path / "p.png")[0, 0].tolist() == [0, 0, 255]
    Image.fromarray(_marker_image()).convert("CMYK").save(tmp_path / "c.jpg", quality=100)
    imc = imread(tmp_path / "c.jpg")
    assert imc.shape == (20, 40, 3) and imc[2, 2, 2] > 200 and imc[15, 30].max() < 40


def _jpeg_bytes(h=64, w=64) -> bytes:
    ok, enc = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8))
    return enc.tobytes()


def test_imread_bad_files(tmp_path):
    cases = {"empty.jpg": (b"", "empty"), "trunc.jpg": (_jpeg_bytes()[:700], "truncated"),
             "garbage.png": (b"not an image at all", "unreadable")}
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageReadError, match=name) as e:
            imread(tmp_path / name)
        assert e.value.reason == reason
        with pytest.raises(ImageReadError) as e:
            image_info(tmp_path / name)
        assert e.value.reason == reason
    cv2.imwrite(str(tmp_path / "tiny.png"), np.zeros((1, 5, 3), np.uint8))
    with pytest.raises(ImageReadError) as e:
        imread(tmp_path / "tiny.png")
    assert e.value.reason == "too_small"
    with pytest.raises(ImageReadError, match="missing.jpg"):
        imread(tmp_path / "missing.jpg")


def test_jpeg_with_trailing_bytes_is_fine(tmp_path):
    (tmp_path / "t.jpg").write_bytes(_jpeg_bytes() + b"\x00\x00")
    assert imread(tmp_path / "t.jpg").shape == (64, 64, 3)
    assert image_info(tmp_path / "t.jpg") == (64, 64)


def _make_dataset(root: Path) -> Path:
    """images/train with 3 good images, 4 bad ones, a background without label, one with an empty label."""
    im_dir, lb_dir = root / "images" / "train", root / "labels" / "train"
    im_dir.mkdir(parents=True)
    lb_dir.mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(im_dir / f"good{i}.jpg"), np.full((48, 64, 3), 40 * i, np.uint8))
        (lb_dir / f"good{i}.txt").write_text(f"{i} 0.5 0.5 0.25 0.5\n1 0.2 0.2 0.1 0.1\n")
    (lb_dir / "good2.txt").write_bytes(BAD_LABEL)
    (im_dir / "zero.jpg").write_bytes(b"")
    (im_dir / "trunc.jpg").write_bytes(_jpeg_bytes()[:700])
    (im_dir / "junk.png").write_bytes(b"junk")
    cv2.imwrite(str(im_dir / "tiny.png"), np.zeros((1, 1, 3), np.uint8))
    for name in ("zero", "trunc", "junk", "tiny"):
        (lb_dir / f"{name}.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    cv2.imwrite(str(im_dir / "bg_nolabel.png"), np.zeros((30, 30, 3), np.uint8))
    cv2.imwrite(str(im_dir / "bg_empty.png"), np.zeros((30, 30, 3), np.uint8))
    (lb_dir / "bg_empty.txt").write_text("")
    return im_dir


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def log_capture():
    h = _Capture()
    LOGGER.addHandler(h)
    yield h.records
    LOGGER.removeHandler(h)


def test_dataset_skips_bad_files_and_counts(tmp_path, log_capture):
    im_dir = _make_dataset(tmp_path)
    ds = YOLODataset(im_dir, imgsz=64, augment=False, data={"nc": 3, "names": {0: "a", 1: "b", 2: "c"}})
    s = ds.stats
    assert s["images_found"] == 9 and s["images_used"] == 5
    assert s["images_skipped"] == {"empty": 1, "truncated": 1, "unreadable": 1, "too_small": 1}
    assert s["rows_dropped"] == EXPECTED_DROPS
    assert s["backgrounds"] == 2 and s["missing_labels"] == 1
    assert s["instances"] == 2 + 2 + 4  # good0, good1, and the 4 kept rows of good2
    assert len(ds) == 5 and sorted(Path(f).name for f in ds.im_files) == [
        "bg_empty.png", "bg_nolabel.png", "good0.jpg", "good1.jpg", "good2.jpg"]
    warnings = [r.getMessage() for r in log_capture if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # one warning for everything
    w = warnings[0]
    assert "zero.jpg" in w and "trunc.jpg" in w and "junk.png" in w and "tiny.png" in w
    assert "good2.txt:2" in w and "good2.txt:12" in w and "3 class_id" in w
    lb = ds.labels[ds.im_files.index(str(im_dir / "good0.jpg"))]
    assert lb["shape"] == (48, 64) and lb["cls"].tolist() == [[0], [1]]
    np.testing.assert_allclose(lb["bboxes"], [[0.5, 0.5, 0.25, 0.5], [0.2, 0.2, 0.1, 0.1]])
    sample = ds[ds.im_files.index(str(im_dir / "bg_empty.png"))]
    assert sample["cls"].shape == (0, 1) and sample["bboxes"].shape == (0, 4)


def test_label_cache_used_and_invalidated(tmp_path, log_capture):
    im_dir = _make_dataset(tmp_path)
    data = {"nc": 3}
    cache_file = tmp_path / "labels" / "train.cache"
    ds1 = YOLODataset(im_dir, imgsz=64, augment=False, data=data)
    assert cache_file.is_file()
    msgs = [r.getMessage() for r in log_capture]
    assert any("Scanned labels" in m for m in msgs)
    log_capture.clear()
    ds2 = YOLODataset(im_dir, imgsz=64, augment=False, data=data)
    assert any("from cache" in m for m in (r.getMessage() for r in log_capture))
    assert ds2.stats == ds1.stats and len([r for r in log_capture if r.levelno == logging.WARNING]) == 1
    # change a label file: the cache is stale and rebuilt
    lb = tmp_path / "labels" / "train" / "good0.txt"
    lb.write_text("2 0.5 0.5 0.5 0.5\n")
    os.utime(lb, ns=(time.time_ns(), time.time_ns() + 10**9))
    log_capture.clear()
    ds3 = YOLODataset(im_dir, imgsz=64, augment=False, data=data)
    assert any("Scanned labels" in m for m in (r.getMessage() for r in log_capture))
    assert ds3.labels[ds3.im_files.index(str(im_dir / "good0.jpg"))]["cls"].tolist() == [[2]]
    assert ds3.stats["instances"] == ds1.stats["instances"] - 1
    # another nc: rebuilt (class checks depend on it)
    ds4 = YOLODataset(im_dir, imgsz=64, augment=False, data={"nc": 2})
    assert ds4.stats["rows_dropped"]["class_id"] > ds3.stats["rows_dropped"]["class_id"]
    # a corrupt (half-written) cache is ignored and rebuilt
    cache_file.write_bytes(cache_file.read_bytes()[:100])
    ds5 = YOLODataset(im_dir, imgsz=64, augment=False, data={"nc": 2})
    assert ds5.stats == ds4.stats
    assert cache_mod.load_cache(cache_file, "whatever") is None  # version/hash mismatch -> not trusted


def test_label_cache_not_writable_warns_and_goes_on(tmp_path, monkeypatch, log_capture):
    im_dir = _make_dataset(tmp_path)

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cache_mod.tempfile, "mkstemp", denied)
    ds = YOLODataset(im_dir, imgsz=64, augment=False, data={"nc": 3})
    assert len(ds) == 5 and not (tmp_path / "labels" / "train.cache").exists()
    assert any("not writable" in r.getMessage() for r in log_capture if r.levelno == logging.WARNING)


def test_verify_image_label_record(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((30, 50, 3), np.uint8))
    rec = verify_image_label(str(tmp_path / "a.png"), str(tmp_path / "a.txt"), nc=1)
    assert rec["ok"] and rec["label"] == "missing" and rec["shape"] == (30, 50) and rec["cls"].shape == (0,)
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n")
    rec = verify_image_label(str(tmp_path / "a.png"), str(tmp_path / "a.txt"), nc=1)
    assert rec["ok"] and rec["label"] == "found" and len(rec["cls"]) == 1 and rec["dropped"] == [(2, "duplicate")]
    rec = verify_image_label(str(tmp_path / "nope.png"), str(tmp_path / "nope.txt"), nc=1)
    assert not rec["ok"] and rec["reason"] == "missing"
    (tmp_path / "d.txt").mkdir()  # a label "file" that cannot be read
    cv2.imwrite(str(tmp_path / "d.png"), np.zeros((30, 50, 3), np.uint8))
    rec = verify_image_label(str(tmp_path / "d.png"), str(tmp_path / "d.txt"), nc=1)
    assert not rec["ok"] and rec["reason"] == "label_unreadable"


def test_disk_and_ram_image_cache(tmp_path):
    im_dir = _make_dataset(tmp_path)
    plain = YOLODataset(im_dir, imgsz=64, augment=False, data={"nc": 3})
    ram = YOLODataset(im_dir, imgsz=64, augment=False, data={"nc": 3}, cache="ram")
    disk = YOLODataset(im_dir, imgsz=64, augment=False, data={"nc": 3}, cache="disk")
    assert disk.cache == "disk" and all(Path(f).with_suffix(".npy").is_file() for f in disk.im_files)
    assert ram.cache == "ram" and all(im is not None for im in ram.ims)
    for i in range(len(plain)):
        a, b, c = plain[i], ram[i], disk[i]
        assert np.array_equal(a["img"], b["img"]) and np.array_equal(a["img"], c["img"])
        assert a["ratio_pad"] == b["ratio_pad"] == c["ratio_pad"]
    assert not list(im_dir.glob("*.tmp"))
