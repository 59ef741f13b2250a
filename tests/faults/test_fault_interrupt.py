"""Interrupted and disk-troubled trainings (child processes): nothing is lost, resume reproduces the clean run.

Each case of matrix.CASES is a 3-epoch run (seed 0, CPU, one thread) hit by one fault: SIGKILL mid-epoch,
inside the checkpoint save (mid-write, before os.replace, between best.pt and last.pt, between last.pt and
the results row), during validation, Ctrl-C (SIGINT) mid-epoch and inside the save, a read-only run
directory or a full disk at a save. After the fault: last.pt loads and holds the last finished epoch,
results.csv has exactly the rows of the epochs finished so far, equal to the clean run's. After
`YOLO(last.pt).train(resume=True)`: results.csv equals the uninterrupted run's in every column but `time`,
epochs 1, 2, 3 once each, and last.pt/best.pt hold bit-identical weights to the clean run's.

Ctrl-C, defined: training stops at once; last.pt keeps the last *finished* epoch (a mid-epoch state could not
be resumed exactly); a warning says which epoch last.pt holds and how to resume; the KeyboardInterrupt is
re-raised, so a script exits with the SIGINT status (130 in a shell) and no unfinished temp file is left.
"""

from __future__ import annotations

import re

import pytest
import torch

from ultralytics.utils.checkpoint import read_checkpoint

from .helpers import as_csv, read_rows, temp_files, without_time
from .matrix import CASES, INTERRUPTED, KILLED

INTERRUPTS = [n for n, c in CASES.items() if c.kind == "interrupt"]
DISK = [n for n, c in CASES.items() if c.kind == "disk"]


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def check_case(name: str, child_matrix) -> None:
    """All the assertions of one case, after the fault and after the resume."""
    ref, outcomes = child_matrix
    case, out = CASES[name], outcomes[name]
    ref_rows = without_time(read_rows(ref))
    # --- right after the fault ---
    assert out.rc == case.rc, f"{name}: exit status {out.rc}, expected {case.rc}\n{out.output[-3000:]}"
    for pattern in case.message:
        assert re.search(pattern, out.output), f"{name}: no message /{pattern}/ in:\n{out.output[-3000:]}"
    if case.rc == INTERRUPTED:
        assert "Traceback" in out.output and out.output.rstrip().endswith("KeyboardInterrupt")
    elif case.rc != KILLED:  # an error stops the run: one UserError (FileWriteError), not a crash deep inside
        assert "FileWriteError" in out.output
    snap = out.after_fault
    ckpt = snap["ckpt"]
    assert ckpt is not None, f"{name}: no loadable last.pt"
    assert ckpt["epoch"] + 1 == case.epochs_saved
    assert len(ckpt["train_results"]) == case.epochs_saved
    assert without_time(as_csv(ckpt["train_results"])) == ref_rows[: case.epochs_saved]
    assert without_time(snap["rows"]) == ref_rows[: case.rows]
    assert bool(snap["temp"]) == case.temp_left, snap["temp"]
    # --- after the resume ---
    assert out.resume_rc == case.resume_rc, f"{name}: resume exit {out.resume_rc}\n{out.resume_output[-3000:]}"
    for pattern in case.resume_message:
        assert re.search(pattern, out.resume_output), out.resume_output[-2000:]
    if case.temp_left:
        assert "unfinished temporary file(s) of the interrupted run" in out.resume_output
    rows = read_rows(out.run)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]  # no duplicated or missing epoch
    assert without_time(rows) == ref_rows
    assert temp_files(out.run) == []
    last, ref_last = read_checkpoint(out.run / "weights" / "last.pt"), read_checkpoint(ref / "weights" / "last.pt")
    assert last["epoch"] == ref_last["epoch"] == 2
    assert _same_weights(last["model"], ref_last["model"]) and _same_weights(last["ema"], ref_last["ema"])
    assert set(torch.load(out.run / "weights" / "last.pt", weights_only=True)) == set(last)  # plain data
    best, ref_best = read_checkpoint(out.run / "weights" / "best.pt"), read_checkpoint(ref / "weights" / "best.pt")
    assert best["epoch"] == ref_best["epoch"] == 1  # the fitness plan makes epoch 2 the best
    assert _same_weights(best["ema"], ref_best["ema"])


@pytest.mark.parametrize("name", INTERRUPTS)
def test_interrupted_training(name, child_matrix, faults):
    check_case(name, child_matrix)
    faults.record("interrupt", name)


@pytest.mark.parametrize("name", DISK)
def test_disk_trouble_training(name, child_matrix, faults):
    check_case(name, child_matrix)
    faults.record("disk", name)


def test_reference_run_is_complete(child_matrix):
    ref, _ = child_matrix
    rows = read_rows(ref)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert all(float(r[k]) == float(r[k]) for r in rows for k in r)  # finite, no NaN
    assert temp_files(ref) == []
