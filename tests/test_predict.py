"""Tests of DetectionPredictor / YOLO.predict / Results with models of known output.

`Fixed` returns one box at fixed letterboxed pixels; `Relative` finds the image inside the letterbox (the
non-pad pixels) and returns a box at fixed fractions of it, so the expected box in original pixels is
known for any image size, batch composition and padding.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import UserError

PAD = 114
FRACTIONS = (0.25, 0.25, 0.75, 0.5)  # x1, y1, x2, y2 as fractions of the image


class Fixed(DetectionModel):
    """yolov10n (nc=2) whose eval forward returns `box` (letterboxed xyxy, conf, cls) for every image."""

    def __init__(self):
        super().__init__("yolov10n.yaml", nc=2, verbose=False)
        self.names = {0: "a", 1: "b"}
        self.box = [32.0, 37.0, 160.0, 117.0, 0.9, 1.0]
        self.mode = "fixed"
        self.shapes: list[tuple] = []  # input shapes seen

    def forward(self, x, raw=False):
        self.shapes.append(tuple(x.shape))
        out = torch.zeros(x.shape[0], 3, 6)
        for b in range(x.shape[0]):
            if self.mode == "fixed":
                out[b, 0] = torch.tensor(self.box)
                continue
            content = ((x[b] * 255 - PAD).abs() > 0.5).any(0)  # (H, W)
            ys, xs = content.any(1).nonzero()[:, 0], content.any(0).nonzero()[:, 0]
            y0, x0, h, w = int(ys[0]), int(xs[0]), int(ys[-1]) + 1 - int(ys[0]), int(xs[-1]) + 1 - int(xs[0])
            f = FRACTIONS
            out[b, 0] = torch.tensor([x0 + f[0] * w, y0 + f[1] * h, x0 + f[2] * w, y0 + f[3] * h, 0.8, 0.0])
            out[b, 1] = torch.tensor([x0, y0, x0 + w, y0 + h, 0.1, 1.0])  # below conf=0.25
        return out


@pytest.fixture(scope="module")
def facade():
    """A YOLO facade holding the Fixed model (built once)."""
    y = YOLO("yolov10n.yaml")
    y.model = Fixed()
    return y


@pytest.fixture
def model(facade):
    facade.model.mode, facade.model.shapes = "fixed", []
    facade.inference_cache.clear()  # the next predict prepares (copies) the model as just set
    return facade


def prepared(facade):
    """The prepared copy that predict ran (the facade's cached inference model)."""
    return facade.inference_cache["model"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """4 readable images of different sizes (uniform grey, never the pad grey) and one corrupt .jpg."""
    d = tmp_path_factory.mktemp("imgs")
    for i, (h, w) in enumerate([(200, 300), (300, 200), (150, 150), (200, 300)]):
        cv2.imwrite(str(d / f"im{i}.png"), np.full((h, w, 3), 40 + 30 * i, np.uint8))
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return d


def test_fixed_letterboxed_box_maps_back_to_original(model):
    """300x200 image at imgsz=320: resized as validation does (sides rounded up) to 320x214, gains 320/300 (x) and
    214/200 (y), letterbox 224x320 with 5 px on top.

    Box (32, 37, 160, 117) in the letterbox -> (32 / gx, (37 - 5) / gy, 160 / gx, (117 - 5) / gy) = (30, 29.9065, 150,
    104.6729).
    """
    im = np.full((200, 300, 3), 60, np.uint8)
    (r,) = model.predict(im, imgsz=320, verbose=False)
    assert prepared(model).shapes == [(1, 3, 224, 320)]
    assert r.orig_shape == (200, 300) and r.names == {0: "a", 1: "b"} and len(r) == 1
    assert r.boxes.xyxy[0].tolist() == pytest.approx([30, 29.9065, 150, 104.6729], abs=1e-3)
    assert r.boxes.conf.tolist() == pytest.approx([0.9]) and r.boxes.cls.tolist() == [1.0]
    assert r.boxes.xywh[0].tolist() == pytest.approx([90, 67.2897, 120, 74.7664], abs=1e-3)
    assert r.boxes.xyxyn[0].tolist() == pytest.approx([0.1, 0.149533, 0.5, 0.523364], abs=1e-5)
    assert r.summary()[0]["name"] == "b" and r.verbose() == "1 b, "
    assert r.to_txt_lines() == ["1 0.300000 0.336449 0.400000 0.373832"]


@pytest.mark.parametrize("batch", [1, 4])
def test_relative_box_maps_back_in_mixed_batches(model, folder, batch):
    model.model.mode = "relative"
    model.inference_cache.clear()
    res = model.predict(str(folder), imgsz=128, batch=batch, verbose=False)
    assert [r.path.rsplit("/", 1)[-1] for r in res] == ["im0.png", "im1.png", "im2.png", "im3.png"]
    for r in res:
        h, w = r.orig_shape
        assert len(r) == 1  # the 0.1-score box is dropped by conf=0.25
        assert r.boxes.xyxy[0].tolist() == pytest.approx([FRACTIONS[0] * w, FRACTIONS[1] * h, FRACTIONS[2] * w,
                                                          FRACTIONS[3] * h], abs=1.0)
    if batch == 4:
        assert prepared(model).shapes == [(4, 3, 128, 128)]  # mixed shapes: one letterbox that holds them all
    else:
        assert prepared(model).shapes == [(1, 3, 96, 128), (1, 3, 128, 96), (1, 3, 128, 128), (1, 3, 96, 128)]


def test_sources_folder_glob_list_array(model, folder, capsys):
    assert len(model.predict(str(folder), imgsz=64, verbose=False)) == 4  # broken.jpg skipped
    assert "broken.jpg" in capsys.readouterr().out  # ... with a warning naming it
    assert len(model.predict(str(folder / "im*.png"), imgsz=64, verbose=False)) == 4
    assert len(model.predict([str(folder / "im0.png"), str(folder / "im2.png")], imgsz=64, verbose=False)) == 2
    arrays = [np.zeros((50, 80, 3), np.uint8), np.zeros((90, 40, 3), np.uint8)]
    res = model.predict(arrays, imgsz=64, verbose=False)
    assert [r.orig_shape for r in res] == [(50, 80), (90, 40)]
    assert len(model.predict(arrays[0], imgsz=64, verbose=False)) == 1


def test_bad_sources(model, folder, tmp_path):
    missing = tmp_path / "nope" / "x.jpg"
    with pytest.raises(UserError, match=f"{missing}.*does not exist"):
        model.predict(str(missing))
    with pytest.raises(UserError, match="broken.jpg"):  # a single unreadable image is an error, not a skip
        model.predict(str(folder / "broken.jpg"))


def test_save_dirs_and_txt(model, folder, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    model.predict(str(folder), imgsz=64)  # Python default: nothing written
    assert not (tmp_path / "runs").exists()
    res = model.predict(str(folder), imgsz=64, save=True)
    out = capsys.readouterr().out
    assert "image 1/5" in out and "Speed:" in out and "Results saved to runs/detect/predict" in out
    saved = tmp_path / "runs" / "detect" / "predict"
    assert sorted(p.name for p in saved.iterdir()) == ["im0.png", "im1.png", "im2.png", "im3.png"]
    assert res[0].save_path.resolve() == saved / "im0.png"
    drawn = cv2.imread(str(saved / "im0.png"))
    assert drawn.shape == (200, 300, 3) and (drawn != 40).any()  # same size as the original, box drawn
    model.predict(str(folder / "im1.png"), imgsz=64, save=True, save_txt=True, save_conf=True)
    second = tmp_path / "runs" / "detect" / "predict2"
    assert (second / "im1.png").is_file()
    lines = (second / "labels" / "im1.txt").read_text().splitlines()
    assert len(lines) == 1 and lines[0].split()[0] == "1" and lines[0].endswith("0.900000")


def test_conf_classes_max_det(model):
    model.model.mode = "relative"
    model.inference_cache.clear()
    im = np.full((64, 64, 3), 30, np.uint8)
    assert len(model.predict(im, imgsz=64, conf=0.05, verbose=False)[0]) == 2
    assert model.predict(im, imgsz=64, conf=0.05, classes=[1], verbose=False)[0].boxes.cls.tolist() == [1.0]
    assert len(model.predict(im, imgsz=64, conf=0.05, max_det=1, verbose=False)[0]) == 1


def test_results_api(model):
    (r,) = model.predict(np.full((200, 300, 3), 60, np.uint8), imgsz=320, verbose=False)
    sub = r[r.boxes.conf > 0.5]
    assert len(sub) == 1 and len(r[r.boxes.conf > 0.95]) == 0
    assert r.boxes.numpy().shape == (1, 6) and r.boxes.shape == (1, 6)
    assert '"name": "b"' in r.to_json()
    plotted = r.plot()
    assert plotted.shape == r.orig_img.shape and (r.orig_img == 60).all()  # drawing never touches the original
    assert (plotted != 60).any()
    assert torch.equal(r.cpu().boxes.data, r.boxes.data) and "1 b" in repr(r)
