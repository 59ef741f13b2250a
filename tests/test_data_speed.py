"""The loader's fast paths give what the plain paths give: reduced-scale JPEG decode (within a stated tolerance),
cache='ram' (identical batches), batches stacked in shared memory, the worker count from the CPU affinity, the
loader benchmark's CSV; augment_device's batched tensor path against the per-image path; the epoch wait line."""

from __future__ import annotations

import csv
import os
import re
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


def test_imread_reduced_applies_exif_rotation(tmp_path):
    """A JPEG stored 800x400 with EXIF orientation 6 (rotate 90) reads 400 wide, 800 high, at any scale."""
    from PIL import Image

    a = np.zeros((400, 800, 3), np.uint8)
    a[:, :100] = 255  # a white band on the stored image's left: the top rows after the rotation
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "r.jpg", exif=exif, quality=90)
    full, half = imread(tmp_path / "r.jpg"), imread(tmp_path / "r.jpg", 2)
    assert full.shape == (800, 400, 3) and half.shape == (400, 200, 3)
    assert half[:40].mean() > 240 and half[60:].mean() < 15


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
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert usable_cpus() == 3


def test_loader_benchmark_writes_csv(tiny_data, tmp_path, capsys):
    sys.path.insert(0, str(ROOT))
    from benchmarks import loader_speed

    out = tmp_path / "speed.csv"
    loader_speed.main(["--data", tiny_data, "--images", "4", "--batch", "4", "--workers", "0", "--imgsz", "64",
                       "--cache", "none", "ram", "--csv", str(out), "--in-process"])
    rows = list(csv.DictReader(out.open()))
    assert [(r["data"], r["cache"], r["images"]) for r in rows] == [("tiny", "none", "4"), ("tiny", "ram", "4")]
    assert all(float(r["warm_img_s"]) > 0 and float(r["cold_img_s"]) > 0 for r in rows)
    # cached images stored resized (long side 64), uint8: at most 4 x 64 x 64 x 3 bytes
    most = 4 * 64 * 64 * 3 / 2**20
    assert float(rows[0]["cache_mb"]) == 0 and 0.5 * most < float(rows[1]["cache_mb"]) <= most
    text = re.sub(" +", " ", capsys.readouterr().out)
    assert "| data | mosaic | cache | tree | cold img/s | warm img/s | CPU ms/img | cache MB |" in text
    assert all(float(r["cpu_ms_img"]) > 0 for r in rows)


# ------------------------------------------------------------------ augment_device: batched affine, HSV and flips
# the batched path's devices: the CPU always, CUDA where present (a GPU machine runs the same equivalence checks)
AUG_DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", AUG_DEVICES)
@pytest.mark.parametrize("mosaic,perspective", [(1.0, 0.0), (0.5, 0.0), (0.0, 0.0), (1.0, 0.0005)])
def test_batch_augment_matches_per_image_path(speed_data, mosaic, perspective, device):
    """Same (seed, epoch, index) draws: the batched tensor path keeps the same boxes (float32 rounding) and
    classes, and images within TOL_BATCH grey levels of the per-image OpenCV path (measured: about 0.1-0.3)."""
    from ultralytics.data.batch_augment import BatchAugment

    per_image = build_yolo_dataset(_cfg(mosaic=mosaic, perspective=perspective), speed_data["train"], 5, speed_data)
    deferred = build_yolo_dataset(_cfg(mosaic=mosaic, perspective=perspective, augment_device="cpu"),
                                  speed_data["train"], 5, speed_data)
    for epoch in range(2):
        keys = [(epoch, i) for i in range(len(per_image))]
        a = per_image.collate_fn(per_image.__getitems__(keys))
        b = deferred.collate_fn(deferred.__getitems__(keys))
        side = 2 * IMGSZ if mosaic > 0 else IMGSZ
        assert b["img"].shape == (5, 3, side, side) and b["aug_params"].shape == (5, 15)
        b = BatchAugment(IMGSZ, device)(b)
        assert b["img"].device.type == device
        b = {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in b.items()}
        assert b["img"].dtype == torch.uint8 and b["img"].shape == a["img"].shape == (5, 3, IMGSZ, IMGSZ)
        assert torch.equal(a["cls"], b["cls"]) and torch.equal(a["batch_idx"], b["batch_idx"])
        assert len(a["bboxes"]) > 0 and torch.allclose(a["bboxes"], b["bboxes"], atol=1e-6, rtol=0)
        for x, y in zip(a["img"], b["img"]):
            assert _mad(x, y) < TOL_BATCH


TOL_BATCH = 1.0


def test_batch_augment_warp_and_hsv_by_hand():
    """A pure shift by (+3, +2) pixels moves pixels and boxes by that much, grey fills the uncovered border;
    a value gain of 0.5 halves a grey pixel (hue and saturation of grey stay 0)."""
    from ultralytics.data.batch_augment import BatchAugment

    img = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    img[0, :, 4, 4] = 200
    M = torch.eye(3, dtype=torch.float64)
    M[0, 2], M[1, 2] = 3, 2
    params = torch.cat([M.ravel(), torch.tensor([1.0, 1.0, 1.0, 0.5, 0.0, 0.0], dtype=torch.float64)])[None]
    batch = {"img": img, "aug_params": params, "cls": torch.tensor([[2.0]]), "batch_idx": torch.zeros(1),
             "bboxes": torch.tensor([[2.5 / 8, 2.5 / 8, 3 / 8, 3 / 8]])}  # xyxy (1, 1, 4, 4) px of the canvas
    out = BatchAugment(8, "cpu")(batch)
    im = out["img"][0]
    assert im[:, 6, 7].tolist() == [100, 100, 100]  # 200 at (4, 4) -> (7, 6), value halved
    assert im[:, 0, 0].tolist() == [57, 57, 57]  # grey border 114, halved
    assert im[:, 3, 4].tolist() == [0, 0, 0]
    torch.testing.assert_close(out["bboxes"], torch.tensor([[5.5 / 8, 4.5 / 8, 3 / 8, 3 / 8]]))


def test_augment_device_setting_resolves():
    from ultralytics.data.batch_augment import augment_device
    from ultralytics.utils import UserError

    assert augment_device("", "cpu") is None and augment_device(None, "cpu") is None
    assert augment_device("cpu", "cuda:1") == torch.device("cpu")
    assert augment_device("cuda", torch.device("cuda:1")) == torch.device("cuda:1")  # each DDP rank: its own GPU
    with pytest.raises(UserError, match="augment_device=cuda: training runs on cpu"):
        augment_device("cuda", "cpu")
    with pytest.raises(UserError, match="augment_device='tpu'"):
        augment_device("tpu", "cpu")


def test_wait_clock_report_by_hand():
    from ultralytics.data.build import WaitClock

    clock = WaitClock([1, 2, 3, 4])
    assert list(clock) == [1, 2, 3, 4] and clock.steps == 4 and len(clock) == 4
    clock.wait = 3.0
    line = clock.report(total=10.0)
    assert line == "data wait 3.0s (30%, 750 ms/step), forward/backward 7.0s of 10.0s (loader-bound: more workers, " \
                   "cache=ram or augment_device may help)"
    clock.wait = 1.0
    assert clock.report(total=10.0) == "data wait 1.0s (10%, 250 ms/step), forward/backward 9.0s of 10.0s"


def test_training_with_augment_device_cpu_logs_wait(tiny_data, tmp_path, monkeypatch, log_messages):
    """augment_device=cpu: every training batch goes through BatchAugment (4 batches of 4 images), the batch the
    model sees is imgsz square, and the epoch ends with the data-wait line."""
    from ultralytics import YOLO
    from ultralytics.data import batch_augment

    seen = []
    real = batch_augment.BatchAugment.__call__

    def spy(self, batch):
        out = real(self, batch)
        seen.append(tuple(out["img"].shape))
        return out

    monkeypatch.setattr(batch_augment.BatchAugment, "__call__", spy)
    YOLO("yolov10n.yaml").train(data=tiny_data, project=str(tmp_path), name="aug", imgsz=64, batch=4, workers=0,
                                epochs=1, device="cpu", val=False, plots=False, augment_device="cpu", seed=0)
    assert seen == [(4, 3, 64, 64)] * 4
    assert any(m.startswith("epoch 1 data wait ") and "forward/backward" in m for m in log_messages)


def test_collate_stacks_into_shared_memory_in_workers(monkeypatch):
    """In a loader worker the image batch is born in shared memory (sending it then copies nothing); the values
    are the plain stack's. Outside workers: an ordinary tensor."""
    from ultralytics.data import dataset as dataset_mod

    imgs = [torch.randint(0, 255, (3, 4, 5), dtype=torch.uint8) for _ in range(3)]
    plain = dataset_mod._stack_images(imgs)
    assert not plain.is_shared() and torch.equal(plain, torch.stack(imgs))
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: object())
    shared = dataset_mod._stack_images(imgs)
    assert shared.is_shared() and shared.shape == (3, 3, 4, 5) and torch.equal(shared, torch.stack(imgs))


# ------------------------------------------------------------------ allocator settings of the loader's workers
_BATCH_PATTERN = """
import resource, sys
import numpy as np
sys.path.insert(0, {root!r})
from ultralytics.data.allocator import keep_image_buffers
applied = keep_image_buffers() if sys.argv[1] == "1" else False

def batch():  # as a loader worker allocates: a batch's decoded images held together, per sample canvas and outputs
    memo = [np.ones((540, 960, 3), np.uint8) for _ in range(32)]
    outs = []
    for _ in range(32):
        canvas = np.full((1280, 1280, 3), 114, np.uint8)
        outs.append(np.ones((640, 640, 3), np.uint8) + canvas[:640, :640])

batch()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    batch()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


def _page_faults(apply: bool) -> tuple[str, int]:
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", _BATCH_PATTERN.format(root=str(ROOT)), "1" if apply else "0"],
                         capture_output=True, text=True, check=True, env=env).stdout.split()
    return out[0], int(out[1])


def test_worker_allocator_reuses_image_buffers():
    """After keep_image_buffers a worker's later batches fault (almost) no new pages; with glibc's defaults the
    same allocations fault tens of thousands (measured: 0 against about 54,000 for 3 batches)."""
    applied, with_setting = _page_faults(True)
    if applied != "True":
        pytest.skip("not glibc: mallopt is unavailable")
    _, default = _page_faults(False)
    assert default > 10_000 and with_setting < default / 20


def test_keep_image_buffers_parameters_and_opt_outs(monkeypatch):
    from ultralytics.data import allocator, build

    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    assert allocator.keep_image_buffers(FakeLibc())
    assert calls == [(-3, 64 << 20), (-1, 128 << 20)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    assert not allocator.keep_image_buffers(object())  # a C library without mallopt (macOS, musl)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")
    calls.clear()
    assert not allocator.keep_image_buffers(FakeLibc()) and calls == []  # the user's own setting wins
    seen = []
    monkeypatch.setattr(build, "keep_image_buffers", lambda: seen.append(1))
    build.seed_worker(0)
    assert seen == [1]  # the loader's worker_init_fn applies it
