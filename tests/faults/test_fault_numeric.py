"""Numerical faults: a NaN/inf loss or NaN gradients skip the step with a warning; persistent ones stop the run
with last.pt from the last good epoch (or say that none finished), and resume goes on once the cause is gone.
"""

from __future__ import annotations

import re

import pytest
import torch

from ultralytics import YOLO
from ultralytics.engine import trainer as trainer_mod
from ultralytics.utils.checkpoint import read_checkpoint
from ultralytics.utils.loss import v10DetectLoss

from .helpers import LAST_LOADS, RESUMED, ROWS_FINISHED, TINY, TINY_MODEL, WEIGHTS_FINITE, Checks, raises, read_rows

NAN = float("nan")


class Faulty:
    """Patches the trainer's criterion (v10DetectLoss.__call__): plan {training-batch number (1-based): 'nan' |
    'inf' | 'nan_grad'}; from_batch makes every batch from that number on NaN (until `healed`)."""

    def __init__(self, monkeypatch, plan: dict | None = None, from_batch: int | None = None, grad: bool = False):
        self.plan, self.from_batch, self.grad, self.n, self.healed = plan or {}, from_batch, grad, 0, False
        real = v10DetectLoss.__call__
        faulty = self

        def loss(criterion, preds, batch):
            out, items = real(criterion, preds, batch)
            if not torch.is_grad_enabled():  # validation losses (under no_grad) stay as they are
                return out, items
            faulty.n += 1
            what = faulty.plan.get(faulty.n)
            if faulty.from_batch and faulty.n >= faulty.from_batch and not faulty.healed:
                what = "nan_grad" if faulty.grad else "nan"
            if what == "nan":
                return out * NAN, items
            if what == "inf":
                return out * float("inf"), items
            if what == "nan_grad":  # the loss stays finite; its gradients are NaN
                out.register_hook(lambda g: g * NAN)
            return out, items

        monkeypatch.setattr(v10DetectLoss, "__call__", loss)


@pytest.fixture
def step_spy(monkeypatch):
    """Records, at every optimizer step taken, whether all gradients were finite."""
    seen = []
    real = trainer_mod.BaseTrainer.optimizer_step

    def step(self):
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        seen.append(all(torch.isfinite(g).all() for g in grads))
        return real(self)

    monkeypatch.setattr(trainer_mod.BaseTrainer, "optimizer_step", step)
    return seen


def _finite(sd: dict) -> bool:
    return all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())


def test_single_bad_batches_are_skipped(fault_data, tmp_path, monkeypatch, log_messages, step_spy, faults):
    """A NaN loss (batch 2), an inf loss (batch 4) and NaN gradients with a finite loss (batch 6): each is
    skipped with a warning naming epoch and batch; the run finishes with finite weights and results."""
    Faulty(monkeypatch, plan={2: "nan", 4: "inf", 6: "nan_grad"})
    model = YOLO(str(TINY_MODEL))
    model.train(data=fault_data, project=str(tmp_path), name="skip", **TINY)
    warns = [m for m in log_messages if m.startswith("WARNING: non-finite")]
    expected = ["WARNING: non-finite loss at epoch 1, batch 1: step skipped (1 in a row)",
                "WARNING: non-finite loss at epoch 2, batch 0: step skipped (1 in a row)",
                "WARNING: non-finite gradients at epoch 2: optimizer step skipped (1 in a row)"]
    rows = read_rows(tmp_path / "skip")
    ckpt = read_checkpoint(tmp_path / "skip" / "weights" / "last.pt")
    for i, case in enumerate(("NaN loss in one batch", "inf loss in one batch", "NaN gradients in one batch")):
        c = Checks()
        c("a warning naming epoch and batch", expected[i] in warns, warns)
        c("no other step skipped", len(warns) == 3, warns)
        # the only step offered NaN gradients was the one skipped
        c("one step offered NaN gradients (skipped)", step_spy.count(False) == 1, step_spy)
        c(ROWS_FINISHED, [r["epoch"] for r in rows] == ["1", "2", "3"]
          and all(float(v) == float(v) for r in rows for v in r.values()), rows)
        c(WEIGHTS_FINITE, _finite(ckpt["model"]) and _finite(ckpt["ema"]))
        faults.record("numeric", case, c)


@pytest.mark.parametrize("grad", [False, True], ids=["nan_loss", "nan_gradients"])
def test_persistent_nan_stops_with_last_good_epoch_then_resumes(grad, fault_data, tmp_path, monkeypatch, faults):
    monkeypatch.setattr(trainer_mod, "MAX_BAD_STEPS", 3)
    faulty = Faulty(monkeypatch, from_batch=4, grad=grad)  # every batch of epoch 2 on is bad
    # a NaN loss stops within epoch 2; NaN gradients skip every step of epoch 2 (during warmup a step comes every
    # 1-2 batches), so that epoch still ends, with unchanged weights, and the third bad step comes in epoch 3
    what, stop = ("gradients were NaN/inf for 3 optimizer steps", 3) if grad else ("loss was NaN/inf for 3 batches", 2)
    last = tmp_path / "nan" / "weights" / "last.pt"
    c = Checks()
    c("stops with a message naming the cause, epoch and last.pt", *raises(
        lambda: YOLO(str(TINY_MODEL)).train(data=fault_data, project=str(tmp_path), name="nan", **TINY),
        trainer_mod.NonFiniteLossError, rf"(?s)^(?=.*{re.escape(what)})(?=.*at epoch {stop}; stopping\.)"
                                        rf"(?=.*{re.escape(str(last))} holds epoch {stop - 1}, the last finished one)"))
    ckpt = read_checkpoint(last) if last.exists() else None
    c(LAST_LOADS, ckpt is not None and ckpt["epoch"] == stop - 2, "last.pt missing or of another epoch")
    c(WEIGHTS_FINITE, ckpt is not None and _finite(ckpt["model"]) and _finite(ckpt["ema"]))
    rows = read_rows(tmp_path / "nan")
    c(ROWS_FINISHED, [int(r["epoch"]) for r in rows] == list(range(1, stop)), rows)
    faulty.healed = True  # the cause is fixed: the run goes on from epoch 2
    try:
        YOLO(str(last)).train(resume=True)
        error = ""
    except Exception as e:  # noqa: BLE001 - a failed resume is a failed check
        error = f"{type(e).__name__}: {e}"
    rows = read_rows(tmp_path / "nan")
    c(RESUMED, not error and [r["epoch"] for r in rows] == ["1", "2", "3"], error or rows)
    c(WEIGHTS_FINITE, _finite(read_checkpoint(last)["ema"]), "after the resume")
    faults.record("numeric", f"persistent {'NaN gradients' if grad else 'NaN loss'}, then resume", c)


def test_nan_from_the_first_batch_says_nothing_was_saved(fault_data, tmp_path, monkeypatch, faults):
    monkeypatch.setattr(trainer_mod, "MAX_BAD_STEPS", 3)
    Faulty(monkeypatch, from_batch=1)
    c = Checks()
    c("stops saying that nothing was saved", *raises(
        lambda: YOLO(str(TINY_MODEL)).train(data=fault_data, project=str(tmp_path), name="nan0", **TINY),
        trainer_mod.NonFiniteLossError,
        r"at epoch 1; stopping\. No epoch finished, so nothing was saved \(\S*last\.pt was not written\)"))
    c("no last.pt written", not (tmp_path / "nan0" / "weights" / "last.pt").exists())
    faults.record("numeric", "persistent NaN from the first batch", c)
