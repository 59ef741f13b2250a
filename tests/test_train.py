"""Training end to end on a tiny dataset: the run directory, results.csv, exact resume, NaN handling."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from ultralytics import YOLO
from ultralytics.engine.results_log import COLUMNS
from ultralytics.utils import UserError
from ultralytics.utils.checkpoint import read_checkpoint

TINY = dict(imgsz=64, batch=4, workers=0, epochs=3, close_mosaic=1, device="cpu", optimizer="SGD", plots=False,
            seed=0, deterministic=True, warmup_epochs=1, v10_loss="scheduled")  # o2m weight 0.8, 0.45, 0.1


def rows(run: Path) -> list[dict]:
    with open(run / "results.csv") as f:
        return list(csv.DictReader(f))


def without_time(rs: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time"} for r in rs]


@pytest.fixture(scope="module")
def full_run(tiny_data, tmp_path_factory):
    project = tmp_path_factory.mktemp("runs")
    model = YOLO("yolov10n.yaml")
    model.train(data=tiny_data, project=str(project), name="full", **TINY)
    return project / "full", model


def test_run_directory_contents(full_run):
    run, model = full_run
    assert (run / "args.yaml").is_file()
    assert (run / "weights" / "last.pt").is_file() and (run / "weights" / "best.pt").is_file()
    best = json.loads((run / "best_metrics.json").read_text())  # best.pt's final validation, with size APs
    assert best["metrics/mAP50-95(B)"] == pytest.approx(model.metrics.box.map, abs=1e-6)
    assert best["metrics/mAP50-95(S)"] == pytest.approx(model.metrics.box.map_small, abs=1e-6)
    assert {"metrics/mAP50-95(M)", "metrics/mAP50-95(L)", "head"} <= set(best)
    rs = rows(run)
    assert list(rs[0]) == COLUMNS
    assert [int(r["epoch"]) for r in rs] == [1, 2, 3]
    for r in rs:
        for k in COLUMNS:
            assert float(r[k]) == float(r[k])  # finite numbers, no NaN
    ckpt = read_checkpoint(run / "weights" / "last.pt")
    assert ckpt["epoch"] == 2 and len(ckpt["train_results"]) == 3
    assert ckpt["train_args"]["imgsz"] == 64
    assert model.names[0] == "circle" and model.model.nc == 6


def test_lr_groups_and_warmup_in_results(full_run):
    run, _ = full_run
    rs = rows(run)
    lr = [[float(r[f"lr/pg{j}"]) for j in range(3)] for r in rs]
    # 12 iterations, all inside the 100-iteration minimum warmup. The last one (ni=11) interpolates 11/100 of
    # the way from 0 (weights) or warmup_bias_lr=0.1 (biases) to the epoch-3 linear lr 0.01*((1-2/3)*0.99+0.01)
    target = 0.01 * ((1 - 2 / 3) * (1 - 0.01) + 0.01)
    assert lr[-1][0] == pytest.approx(0.11 * target, rel=1e-4)
    assert lr[-1][1] == pytest.approx(0.11 * target, rel=1e-4)
    assert lr[-1][2] == pytest.approx(0.1 + 0.11 * (target - 0.1), rel=1e-4)


def test_resume_gives_identical_rows(full_run, tiny_data, tmp_path, monkeypatch):
    """Stop after epoch 1 (as a crash would), resume from last.pt: the rows equal the uninterrupted run's."""
    from ultralytics.engine import results_log

    original = results_log.ResultsLog.append

    def crash_after_first(self, row):
        original(self, row)
        if row["epoch"] == 1:
            raise KeyboardInterrupt  # the process dies right after epoch 1 is safely written

    monkeypatch.setattr(results_log.ResultsLog, "append", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        YOLO("yolov10n.yaml").train(data=tiny_data, project=str(tmp_path), name="cut", **TINY)
    monkeypatch.setattr(results_log.ResultsLog, "append", original)
    run = tmp_path / "cut"
    assert [r["epoch"] for r in rows(run)] == ["1"]
    from ultralytics.utils.loss import v10DetectLoss

    weights, set_epoch = [], v10DetectLoss.set_epoch

    def spy(self, epoch):
        set_epoch(self, epoch)
        weights.append((epoch, round(self.o2m, 6)))

    monkeypatch.setattr(v10DetectLoss, "set_epoch", spy)
    YOLO(str(run / "weights" / "last.pt")).train(resume=True)
    assert weights == [(1, 0.45), (2, 0.1)]  # the scheduled loss's weights of epochs 2 and 3, recomputed on resume
    assert without_time(rows(run)) == without_time(rows(full_run[0]))
    a = read_checkpoint(run / "weights" / "last.pt")["ema"]
    b = read_checkpoint(full_run[0] / "weights" / "last.pt")["ema"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_finished_run_is_refused(full_run):
    with pytest.raises(UserError, match="finished all 3 epochs"):
        YOLO(str(full_run[0] / "weights" / "last.pt")).train(resume=True)


def test_nan_loss_is_skipped_then_stops(tiny_data, tmp_path, monkeypatch):
    from ultralytics.engine import trainer as trainer_mod
    from ultralytics.utils.loss import v10DetectLoss

    real_loss = v10DetectLoss.__call__  # the trainer's criterion; validation calls it under no_grad
    calls = {"n": 0}

    def flaky_loss(self, preds, batch):
        calls["n"] += 1
        loss, items = real_loss(self, preds, batch)
        if torch.is_grad_enabled() and calls["n"] == 2:  # one bad batch in epoch 1
            return loss * float("nan"), items
        return loss, items

    monkeypatch.setattr(v10DetectLoss, "__call__", flaky_loss)
    YOLO("yolov10n.yaml").train(data=tiny_data, project=str(tmp_path), name="nan1", **{**TINY, "epochs": 1})
    assert len(rows(tmp_path / "nan1")) == 1

    state = {"nan_now": False}

    def always_nan(self, preds, batch):
        loss, items = real_loss(self, preds, batch)
        return (loss * float("nan"), items) if torch.is_grad_enabled() and state["nan_now"] else (loss, items)

    monkeypatch.setattr(v10DetectLoss, "__call__", always_nan)
    monkeypatch.setattr(trainer_mod, "MAX_BAD_STEPS", 3)
    original = trainer_mod.BaseTrainer.save_model

    def save_then_break(self, epoch, improved, row):
        original(self, epoch, improved, row)
        state["nan_now"] = True  # every batch after epoch 1 is NaN

    monkeypatch.setattr(trainer_mod.BaseTrainer, "save_model", save_then_break)
    with pytest.raises(trainer_mod.NonFiniteLossError, match="NaN/inf for 3 batches"):
        YOLO("yolov10n.yaml").train(data=tiny_data, project=str(tmp_path), name="nan2", **TINY)
    ckpt = read_checkpoint(tmp_path / "nan2" / "weights" / "last.pt")
    assert ckpt["epoch"] == 0  # the last good epoch is kept
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_pretrained_transfer_into_lska(tmp_path, tiny_data, capsys):
    base = YOLO("yolov10n.yaml")
    path = base.save(tmp_path / "yolov10n.pt")
    model = YOLO("yolov10n-LSKA.yaml").load(str(path))
    out = capsys.readouterr().out
    # rows are aligned by module name: every tensor of yolov10n lands, the ones after row 16 one to three rows on
    assert "Transferred 595/625 items from pretrained weights (331 moved to shifted rows)" in out
    assert torch.equal(model.model.model[4].cv1.conv.weight, base.model.model[4].cv1.conv.weight)
    assert torch.equal(model.model.model[20].cv1.conv.weight, base.model.model[19].cv1.conv.weight)
    assert torch.equal(model.model.model[26].one2one_cv2[2][0].conv.weight, base.model.model[23].one2one_cv2[2][0].conv.weight)


def test_run_dirs_increment(tiny_data, tmp_path):
    for _ in range(2):
        YOLO("yolov10n.yaml").train(data=tiny_data, project=str(tmp_path), name="exp", **{**TINY, "epochs": 1,
                                                                                           "val": False})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp", "exp2"]


def test_bad_settings_are_clear(tiny_data, tmp_path):
    with pytest.raises(UserError, match="epoch"):
        YOLO("yolov10n.yaml").train(data=tiny_data, epoch=3, project=str(tmp_path))
    with pytest.raises(UserError, match="device='0'.*CUDA is not available"):
        YOLO("yolov10n.yaml").train(data=tiny_data, device="0", project=str(tmp_path))
    with pytest.raises(UserError, match="nope.yaml"):
        YOLO("yolov10n.yaml").train(data=str(tmp_path / "nope.yaml"), project=str(tmp_path))


def test_pretrained_setting(tiny_data, tmp_path):
    """pretrained=path.pt copies its matching tensors; True keeps the weights of a model loaded from a .pt;
    False starts from the seeded initialisation even then; a missing path is a clear error."""
    from ultralytics.data import check_det_dataset
    from ultralytics.models.yolo.detect import DetectionTrainer

    source = YOLO("yolov10n.yaml")
    torch.nn.init.constant_(source.model.model[0].conv.weight, 0.25)
    path = source.save(tmp_path / "src.pt")
    data = check_det_dataset(tiny_data)

    def first_conv(pretrained, given=None):
        tr = DetectionTrainer(overrides={"model": "yolov10n.yaml", "data": tiny_data, "pretrained": pretrained,
                                         "project": str(tmp_path / "runs")}, model=given)
        tr.data = data
        return tr.get_model().model[0].conv.weight

    loaded = YOLO(str(path)).model
    assert torch.all(first_conv(str(path)) == 0.25)
    assert torch.all(first_conv(True, loaded) == 0.25)
    scratch = first_conv(False, loaded)
    assert not torch.all(scratch == 0.25) and torch.equal(scratch, first_conv(True))
    with pytest.raises(UserError, match=r"pretrained='.*nope\.pt': no such file"):
        first_conv(str(tmp_path / "nope.pt"))


def test_compile_setting_wraps_the_model_not_the_loss(tiny_data, tmp_path, monkeypatch):
    """compile=True: the step's forward runs through torch.compile(model); the criterion stays a plain object."""
    compiled = []

    class Compiled(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.inner, self.calls = m, 0

        def forward(self, x):
            self.calls += 1
            return self.inner(x)

    def fake_compile(m, *a, **k):
        compiled.append(Compiled(m))
        return compiled[-1]

    monkeypatch.setattr(torch, "compile", fake_compile)
    model = YOLO("yolov10n.yaml")
    model.train(data=tiny_data, project=str(tmp_path), name="c", compile=True, **{**TINY, "epochs": 1, "val": False})
    tr = model.trainer
    assert len(compiled) == 1 and tr.train_model is compiled[0] and compiled[0].inner is tr.model
    assert compiled[0].calls == len(tr.train_loader)  # every training step went through it
    assert type(tr.criterion).__name__ == "v10DetectLoss"
