"""Checkpoints: plain-data save/load, upstream-style pickled checkpoints, and refusals."""

from __future__ import annotations

import os
import zipfile

import pytest
import torch

import ultralytics.nn.tasks as tasks
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import UserError
from ultralytics.utils.checkpoint import read_checkpoint


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DetectionModel("yolov10n-LSKA.yaml", nc=5, verbose=False).eval()


def test_save_and_load_bit_identical(model, tmp_path):
    x = torch.rand(2, 3, 256, 256)
    f = YOLO.__new__(YOLO)
    f.model = model
    path = f.save(tmp_path / "m.pt")
    loaded = YOLO(str(path))
    assert loaded.model.names == model.names
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    # our checkpoint is plain data: torch's own weights-only loader reads it too
    plain = torch.load(path, weights_only=True)
    assert set(plain) >= {"model", "yaml", "names", "format"}


class YOLOv10DetectionModel(DetectionModel):
    """Stand-in for the YOLOv10 authors' model class, pickled under ultralytics.nn.tasks."""


def test_upstream_style_pickled_checkpoint_loads(model, tmp_path, monkeypatch):
    """A pickled model object in half precision with its yaml dict, as Ultralytics writes checkpoints."""
    from ultralytics.cfg import IterableSimpleNamespace

    YOLOv10DetectionModel.__module__ = "ultralytics.nn.tasks"
    monkeypatch.setattr(tasks, "YOLOv10DetectionModel", YOLOv10DetectionModel, raising=False)
    up = YOLOv10DetectionModel(model.yaml, verbose=False)
    up.load_state_dict(model.state_dict())
    up.names = {i: f"c{i}" for i in range(5)}
    ckpt = {"date": "2024-05-23", "version": "8.1.34", "epoch": -1, "best_fitness": None, "model": None,
            "ema": up.half(), "updates": 100, "optimizer": None,
            "train_args": IterableSimpleNamespace(epochs=3, imgsz=640)}
    path = tmp_path / "yolov10n-upstream.pt"
    torch.save(ckpt, path)
    monkeypatch.delattr(tasks, "YOLOv10DetectionModel")  # the loader must not need the class at all
    loaded = YOLO(str(path))
    assert loaded.names == {i: f"c{i}" for i in range(5)}
    x = torch.rand(1, 3, 256, 256)
    ref = model.half().float()  # the same weights rounded to half precision, as stored
    with torch.no_grad():
        assert torch.equal(loaded.model(x), ref(x))
    assert read_checkpoint(path)["train_args"] == {"epochs": 3, "imgsz": 640}


def test_transfer_into_modified_yaml(model, tmp_path):
    path = YOLO("yolov10n.yaml").save(tmp_path / "yolov10n.pt")
    lska = YOLO("yolov10n-LSKA.yaml")
    n = lska.model.load(str(path), verbose=False)
    # rows 0..16 keep their indices, later rows are found one to three rows on: all 595 tensors land
    assert n == 595
    src = read_checkpoint(path)["model"]
    assert torch.equal(lska.model.model[24].m[0].cv1[2].conv.conv.weight, src["model.22.m.0.cv1.2.conv.conv.weight"])


class _Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return self.fn, (self.arg,)


@pytest.mark.parametrize("fn", [os.system, eval, __import__("subprocess").getoutput])
def test_code_running_checkpoint_is_refused(tmp_path, fn):
    marker = tmp_path / "pwned"
    arg = f"touch {marker}" if fn is not eval else f"open({str(marker)!r}, 'w')"
    path = tmp_path / "evil.pt"
    torch.save({"model": _Evil(fn, arg)}, path)
    with pytest.raises(UserError, match=r"refused: global '.*' is not on the checkpoint allow-list"):
        YOLO(str(path))
    assert not marker.exists()


def test_not_a_checkpoint(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match=r"empty.pt' is empty"):
        YOLO(str(empty))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(UserError, match=r"junk.pt' is not a PyTorch checkpoint"):
        YOLO(str(junk))
    with pytest.raises(UserError, match=r"missing.pt' not found"):
        YOLO(str(tmp_path / "missing.pt"))


def test_truncated_checkpoint(model, tmp_path):
    f = YOLO.__new__(YOLO)
    f.model = model
    path = f.save(tmp_path / "m.pt")
    data = path.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"cut.pt' is (not a PyTorch checkpoint|corrupt or truncated)"):
        YOLO(str(cut))
    assert zipfile.is_zipfile(path)
