"""Slice positions and merges against SAHI 0.12 (recorded) and hand-worked references; the sliced path end to end
on a stand-in model that boxes the white pixels it sees, so every expected box can be worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ultralytics.utils import UserError
from ultralytics.utils.slicing import (check_merge, check_overlap, check_slice_size, merge_detections,
                                       slice_positions)

REF = json.loads((Path(__file__).resolve().parent / "data" / "sahi_reference.json").read_text())


def _rows(a) -> np.ndarray:
    """(n, 6) rows in a canonical order (score desc, class, x1, y1) for comparing sets of boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 6)
    return a[np.lexsort((a[:, 1], a[:, 0], a[:, 5], -a[:, 4]))]


# --- geometry ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", REF["slices"], ids=lambda c: f"{c['height']}x{c['width']}@{c['slice']}")
def test_slice_positions_equal_sahi(case):
    ours = slice_positions(case["height"], case["width"], case["slice"], overlap_h=case["overlap"])
    assert [list(b) for b in ours] == case["boxes"]


def test_slice_positions_by_hand():
    # 1153 wide, slice 640, overlap 0.2: step 512 -> x1 0, 512, then 1024 + 640 > 1153 moves back to 513
    xs = sorted({b[0] for b in slice_positions(640, 1153, 640, overlap_h=0.2)})
    assert xs == [0, 512, 513]
    assert slice_positions(200, 300, 640) == [(0, 0, 300, 200)]  # smaller than the slice: itself, not upscaled


# --- merges --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("m", REF["merges"], ids=lambda m: f"{m['set']}-{m['merge']}-{m['metric']}")
def test_merge_equals_recorded_sahi(m):
    ours = merge_detections(np.array(REF["box_sets"][m["set"]]), m["merge"], m["metric"], m["threshold"])
    np.testing.assert_allclose(_rows(ours), _rows(m["output"]), atol=1e-6)


SEAM = np.array([[600, 100, 640, 140, 0.81, 0],  # left window: the object cut at its border x = 640
                 [601, 101, 680, 139, 0.77, 0],  # right window: the whole object
                 [598, 99, 682, 141, 0.62, 0],  # the full pass
                 [605, 105, 645, 135, 0.55, 1]])  # another class in the same place: never merged with class 0


def test_nmm_ios_merges_a_seam_object_into_one_box():
    # 0.81 keeps; IOS with the whole object 1520/1600 = 0.95 and with the full pass 1 -> one enclosing box
    out = merge_detections(SEAM, "nmm", "ios", 0.5)
    np.testing.assert_allclose(out, [[598, 99, 682, 141, 0.81, 0], [605, 105, 645, 135, 0.55, 1]])


def test_nms_iou_keeps_the_best_box_only():
    # IoU(cut, whole) = 1520 / (1600 + 3002 - 1520) = 0.49 < 0.5: both stay; IoU(cut, full) = 1600/3528 drops nothing;
    # IoU(whole, full) = 3002/3528 = 0.85 -> the full pass is suppressed by the whole object
    out = merge_detections(SEAM, "nms", "iou", 0.5)
    np.testing.assert_allclose(out, SEAM[[0, 1, 3]])
    out = merge_detections(SEAM, "nms", "ios", 0.5)  # IOS(cut, whole) = 0.95: only the best class-0 box stays
    np.testing.assert_allclose(out, SEAM[[0, 3]])


def test_nmm_rechecks_the_growing_box():
    # B and C both overlap A by IoU 70/130 = 0.54; A absorbs B -> (0, 0, 13, 10), whose IoU with C is 70/160 = 0.44:
    # C is then neither merged nor kept (SAHI 0.12 does the same)
    boxes = np.array([[0, 0, 10, 10, 0.9, 0], [3, 0, 13, 10, 0.8, 0], [0, 3, 10, 13, 0.7, 0]])
    np.testing.assert_allclose(merge_detections(boxes, "nmm", "iou", 0.5), [[0, 0, 13, 10, 0.9, 0]])
    # with IOS both merge (IOS 0.7 each, and 1 for C inside nothing -> 70/100) into the box enclosing all three
    np.testing.assert_allclose(merge_detections(boxes, "nmm", "ios", 0.5), [[0, 0, 13, 13, 0.9, 0]])


def test_overlap_exactly_at_the_threshold_counts():
    # IOS = 50 / 100 = 0.5: a match (>= 0.5), merged by nmm, suppressed by nms; IoU = 50 / 150 stays apart
    boxes = np.array([[0, 0, 10, 10, 0.9, 0], [5, 0, 15, 10, 0.8, 0]])
    np.testing.assert_allclose(merge_detections(boxes, "nmm", "ios", 0.5), [[0, 0, 15, 10, 0.9, 0]])
    np.testing.assert_allclose(merge_detections(boxes, "nms", "ios", 0.5), boxes[:1])
    np.testing.assert_allclose(merge_detections(boxes, "nms", "iou", 0.5), boxes)


def test_merge_keeps_type_and_handles_empty():
    t = merge_detections(torch.tensor(SEAM, dtype=torch.float32))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.shape == (2, 6)
    assert merge_detections(np.zeros((0, 6))).shape == (0, 6)


# --- bad settings --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [16, 100, 650, 0, -32, 64.5, "640", True])
def test_bad_slice_size(size):
    with pytest.raises(UserError, match="slice="):
        check_slice_size(size, stride=32)


@pytest.mark.parametrize("ov", [-0.1, 0.9, 1.5, "a lot", None])
def test_bad_overlap(ov):
    with pytest.raises(UserError, match="overlap="):
        check_overlap(ov)


def test_good_settings_and_bad_merge():
    assert check_slice_size(640, stride=32) == 640 and check_slice_size(96, stride=32) == 96
    assert check_overlap(0) == 0.0 and check_overlap("0.25") == 0.25
    assert check_merge("NMM", "IoU", "0.6") == ("nmm", "iou", 0.6)
    for args, name in [(("wbf", "ios", 0.5), "merge="), (("nms", "giou", 0.5), "merge_metric="),
                       (("nms", "iou", 1.5), "merge_threshold=")]:
        with pytest.raises(UserError, match=name):
            check_merge(*args)


# --- the sliced path on a stand-in model -----------------------------------------------------------------------------
class WhiteBoxModel(torch.nn.Module):
    """Boxes the white pixels of each input: (B, 3, H, W) -> (B, 1, 6), score 0.3 + white pixels / 10000, class 0
    (score 0 when there are none). Records the batch size of every call."""

    def __init__(self):
        super().__init__()
        self.stride = torch.tensor([8.0, 16.0, 32.0])
        self.names = {0: "box"}
        self.calls: list[tuple] = []

    def forward(self, x):
        self.calls.append(tuple(x.shape))
        out = torch.zeros(len(x), 1, 6)
        for i, im in enumerate(x):
            ys, xs = torch.nonzero(im.float().mean(0) > 0.75, as_tuple=True)
            if len(xs):
                out[i, 0] = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, 0.3 + len(xs) / 1e4, 0])
        return out


def _sliced(model, **kw):
    from ultralytics.cfg import get_cfg
    from ultralytics.models.yolo.detect.sliced import SlicedDetector

    args = get_cfg(overrides={"mode": "predict", "slice": 640, "overlap": 0.2, **kw})
    return SlicedDetector(model, args, torch.device("cpu"), conf=0.25)


def _scene(h=1000, w=1000, box=(600, 100, 680, 140)):
    im = np.zeros((h, w, 3), np.uint8)
    im[box[1]:box[3], box[0]:box[2]] = 255
    return im


@pytest.mark.parametrize("merge,metric", [("nmm", "ios"), ("nms", "iou"), ("nms", "ios"), ("nmm", "iou")])
def test_object_cut_by_a_seam_comes_out_once(merge, metric):
    # windows x 0-640 and 360-1000: the left one sees the object cut to 600-640, the right one whole (600-680)
    model = WhiteBoxModel()
    sd = _sliced(model, slice_full=False, merge=merge, merge_metric=metric)
    det = sd(_scene())
    assert sd.n_windows == 4
    np.testing.assert_allclose(det.numpy(), [[600, 100, 680, 140, 0.3 + 3200 / 1e4, 0]], rtol=1e-6)
    # before the merge there were two boxes of the object
    raw = _sliced(model, slice_full=False, merge_threshold=1.0, merge="nms", merge_metric="iou")(_scene())
    assert len(raw) == 2


def test_full_pass_and_batches():
    model = WhiteBoxModel()
    # 1500 x 1000, slice 320, overlap 0: 5 x 4 = 20 windows -> batches 8, 8, 4, then the letterboxed full image
    sd = _sliced(model, slice=320, overlap=0.0, imgsz=320, batch=8, slice_full=True)
    det = sd(_scene(1000, 1500, (100, 100, 180, 140)))
    assert [c[0] for c in model.calls] == [8, 8, 4, 1]
    assert model.calls[0][2:] == (320, 320) and model.calls[-1][2:] == (224, 320)  # 1000x1500 at 320: 213 -> 224
    assert len(det) == 1  # the full pass's coarse box is absorbed (nmm/ios) into the window's exact one
    np.testing.assert_allclose(det[0, :4].numpy(), [100, 100, 180, 140], atol=1500 / 320)  # a full-pass pixel
    assert det[0, 4] == pytest.approx(0.3 + 3200 / 1e4)
    # without overlap an object on the seam x = 640 is two halves that do not overlap: the full pass's box
    # absorbs one of them (equal scores: the later window wins), the other stays -- why overlap matters
    det = sd(_scene(1000, 1500, (600, 100, 680, 140)))
    assert len(det) == 2 and sorted(det[:, 2].tolist()) == [640, 680]


def test_small_image_is_one_window_not_upscaled():
    model = WhiteBoxModel()
    sd = _sliced(model, slice=640, imgsz=640)
    det = sd(_scene(200, 300, (10, 20, 50, 60)))
    assert sd.n_windows == 1 and model.calls == [(1, 3, 224, 320)]  # padded to a stride multiple, no full pass
    np.testing.assert_allclose(det[:, :4].numpy(), [[10, 20, 50, 60]])


def test_predictor_results_and_txt(tmp_path):
    from ultralytics.models.yolo.detect import DetectionPredictor

    p = DetectionPredictor({"slice": 640, "overlap": 0.2, "slice_full": False, "save_txt": True, "save": False,
                            "project": str(tmp_path), "name": "p", "verbose": False})
    results = list(p(source=[_scene(), _scene(box=(10, 900, 30, 960))], model=WhiteBoxModel(), stream=True))
    assert [len(r) for r in results] == [1, 1]
    np.testing.assert_allclose(results[1].boxes.xyxy.numpy(), [[10, 900, 30, 960]])
    line = (tmp_path / "p" / "labels" / "image0.txt").read_text().split()
    assert line == ["0", "0.640000", "0.120000", "0.080000", "0.040000"]
    assert results[0].plot().shape == (1000, 1000, 3)


def test_predictor_names_a_bad_slice():
    from ultralytics.models.yolo.detect import DetectionPredictor

    with pytest.raises(UserError, match="slice=100 must be .* multiple of the model stride 32"):
        DetectionPredictor({"slice": 100})(source=_scene(), model=WhiteBoxModel())
    with pytest.raises(UserError, match="overlap=0.95"):
        DetectionPredictor({"slice": 640, "overlap": 0.95})(source=_scene(), model=WhiteBoxModel())


def test_sliced_video_frames(tmp_path):
    """A video is sliced frame by frame: each frame's Results carries its index and the merged box of the object,
    which moves 100 px to the right per frame across the seam of the windows x 0-640 / 360-1000."""
    import cv2

    from ultralytics.models.yolo.detect import DetectionPredictor

    f = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(f), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (1000, 400))
    for i in range(3):
        w.write(_scene(400, 1000, (500 + 100 * i, 100, 580 + 100 * i, 160)))
    w.release()
    p = DetectionPredictor({"slice": 640, "overlap": 0.2, "slice_full": False, "save": True, "verbose": False,
                            "project": str(tmp_path), "name": "v"})
    results = list(p(source=str(f), model=WhiteBoxModel(), stream=True))
    assert [r.frame for r in results] == [0, 1, 2] and [len(r) for r in results] == [1, 1, 1]
    x1 = [float(r.boxes.xyxy[0, 0]) for r in results]
    np.testing.assert_allclose(x1, [500, 600, 700], atol=3)  # mp4 compression blurs the edges by a pixel or two
    assert (tmp_path / "v" / "clip.mp4").stat().st_size > 0


def test_fixed_shape_export_says_why_not():
    model = WhiteBoxModel()
    model.dynamic = False  # as an exported graph with a fixed input shape reports itself
    with pytest.raises(UserError, match="fixed input shape"):
        _sliced(model)


@pytest.mark.parametrize("threads,slice_,expected", [(1, 640, [2, 2, 2]), (2, 640, [4, 2]), (1, 320, [6])])
def test_cpu_caps_windows_per_forward(threads, slice_, expected):
    """On the CPU a forward takes at most CPU_PIXELS_PER_THREAD x threads model pixels (2 windows of 640 or 8 of
    320 per thread), however large `batch` is; a GPU would take `batch` windows."""
    from ultralytics.models.yolo.detect.sliced import CPU_PIXELS_PER_THREAD

    assert CPU_PIXELS_PER_THREAD == 2 * 640 * 640
    model, before = WhiteBoxModel(), torch.get_num_threads()
    h, w = (1000, 1664) if slice_ == 640 else (640, 960)  # 6 windows of 640 at overlap 0.2, or 6 of 320 at 0
    sd = _sliced(model, slice=slice_, imgsz=slice_, overlap=0.2 if slice_ == 640 else 0.0, batch=16,
                 slice_full=False)
    try:
        torch.set_num_threads(threads)
        sd(_scene(h, w))
    finally:
        torch.set_num_threads(before)
    assert sd.n_windows == 6 and [c[0] for c in model.calls] == expected


@pytest.mark.parametrize("as_file", [False, True])
def test_full_pass_equals_unsliced_prediction(tmp_path, as_file):
    """The full pass shows the model the image exactly as model.predict(image) does (image_io.model_view: INTER_AREA
    when shrinking, fast_decode from a JPEG file), so its boxes are the unsliced prediction's, box by box."""
    import cv2

    from ultralytics import YOLO

    rng = np.random.default_rng(0)
    im = rng.integers(90, 140, (1500, 2300, 3), dtype=np.uint8)
    for _ in range(60):
        x, y, s = int(rng.integers(0, 2200)), int(rng.integers(0, 1400)), int(rng.integers(20, 90))
        cv2.rectangle(im, (x, y), (x + s, y + s), tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
    src = im
    if as_file:
        src = str(tmp_path / "scene.jpg")
        cv2.imwrite(src, im)
        im = cv2.imread(src)
    yolo = YOLO(str(Path(__file__).parent / "data" / "yolov10t-shapes.pt"))
    common = dict(imgsz=640, conf=0.05, device="cpu", verbose=False)
    ref = yolo.predict(src, **common)[0].boxes.data.numpy()
    assert len(ref) >= 10
    from ultralytics.cfg import get_cfg
    from ultralytics.models.yolo.detect.sliced import SlicedDetector

    args = get_cfg(overrides={"mode": "predict", "slice": 640, **common})
    model = yolo.inference_cache["model"]  # the model the predict call above prepared
    det = SlicedDetector(model, args, torch.device("cpu"), conf=0.05)._full_pass(im, src if as_file else None)
    np.testing.assert_allclose(det.numpy(), ref, atol=1e-3)
