"""Callbacks (events, order, trainer.stop, errors) and the TensorBoard event files built on them."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
from ultralytics import YOLO
from ultralytics.utils import UserError
from ultralytics.utils.callbacks import EVENTS, CallbackError, Callbacks
from ultralytics.utils.checkpoint import read_checkpoint

MODEL = str(Path(__file__).parent / "faults" / "yolov10t-faults.yaml")  # a very small YOLOv10
TINY = dict(imgsz=64, batch=4, workers=0, close_mosaic=0, device="cpu", optimizer="SGD", plots=False, seed=0,
            warmup_epochs=0, tensorboard=False)  # 16 train images: 4 batches an epoch


def rows(run: Path) -> list[dict]:
    with open(run / "results.csv") as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def recorded_run(tiny_data, tmp_path_factory):
    """A 2-epoch run with plots and TensorBoard on and a callback on every event recording what it saw."""
    project = tmp_path_factory.mktemp("runs")
    model = YOLO(MODEL)
    seen, at_fit_end = [], []
    for event in EVENTS:
        model.add_callback(event, lambda owner, e=event: seen.append(e))
    model.add_callback("on_fit_epoch_end", lambda t: at_fit_end.append(
        (t.epoch, t.tloss.tolist(), t.metrics.box.map, t.save_dir, type(t.model).__name__)))
    model.train(data=tiny_data, project=str(project), name="rec", epochs=2,
                **{**TINY, "plots": True, "tensorboard": True})
    return project / "rec", seen, at_fit_end


def test_events_fire_in_order_and_count(recorded_run):
    _, seen, _ = recorded_run
    val = ["on_val_start", "on_val_batch_start", "on_val_batch_end", "on_val_end"]  # 8 val images: one batch of 8
    epoch = (["on_train_epoch_start"] + ["on_train_batch_start", "on_train_batch_end"] * 4 + ["on_train_epoch_end"]
             + val + ["on_model_save", "on_fit_epoch_end"])
    expected = (["on_pretrain_routine_start", "on_pretrain_routine_end", "on_train_start"] + epoch * 2
                + val + ["on_train_end"])  # the final validation of best.pt
    assert seen == expected


def test_trainer_attributes_match_the_logged_row(recorded_run):
    run, _, at_fit_end = recorded_run
    rs = rows(run)
    assert [a[0] for a in at_fit_end] == [0, 1]
    for (epoch, tloss, mAP, save_dir, model_type), r in zip(at_fit_end, rs):
        assert tloss == pytest.approx([r["train/box_loss"], r["train/cls_loss"], r["train/dfl_loss"]], rel=1e-5)
        assert mAP == pytest.approx(r["metrics/mAP50-95(B)"], rel=1e-5, abs=1e-7)
        assert save_dir == run and model_type == "DetectionModel"


def test_tensorboard_scalars_equal_results_csv(recorded_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, _, _ = recorded_run
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    rs = rows(run)
    columns = [k for k in rs[0] if k != "epoch"]
    tags = acc.Tags()
    assert set(columns) <= set(tags["scalars"])  # every results.csv column, learning rate per group included
    for k in columns:
        events = acc.Scalars(k)
        assert [e.step for e in events] == [1, 2]
        for e, r in zip(events, rs):
            assert e.value == pytest.approx(r[k], rel=1e-5, abs=1e-9), k
    # per-batch running losses every 10 batches: 8 batches -> none; images of the run
    assert not any(t.startswith("batch/") for t in tags["scalars"])
    assert tags["graph"] is False  # the model graph only when asked (tensorboard_graph=True, below)
    images = set(tags["images"])
    assert {"train_batch0", "train_batch1", "train_batch2", "val_batch0_pred", "PR_curve"} <= images
    im = acc.Images("PR_curve")[0]
    assert im.width > 100 and im.height > 100  # the plot itself, not a placeholder


def test_stop_ends_after_that_epoch_with_last_pt(tiny_data, tmp_path):
    model = YOLO(MODEL)
    ends = []

    def stop_first(trainer):
        trainer.stop = trainer.epoch == 0

    model.add_callback("on_fit_epoch_end", stop_first)
    model.add_callback("on_train_end", lambda t: ends.append(t.epoch))
    model.train(data=tiny_data, project=str(tmp_path), name="stop", epochs=3,
                **{**TINY, "tensorboard": True, "tensorboard_graph": True})
    assert [r["epoch"] for r in rows(tmp_path / "stop")] == [1.0]
    assert read_checkpoint(tmp_path / "stop" / "weights" / "last.pt")["epoch"] == 0
    assert ends == [0]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "stop"))
    acc.Reload()
    assert acc.Tags()["graph"] and any("Conv2d" in n.op or "conv" in n.op for n in acc.Graph().node)


def test_raising_callback_names_event_and_callback(tiny_data, tmp_path):
    model = YOLO(MODEL)

    def explode_in_second_epoch(trainer):
        if trainer.epoch == 1:
            raise ValueError("custom metric missing")

    model.add_callback("on_train_epoch_start", explode_in_second_epoch)
    with pytest.raises(CallbackError) as info:
        model.train(data=tiny_data, project=str(tmp_path), name="err", epochs=3, **TINY)
    msg = str(info.value)
    assert "'on_train_epoch_start'" in msg and "explode_in_second_epoch" in msg and "custom metric missing" in msg
    assert "holds epoch 1" in msg and isinstance(info.value.__cause__, ValueError)
    assert read_checkpoint(tmp_path / "err" / "weights" / "last.pt")["epoch"] == 0
    assert [r["epoch"] for r in rows(tmp_path / "err")] == [1.0]


def test_registry_rules(monkeypatch):
    cb, calls = Callbacks(), []
    with pytest.raises(UserError, match="did you mean 'on_fit_epoch_end'"):
        cb.add("on_fit_epoch_ends", print)
    cb.add("on_val_end", lambda o: calls.append(("main", o)))
    cb.add("on_val_end", lambda o: calls.append(("all", o)), all_ranks=True)
    cb.run("on_val_end", 1)
    monkeypatch.setattr("ultralytics.utils.callbacks.base.RANK", 1)  # a DDP rank other than 0
    cb.copy().run("on_val_end", 2)
    assert calls == [("main", 1), ("all", 1), ("all", 2)]


def test_tensorboard_missing_training_runs_unchanged(monkeypatch, log_messages):
    from ultralytics.utils.callbacks.tensorboard import TensorBoardLogger

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    cb = Callbacks()
    assert TensorBoardLogger.register(cb) is None
    assert all(not cb.get(e) for e in EVENTS)
    assert any("pip install tensorboard" in m for m in log_messages)
