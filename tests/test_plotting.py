"""Plots: each writes a non-blank image of the expected size, boxes land where they should."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ultralytics.utils import UserError
from ultralytics.utils.metrics import ConfusionMatrix, DetMetrics
from ultralytics.utils.plot_curves import save_confusion_matrix
from ultralytics.utils.plotting import (
    colors,
    draw_detections,
    plot_images,
    plot_labels,
    plot_mc_curve,
    plot_pr_curve,
    plot_results,
)

NAMES = {0: "person", 1: "car", 2: "traffic light"}


def read(path: Path) -> np.ndarray:
    """Read an image written by a plot and check it is a real, non-blank picture."""
    assert path.is_file() and path.stat().st_size > 1000, path
    im = cv2.imread(str(path))
    assert im is not None and im.std() > 5, f"{path} is blank"
    return im


def near(pixel, colour, tol: int = 40) -> bool:
    """Whether a BGR pixel is within tol (per channel) of a colour."""
    return bool(np.abs(pixel.astype(int) - np.array(colour)).max() <= tol)


def test_pr_and_mc_curves(tmp_path):
    px = np.linspace(0, 1, 1000)
    py = np.stack([1 - px**2, 1 - px**4, np.clip(1 - px, 0, 1)])
    ap = np.array([[0.6] * 10, [0.8] * 10, [0.5] * 10])
    assert read(plot_pr_curve(px, py, ap, tmp_path / "PR_curve.png", NAMES)).shape == (1500, 2250, 3)
    f1 = np.stack([np.sin(np.pi * px), np.sin(np.pi * px) ** 2])
    im = read(plot_mc_curve(px, f1, tmp_path / "F1_curve.png", NAMES, ylabel="F1"))
    assert im.shape == (1500, 2250, 3)
    many = np.tile(py, (10, 1))  # 30 classes: grey lines, no per-class legend
    read(plot_mc_curve(px, many, tmp_path / "P_curve.png", {}, ylabel="Precision"))
    p_nan = np.where(px[None] <= 0.8, py, np.nan)  # undefined above the top score
    read(plot_mc_curve(px, p_nan, tmp_path / "P2_curve.png", NAMES, ylabel="Precision"))


def test_detmetrics_curves_are_drawn_by_the_plotting_module(tmp_path):
    from ultralytics.utils.plot_curves import plot_metric_curves

    rng = np.random.default_rng(0)
    tp = rng.random((200, 10)) < 0.6
    m = DetMetrics(names=NAMES)
    m.process(tp, rng.random(200), rng.integers(0, 3, 200), rng.integers(0, 3, 150))
    assert not list(tmp_path.iterdir())  # computing metrics draws nothing
    paths = plot_metric_curves(m.box, tmp_path, NAMES)
    assert [p.name for p in paths] == ["PR_curve.png", "F1_curve.png", "P_curve.png", "R_curve.png"]
    for p in paths:
        assert read(p).shape == (1500, 2250, 3)


def test_confusion_matrix_plot(tmp_path):
    cm = ConfusionMatrix(nc=3)
    cm.matrix[:] = np.arange(16).reshape(4, 4)
    for normalize, name in ((True, "confusion_matrix_normalized.png"), (False, "confusion_matrix.png")):
        path = save_confusion_matrix(cm, tmp_path, NAMES, normalize=normalize)
        assert path == tmp_path / name
        h, w = read(path).shape[:2]
        assert 1.05 < w / h < 1.25 and h >= 1000
    big = ConfusionMatrix(nc=80)  # no numbers, no tick labels, still written
    big.matrix[np.arange(81), np.arange(81)] = 5
    read(save_confusion_matrix(big, tmp_path / "big"))


def write_csv(path: Path, rows: int) -> Path:
    """A results.csv in the trainer's layout (padded column names) with `rows` epochs."""
    cols = ["epoch", "train/box_loss", "train/cls_loss", "train/dfl_loss", "metrics/precision(B)",
            "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)", "val/box_loss", "val/cls_loss",
            "val/dfl_loss", "lr/pg0"]
    lines = [",".join(f"{c:>22}" for c in cols)]
    for e in range(1, rows + 1):
        vals = [e, 2 / e, 3 / e, 1.5 / e, 0.2 * e, 0.25 * e, 0.15 * e, 0.1 * e, 2.2 / e, 3.1 / e, 1.6 / e, 0.01]
        lines.append(",".join(f"{v:>22.5g}" for v in vals))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("rows", [1, 3])
def test_plot_results(tmp_path, rows):
    out = plot_results(write_csv(tmp_path / "results.csv", rows))
    assert out == tmp_path / "results.png"
    assert read(out).shape == (1300, 3200, 3)


def test_plot_results_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        plot_results(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("epoch, train/box_loss\n")
    with pytest.raises(UserError, match="no data rows"):
        plot_results(tmp_path / "empty.csv")


def test_plot_images_draws_label_boxes_where_expected(tmp_path):
    imgs = torch.zeros((2, 3, 256, 256), dtype=torch.uint8)
    # one box per image, normalized xywh: image 0 -> pixels x 64..192, y 64..192
    bboxes = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.25, 0.25, 0.2, 0.2]])
    mosaic = plot_images(imgs, torch.tensor([0.0, 1.0]), torch.tensor([[1.0], [2.0]]), bboxes,
                         paths=["a/img0.jpg", "b/img1.jpg"], fname=tmp_path / "train_batch0.jpg", names=NAMES)
    assert mosaic.shape == (256, 512, 3)  # 2 tiles side by side
    assert read(tmp_path / "train_batch0.jpg").shape == (256, 512, 3)
    car = colors(1, bgr=True)
    assert near(mosaic[128, 64], car) and near(mosaic[128, 192], car) and near(mosaic[192, 128], car)
    assert mosaic[128, 128].max() == 0  # box interior untouched
    assert near(mosaic[90, 256 + 60], colors(2, bgr=True))  # image 1 box bottom edge (x, y 38..90)
    assert mosaic[128, 256 + 128].max() == 0


def test_plot_images_predictions_and_downscale(tmp_path):
    imgs = torch.full((16, 3, 640, 640), 0.5)  # float 0-1 input (mid grey)
    boxes = torch.tensor([[100.0, 100.0, 300.0, 300.0], [400.0, 400.0, 500.0, 500.0]])  # pixel xyxy
    mosaic = plot_images(imgs, torch.tensor([0, 0]), torch.tensor([0, 1]), boxes, confs=torch.tensor([0.9, 0.1]),
                         fname=tmp_path / "val_batch0_pred.jpg", names=NAMES)
    assert mosaic.shape == (1920, 1920, 3)  # 4x4 tiles of 640 scaled by 0.75
    s = 0.75
    edge = mosaic[int(200 * s), int(100 * s) - 1 : int(100 * s) + 2]
    assert any(near(p, colors(0, bgr=True), 30) for p in edge)  # kept prediction drawn
    inner = mosaic[int(450 * s) - 3 : int(450 * s) + 3, int(400 * s) - 2 : int(400 * s) + 3].reshape(-1, 3)
    assert not any(near(p, colors(1, bgr=True), 10) for p in inner)  # conf 0.1 < 0.25: not drawn
    assert read(tmp_path / "val_batch0_pred.jpg").shape == (1920, 1920, 3)


def test_plot_labels(tmp_path):
    rng = np.random.default_rng(0)
    boxes = np.concatenate((rng.uniform(0.1, 0.9, (300, 2)), rng.uniform(0.02, 0.4, (300, 2))), 1)
    path = plot_labels(boxes, rng.integers(0, 3, 300), NAMES, tmp_path)
    assert path == tmp_path / "labels.jpg" and read(path).shape == (1350, 1650, 3)
    read(plot_labels(np.zeros((0, 4)), np.zeros(0), NAMES, tmp_path / "empty"))


def test_draw_detections():
    img = np.full((240, 320, 3), 128, np.uint8)
    out = draw_detections(img, np.array([[40, 60, 200, 220], [250, -30, 400, 100]]), [0, 2], [0.9, 0.5], NAMES,
                          line_width=2)
    assert out is not img and img.max() == 128 == img.min()  # input untouched
    person = colors(0, bgr=True)
    assert near(out[140, 40], person) and near(out[220, 120], person)  # left and bottom edges
    assert near(out[50, 42], person)  # filled label background above the box
    assert out[140, 120].tolist() == [128, 128, 128]  # interior untouched
    assert near(out[60, 319], colors(2, bgr=True))  # clipped box drawn at the right image edge
    assert out.shape == img.shape


def test_gaussian_smooth_keeps_trends_and_levels():
    from ultralytics.utils.plot_curves import gaussian_smooth

    y = 2.0 / np.arange(1, 41)  # a falling loss
    s = gaussian_smooth(y, 3.0)
    assert s.shape == y.shape and np.all(np.diff(s) < 0)  # no upturn at the ends
    assert np.allclose(gaussian_smooth(np.full(7, 0.3), 3.0), 0.3)
