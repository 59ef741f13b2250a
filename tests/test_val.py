"""Tests of DetectionValidator, COCO JSON export and val.py, with an 'oracle' model of known output.

The tiny dataset: uniform grey images (each its own grey level) with YOLO labels, one without a label file.
The oracle is a real yolov10n DetectionModel (nc=2) whose eval forward finds the image inside the letterbox
(the non-pad pixels), reads the grey level to know which image it is, and returns boxes from a table in
that image's normalised coordinates: exact ground truth, or shifted / extra boxes of known effect on AP.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from ultralytics.cfg import get_cfg
from ultralytics.models.yolo.detect import DetectionValidator
from ultralytics.nn.tasks import DetectionModel
from ultralytics.nn.weights import save_model
from ultralytics.utils import REPO_ROOT, UserError

PAD = 114  # letterbox grey
# name: (grey level, (h, w), labels [(cls, cx, cy, w, h)] or None = no label file)
IMAGES = {
    "im0": (40, (96, 128), [(0, 0.30, 0.40, 0.25, 0.30), (1, 0.70, 0.60, 0.20, 0.40)]),
    "im1": (80, (128, 96), [(0, 0.50, 0.50, 0.40, 0.30)]),
    "im2": (160, (100, 100), [(1, 0.40, 0.30, 0.30, 0.20), (0, 0.60, 0.70, 0.30, 0.30)]),
    "bg": (200, (80, 120), None),
}
IOU_SHIFTED = 0.725  # between the 0.70 and 0.75 thresholds
ARGS = dict(imgsz=64, batch=4, workers=0, plots=False, verbose=True)


def perfect_table(conf=(0.9, 0.8, 0.7, 0.6, 0.5)) -> dict:
    """Every label returned exactly: {grey: [(cls, cx, cy, w, h, conf, dx)]}, confidences in label order."""
    it = iter(conf)
    return {g: [(*lb, next(it), 0.0) for lb in labels] for g, _, labels in IMAGES.values() if labels}


class Oracle(DetectionModel):
    """yolov10n with nc=2 whose eval forward returns `table` boxes (or runs the real network if table is None)."""

    def __init__(self):
        super().__init__("yolov10n.yaml", nc=2, verbose=False)
        self.names = {0: "a", 1: "b"}
        self.table: dict | None = {}

    def forward(self, x, raw=False):
        if self.table is None or raw or self.training:
            return super().forward(x, raw)
        out = torch.zeros(x.shape[0], 8, 6)
        for b in range(x.shape[0]):
            content = ((x[b].float() * 255 - PAD).abs() > 0.5).any(0)  # (H, W) pixels of the image itself
            ys, xs = content.any(1).nonzero()[:, 0], content.any(0).nonzero()[:, 0]
            y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
            grey = int(round(float(x[b, 0, (y0 + y1) // 2, (x0 + x1) // 2]) * 255))
            w, h = x1 - x0, y1 - y0
            for k, (c, cx, cy, bw, bh, s, dx) in enumerate(self.table.get(grey, [])):
                out[b, k] = torch.tensor([x0 + (cx + dx - bw / 2) * w, y0 + (cy - bh / 2) * h,
                                          x0 + (cx + dx + bw / 2) * w, y0 + (cy + bh / 2) * h, s, c])
            out[b] = out[b][out[b, :, 4].argsort(descending=True)]
        return out


@pytest.fixture(scope="module")
def oracle():
    return Oracle()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """The tiny dataset's YAML (train and val are the same 4 images)."""
    root = tmp_path_factory.mktemp("tiny")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    (root / "empty").mkdir()
    for name, (grey, (h, w), labels) in IMAGES.items():
        cv2.imwrite(str(root / "images" / f"{name}.png"), np.full((h, w, 3), grey, np.uint8))
        if labels is not None:
            (root / "labels" / f"{name}.txt").write_text("".join(" ".join(map(str, lb)) + "\n" for lb in labels))
    yaml = root / "data.yaml"
    yaml.write_text(f"path: {root}\ntrain: images\nval: images\nnames:\n  0: a\n  1: b\n")
    return yaml


def run_val(model, data, tmp_path, capsys=None, **kw):
    """Validate standalone; returns (metrics, validator, stdout)."""
    v = DetectionValidator(overrides={**ARGS, "data": str(data), "project": str(tmp_path), **kw})
    m = v(model=model)
    if capsys is None:
        return m, v, ""
    cap = capsys.readouterr()
    return m, v, cap.out + cap.err  # the header is the progress bar's text (stderr), the rows are logged (stdout)


def test_perfect_predictions_give_map_one_and_table(oracle, data, tmp_path, capsys):
    oracle.table = perfect_table()
    m, v, out = run_val(oracle, data, tmp_path, capsys)
    assert m.box.map == pytest.approx(1.0) and m.box.map50 == pytest.approx(1.0)
    assert m.box.mp == pytest.approx(1.0) and m.box.mr == pytest.approx(1.0)
    assert m.box.maps.tolist() == pytest.approx([1.0, 1.0])
    assert m.results_dict["metrics/mAP50-95(B)"] == pytest.approx(1.0) and m.results_dict["fitness"] == pytest.approx(1)
    assert set(m.speed) == {"preprocess", "inference", "loss", "postprocess"} and m.coco is None
    lines = out.splitlines()
    assert re.search(r"Class\s+Images\s+Instances\s+Box\(P\s+R\s+mAP50\s+mAP50-95\)", out)
    assert any(re.fullmatch(r"\s+all\s+4\s+5(\s+1){4}", ln) for ln in lines)  # 4 images (1 background), 5 boxes
    assert any(re.fullmatch(r"\s+a\s+3\s+3(\s+1){4}", ln) for ln in lines)  # class a: 3 images, 3 boxes
    assert any(re.fullmatch(r"\s+b\s+2\s+2(\s+1){4}", ln) for ln in lines)
    assert re.search(r"Speed: [\d.]+ms preprocess, [\d.]+ms inference, [\d.]+ms loss, [\d.]+ms postprocess per image", out)
    assert v.save_dir == tmp_path / "exp" and f"Results saved to {v.save_dir}" in out
    assert np.diag(v.confusion.matrix).tolist() == [3, 2, 0] and v.confusion.matrix.sum() == 5


PLOTS = ("PR_curve.png", "F1_curve.png", "P_curve.png", "R_curve.png", "confusion_matrix.png",
         "confusion_matrix_normalized.png", "val_batch0_labels.jpg", "val_batch0_pred.jpg")


def test_plots_written(oracle, data, tmp_path):
    oracle.table = perfect_table(conf=(1.0, 0.8, 0.7, 0.6, 0.5))
    _, v, _ = run_val(oracle, data, tmp_path, plots=True)
    for f in PLOTS:
        assert (v.save_dir / f).stat().st_size > 1000, f


def test_plots_written_top_score_below_one(oracle, data, tmp_path):
    oracle.table = perfect_table()  # top score 0.9
    _, v, _ = run_val(oracle, data, tmp_path, plots=True)
    for f in PLOTS:
        assert (v.save_dir / f).stat().st_size > 1000, f


def test_shifted_box_gives_known_map(oracle, data, tmp_path):
    """One class-a box (the lowest-scored of class a) at IoU 0.725: it misses the thresholds 0.75..0.95.

    Class a at those 5 thresholds: 2 of 3 found at precision 1, then a false positive: AP = 67/101
    (recall points 0, 0.01, ..., 0.66). mAP50-95 = (1 + (5 + 5 * 67/101) / 10) / 2.
    """
    table = perfect_table()
    c, cx, cy, w, h, s, _ = table[80][0]  # im1's only box, class a (confidences of class a: 0.9, 0.7, 0.5)
    table[80][0] = (c, cx, cy, w, h, 0.45, w * (1 - IOU_SHIFTED) / (1 + IOU_SHIFTED))  # now the lowest; IoU (w-d)/(w+d)
    oracle.table = table
    m, _, _ = run_val(oracle, data, tmp_path, save_json=True)
    expected = (1 + (5 + 5 * 67 / 101) / 10) / 2
    assert m.box.map50 == pytest.approx(1.0)
    assert m.box.map == pytest.approx(expected, abs=1e-9)
    assert m.box.all_ap[0].tolist() == pytest.approx([1.0] * 5 + [67 / 101] * 5)
    pytest.importorskip("pycocotools")
    assert m.coco["map"] == pytest.approx(expected, abs=1e-3) and m.coco["map50"] == pytest.approx(1.0, abs=1e-3)


def test_background_image_prediction_is_a_false_positive(oracle, data, tmp_path):
    """A class-b box on the unlabelled image, scored highest: class b ranks FP, TP, TP -> AP = 2/3 everywhere."""
    table = perfect_table()
    table[200] = [(1, 0.5, 0.5, 0.4, 0.4, 0.99, 0.0)]
    oracle.table = table
    m, v, _ = run_val(oracle, data, tmp_path)
    assert m.box.map50 == pytest.approx((1 + 2 / 3) / 2) and m.box.map == pytest.approx((1 + 2 / 3) / 2)
    assert v.seen == 4 and v.nt_per_class.tolist() == [3, 2]
    assert v.confusion.matrix[1, 2] == 1  # predicted b, true background


def test_save_json_coco_files(oracle, data, tmp_path):
    oracle.table = perfect_table()
    m, v, _ = run_val(oracle, data, tmp_path, save_json=True)
    preds = json.loads((v.save_dir / "predictions.json").read_text())
    gt = json.loads((v.save_dir / "ground_truth.json").read_text())
    assert len(preds) == 5 and {p["image_id"] for p in preds} == {"im0", "im1", "im2"}
    p0 = next(p for p in preds if p["image_id"] == "im0" and p["category_id"] == 0)
    # im0 is 128 x 96: box centre (0.30, 0.40), size (0.25, 0.30) -> x, y, w, h = 22.4, 24.0, 32.0, 28.8 px
    assert p0["bbox"] == pytest.approx([22.4, 24.0, 32.0, 28.8], abs=0.02) and p0["score"] == pytest.approx(0.9)
    assert sorted(im["id"] for im in gt["images"]) == ["bg", "im0", "im1", "im2"]
    assert {(im["id"], im["width"], im["height"]) for im in gt["images"]} >= {("im1", 96, 128), ("bg", 120, 80)}
    assert len(gt["annotations"]) == 5 and min(a["id"] for a in gt["annotations"]) == 1
    g0 = next(a for a in gt["annotations"] if a["image_id"] == "im0" and a["category_id"] == 0)
    assert g0["bbox"] == pytest.approx([22.4, 24.0, 32.0, 28.8], abs=1e-3)
    assert [c["name"] for c in gt["categories"]] == ["a", "b"]
    pytest.importorskip("pycocotools")
    assert m.coco["map"] == pytest.approx(1.0, abs=1e-3) and m.coco["backend"] in ("pycocotools", "faster-coco-eval")


def test_class_count_mismatch_names_both_numbers(oracle, data, tmp_path):
    oracle.table = {}
    oracle.model[-1].nc = 3
    try:
        with pytest.raises(UserError, match=r"predicts 3 classes but data YAML .*data\.yaml has 2"):
            run_val(oracle, data, tmp_path)
    finally:
        oracle.model[-1].nc = 2


def test_empty_or_missing_split(oracle, data, tmp_path):
    empty = data.with_name("empty.yaml")
    empty.write_text(data.read_text().replace("val: images", "val: empty"))
    with pytest.raises(UserError, match=r"the 'val' split of data YAML .*empty\.yaml \(.*empty\) has no usable images"):
        run_val(oracle, empty, tmp_path)
    with pytest.raises(UserError, match=r"has no 'test' split"):
        run_val(oracle, data, tmp_path, split="test")


def test_training_mode_accumulates_loss(oracle, data, tmp_path):
    """validator(trainer=...) as the trainer calls it: real network, (box, cls, dfl) losses summed, no files."""
    from ultralytics.data import build_dataloader, build_yolo_dataset, check_det_dataset

    args = get_cfg(overrides={**ARGS, "data": str(data)})
    d = check_det_dataset(str(data))
    loader = build_dataloader(build_yolo_dataset(args, d["val"], 2, d, mode="val", rect=True), 2, 0, shuffle=False)
    oracle.table = None
    from ultralytics.utils.loss import v10DetectLoss

    trainer = SimpleNamespace(device=torch.device("cpu"), data=d, ema=None, model=oracle, amp=False,
                              criterion=v10DetectLoss(oracle.model[-1], args))
    v = DetectionValidator(loader, save_dir=tmp_path / "train", args=args)
    try:
        m = v(trainer=trainer)
        first = v.loss.clone()
        v(trainer=trainer)  # called every epoch: the loss restarts from zero
    finally:
        oracle.table = {}
    assert v.loss.shape == (3,) and torch.isfinite(v.loss).all() and (v.loss > 0).all()
    assert torch.allclose(v.loss, first)
    assert 0 <= m.box.map <= 1 and v.seen == 4
    assert not (tmp_path / "train").exists()  # no plots or files while training


def _script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / name), *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)


def test_val_and_predict_scripts(oracle, data, tmp_path):
    """val.py and predict.py on an untrained checkpoint with nc=2, at imgsz=64."""
    weights = save_model(oracle, tmp_path / "fresh.pt")
    r = _script("val.py", f"model={weights}", f"data={data}", "imgsz=64", "batch=4", "workers=0", "plots=False",
                f"project={tmp_path / 'val'}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.search(r"\n\s+all\s+4\s+5\s", r.stdout) and "Speed:" in r.stdout
    assert (tmp_path / "val" / "exp").is_dir() and re.search(r"mAP50-95 [\d.]+, mAP50 [\d.]+", r.stdout)
    r = _script("predict.py", f"weights={weights}", f"source={data.parent / 'images'}", "imgsz=64",
                f"project={tmp_path / 'pred'}", "conf=0.0", "max_det=3")
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "pred" / "predict").iterdir()) == [f"{n}.png" for n in sorted(IMAGES)]
    assert "4 images, 12 detections" in r.stdout
    r = _script("val.py", f"model={tmp_path / 'missing.pt'}")
    assert r.returncode != 0 and "not found: train a model first (python train.py)" in r.stderr


def test_facade_val_uses_the_checkpoint_training_settings(oracle, data, tmp_path):
    """YOLO(best.pt).val() with no data= validates on the dataset (and imgsz) the checkpoint was trained with."""
    from ultralytics import YOLO

    weights = save_model(oracle, tmp_path / "trained.pt", train_args={"data": str(data), "imgsz": 64})
    y = YOLO(weights)
    m = y.val(workers=0, plots=False, project=str(tmp_path), verbose=False)
    assert y.metrics is m and m.box.nc == 2 and (tmp_path / "exp").is_dir()
    assert m.results_dict["metrics/mAP50-95(B)"] == m.box.map
