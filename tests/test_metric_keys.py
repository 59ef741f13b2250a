"""Metrics and losses by key: one more metric (a DetMetrics subclass) or loss name reaches every output."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from ultralytics import YOLO
from ultralytics.engine.results_log import COLUMNS, ResultsLog, columns
from ultralytics.utils.metrics import DetMetrics

MODEL = str(Path(__file__).parent / "faults" / "yolov10t-faults.yaml")  # a very small YOLOv10
TINY = dict(imgsz=64, batch=4, workers=0, close_mosaic=0, device="cpu", optimizer="SGD", plots=False, seed=0,
            warmup_epochs=0, epochs=2)
DUMMY = "metrics/dummy(B)"


class DummyMetrics(DetMetrics):
    """The default metrics and one more, derived from mAP50 so that its value can be checked in every output."""

    METRICS = {**DetMetrics.METRICS, DUMMY: lambda box: 0.5 * box.map50 + 0.125}


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def dummy_run(tiny_data, tmp_path_factory):
    """A 2-epoch run whose validator computes DummyMetrics, TensorBoard on."""
    project = tmp_path_factory.mktemp("keys")
    mp = pytest.MonkeyPatch()
    mp.setattr("ultralytics.models.yolo.detect.val.DetMetrics", DummyMetrics)
    try:
        YOLO(MODEL).train(data=tiny_data, project=str(project), name="dummy", tensorboard=True, **TINY)
    finally:
        mp.undo()
    return project / "dummy"


def test_dummy_metric_in_results_csv_and_best_metrics(dummy_run):
    rows = read_csv(dummy_run / "results.csv")
    header = list(rows[0])
    assert header == columns(("box_loss", "cls_loss", "dfl_loss"), DummyMetrics.METRICS)  # after mAP50-95
    assert header.index(DUMMY) == header.index("metrics/mAP50-95(B)") + 1 == header.index("val/box_loss") - 1
    for r in rows:
        assert float(r[DUMMY]) == pytest.approx(0.5 * float(r["metrics/mAP50(B)"]) + 0.125, abs=2e-6)
    best = json.loads((dummy_run / "best_metrics.json").read_text())
    assert best[DUMMY] == pytest.approx(0.5 * best["metrics/mAP50(B)"] + 0.125, abs=2e-6)


def test_dummy_metric_in_tensorboard(dummy_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(dummy_run), size_guidance={"scalars": 0})
    acc.Reload()
    events = acc.Scalars(DUMMY)
    assert [e.step for e in events] == [1, 2]
    for e, r in zip(events, read_csv(dummy_run / "results.csv")):
        assert e.value == pytest.approx(float(r[DUMMY]), rel=1e-5)


def test_dummy_metric_in_the_compare_table(dummy_run, tmp_path):
    from ultralytics.compare import build_comparison, read_runs
    from ultralytics.compare.report import runs_table, write_reports

    runs, problems = read_runs([str(dummy_run)])
    assert problems == []
    comp = build_comparison(runs)
    last = read_csv(dummy_run / "results.csv")[-1]
    assert comp.run_rows[0]["final_dummy"] == pytest.approx(float(last[DUMMY]))
    write_reports(comp, tmp_path, plot=False)
    row = read_csv(tmp_path / "compare.csv")[0]
    assert float(row["final_dummy"]) == pytest.approx(float(last[DUMMY]))
    header = runs_table(comp).splitlines()[0]
    assert "final dummy" in header and header.index("final mAP50-95") < header.index("final dummy")


def test_one_more_loss_name_is_one_more_column_pair(tmp_path):
    """A loss added to loss_names (e.g. distillation) becomes train/ and val/ columns; nothing shifts."""
    log = ResultsLog(tmp_path / "results.csv")
    names = ("box_loss", "cls_loss", "dfl_loss", "distill_loss")
    lr = {"lr/pg0": 0.1, "lr/pg1": 0.2, "lr/pg2": 0.3}
    metrics = {"metrics/precision(B)": 0.5, "metrics/recall(B)": 0.4, "metrics/mAP50(B)": 0.3,
               "metrics/mAP50-95(B)": 0.2, "fitness": 0.21}
    log.append(log.make_row(1, dict(zip(names, (1, 2, 3, 4))), metrics, dict(zip(names, (5, 6, 7, 8))), lr, 9.0))
    row = read_csv(tmp_path / "results.csv")[0]
    assert list(row) == columns(names, list(metrics)[:4]) and "fitness" not in row
    assert (row["train/distill_loss"], row["val/distill_loss"], row["val/box_loss"]) == ("4", "8", "5")
    assert (row["metrics/mAP50-95(B)"], row["time"]) == ("0.2", "9")


def test_unvalidated_first_epoch_keeps_column_order(tmp_path):
    """Epoch 1 logged without metrics, epoch 2 with: the metric columns go where they belong, epoch 1 shows 0."""
    log = ResultsLog(tmp_path / "results.csv")
    losses = {"box_loss": 1.0, "cls_loss": 2.0, "dfl_loss": 3.0}
    lr = {"lr/pg0": 0.1, "lr/pg1": 0.2, "lr/pg2": 0.3}
    log.append(log.make_row(1, losses, {}, losses, lr, 1.0))
    metrics = dict(zip(DetMetrics.METRICS, (0.5, 0.4, 0.3, 0.2)))
    log.append(log.make_row(2, losses, metrics, losses, lr, 2.0))
    rows = read_csv(tmp_path / "results.csv")
    assert list(rows[0]) == COLUMNS
    assert rows[0]["metrics/mAP50(B)"] == "0" and rows[1]["metrics/mAP50(B)"] == "0.3"


def test_loss_items_and_loss_names_must_agree(tiny_data, tmp_path):
    """A criterion with one more item than loss_names (a distillation loss added to the criterion but not to the
    names) is a clear error, not a silently dropped column."""
    from ultralytics.models.yolo.detect import DetectionTrainer

    class ThreeNames(DetectionTrainer):
        def setup(self):
            super().setup()
            criterion = self.criterion

            def four_items(preds, batch):
                loss, items = criterion(preds, batch)
                return loss, torch.cat([items, items[:1]])

            self.criterion = four_items

    trainer = ThreeNames(overrides=dict(model=MODEL, data=tiny_data, project=str(tmp_path), name="x", **TINY))
    with pytest.raises(ValueError, match=r"returned 4 loss items but ThreeNames.loss_names has 3"):
        trainer.train()
