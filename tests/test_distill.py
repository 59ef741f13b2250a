"""Knowledge distillation (utils/distill.py and the trainer's hooks): the loss, the frozen teacher, resume."""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import pytest
import torch

from ultralytics import YOLO
from ultralytics.engine import results_log
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import UserError
from ultralytics.utils.checkpoint import read_checkpoint
from ultralytics.utils.distill import DistillLoss, check_teacher
from ultralytics.utils.loss import v10DetectLoss

HYP = {"box": 7.5, "cls": 0.5, "dfl": 1.5, "v10_loss": "classic"}
TINY = dict(imgsz=64, batch=4, workers=0, epochs=2, close_mosaic=0, device="cpu", optimizer="SGD", plots=False,
            seed=0, deterministic=True, warmup_epochs=0, val=True)


def batch_of(img: torch.Tensor) -> dict:
    return {"img": img, "batch_idx": torch.tensor([0.0, 1.0]), "cls": torch.tensor([[1.0], [2.0]]),
            "bboxes": torch.tensor([[0.5, 0.5, 0.4, 0.4], [0.3, 0.3, 0.2, 0.2]])}


def models(same: bool):
    torch.manual_seed(0)
    student = DetectionModel("yolov10n.yaml", nc=6, verbose=False)
    teacher = copy.deepcopy(student)
    if not same:
        with torch.no_grad():
            for p in teacher.parameters():
                p.add_(0.05 * torch.randn_like(p))
    return student, teacher


@pytest.mark.parametrize("same", [True, False])
def test_loss_is_zero_for_the_same_model_with_an_identity_projector(same):
    student, teacher = models(same)
    crit = DistillLoss(v10DetectLoss(student.model[-1], HYP), student, teacher, weight=6.0)
    assert all(torch.equal(c.weight.view(c.weight.shape[:2]), torch.eye(c.weight.shape[0])) for c in crit.proj)
    student.eval()  # the teacher is in eval mode: the same BN statistics on both sides
    img = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    _, raw = student(img, raw=True)
    loss, items = crit(raw, batch_of(img))
    assert items.shape == (4,)  # box, cls, dfl and the weighted distillation term ('distill')
    assert float(items[3]) == crit.last
    if same:
        assert crit.last == 0.0
    else:
        assert crit.last > 1e-4  # a different teacher: the term is there and counts


def test_teacher_gets_no_gradient_and_the_projector_learns():
    student, teacher = models(same=False)
    crit = DistillLoss(v10DetectLoss(student.model[-1], HYP), student, teacher, weight=6.0)
    img = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    student.train()
    loss, _ = crit(student(img), batch_of(img))
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert not teacher.training
    assert all(c.weight.grad is not None and c.weight.grad.abs().sum() > 0 for c in crit.proj)
    assert student.model[16].cv2.conv.weight.grad.abs().sum() > 0  # the P3 map's last conv learns from it
    assert "teacher" not in "".join(crit.state_dict())  # the criterion's state is the projector alone


def test_teacher_with_other_classes_or_size_is_refused():
    with pytest.raises(UserError, match=r"class names differ.*1: 'b' vs 'x'"):
        check_teacher({0: "a", 1: "b"}, {0: "a", 1: "x"}, 64, 64, "t.pt")
    with pytest.raises(UserError, match="trained at imgsz=128, this run uses imgsz=64"):
        check_teacher({0: "a"}, {0: "a"}, 64, 128, "t.pt")


def rows(run: Path) -> list[dict]:
    with open(run / "results.csv") as f:
        return [{k: v for k, v in r.items() if k != "time"} for r in csv.DictReader(f)]


def test_distilled_training_keeps_the_student_only_and_resumes_exactly(tiny_data, tmp_path, monkeypatch):
    YOLO("yolov10n.yaml").train(data=tiny_data, project=str(tmp_path), name="teacher", **{**TINY, "epochs": 1})
    teacher = str(tmp_path / "teacher" / "weights" / "last.pt")
    with pytest.raises(UserError, match="distill_model='nope.pt': no such file"):
        YOLO("yolov10n.yaml").train(data=tiny_data, project=str(tmp_path), name="bad", distill_model="nope.pt",
                                    **TINY)
    YOLO("yolov10n.yaml").train(data=tiny_data, project=str(tmp_path), name="full", distill_model=teacher, **TINY)
    ckpt = read_checkpoint(tmp_path / "full" / "weights" / "last.pt")
    assert set(ckpt["model"]) == set(DetectionModel("yolov10n.yaml", nc=6, verbose=False).state_dict())
    assert {k: v.shape for k, v in ckpt["distill_projector"].items()} == \
        {f"{i}.{w}": s for i, c in enumerate((64, 128, 256)) for w, s in
         (("weight", (c, c, 1, 1)), ("bias", (c,)))}
    assert not torch.equal(ckpt["distill_projector"]["0.weight"].view(64, 64), torch.eye(64))  # it learned

    original = results_log.ResultsLog.append

    def crash_after_first(self, row):
        original(self, row)
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(results_log.ResultsLog, "append", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        YOLO("yolov10n.yaml").train(data=tiny_data, project=str(tmp_path), name="cut", distill_model=teacher,
                                    **TINY)
    monkeypatch.setattr(results_log.ResultsLog, "append", original)
    YOLO(str(tmp_path / "cut" / "weights" / "last.pt")).train(resume=True)
    full = rows(tmp_path / "full")
    assert rows(tmp_path / "cut") == full
    assert float(full[0]["train/distill"]) > 0 and float(full[0]["val/distill"]) == 0  # its own column


def test_distillation_under_ddp_keeps_ranks_identical(tiny_data, tmp_path):
    """2 gloo processes: the student's weights agree after every step, and the projector (averaged by hand,
    not DDP's) agrees too, so rank 0's checkpoint is every rank's."""
    import json

    from test_ddp import SETTINGS, TINY_MODEL, run_child

    # the plain tiny model: test_ddp's fixture may have pointed SETTINGS['model'] at a YAML of its own module
    YOLO(str(TINY_MODEL)).train(data=tiny_data, project=str(tmp_path), name="teacher",
                                  **{**TINY, "epochs": 1})
    spec = {"settings": {**SETTINGS, "model": str(TINY_MODEL), "data": tiny_data, "project": str(tmp_path / "runs"),
                         "warmup_epochs": 0,
                         "distill_model": str(tmp_path / "teacher" / "weights" / "last.pt")},
            "out": str(tmp_path / "out"), "mode": "train"}
    r, _ = run_child(tmp_path, spec)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    h0, h1 = (json.loads((tmp_path / "out" / f"rank{k}.json").read_text())["hashes"] for k in (0, 1))
    assert len(h0) >= 2 and all(len(h) == 80 for h in h0)  # student and projector hashed at every step
    assert h0 == h1
    assert "Distilling from" in r.stdout + r.stderr
