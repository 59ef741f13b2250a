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

import math
import re

import pytest
import torch

from ultralytics.utils.checkpoint import read_checkpoint

from .helpers import (LAST_LOADS, NO_TEMP, RESUMED, ROWS_SAME, WEIGHTS_SAME, Checks, as_csv, read_rows, temp_files,
                      without_time)
from .matrix import CASES, INTERRUPTED, KILLED

INTERRUPTS = [n for n, c in CASES.items() if c.kind == "interrupt"]
DISK = [n for n, c in CASES.items() if c.kind == "disk"]


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def check_case(name: str, child_matrix) -> Checks:
    """All the checks of one case, after the fault and after the resume: {check name: passed}."""
    ref, outcomes = child_matrix
    case, out = CASES[name], outcomes[name]
    ref_rows = without_time(read_rows(ref))
    c = Checks()
    # --- right after the fault ---
    # An unhandled KeyboardInterrupt ends CPython by SIGINT (-2), unless code run while the interpreter shuts down
    # calls exec() on a string (a namedtuple or dataclass made lazily at exit does), which clears CPython's
    # "unhandled KeyboardInterrupt" flag and gives exit status 1; 130 where SIGINT is blocked. Seen with this tree's
    # dependencies on 2026-12-07, at the earlier commit ca600b2 too; the traceback check below still pins the cause.
    ok_rc = (case.rc, 1, 130) if case.rc == INTERRUPTED else (case.rc,)
    c("exit status", out.rc in ok_rc, f"exit status {out.rc}, expected {ok_rc}\n{out.output[-3000:]}")
    for pattern in case.message:
        c("message", re.search(pattern, out.output), f"no message /{pattern}/ in:\n{out.output[-3000:]}")
    if case.rc == INTERRUPTED:
        c("KeyboardInterrupt re-raised", "Traceback" in out.output and out.output.rstrip().endswith(
            "KeyboardInterrupt"), out.output[-2000:])
    elif case.rc != KILLED:  # an error stops the run: one UserError (FileWriteError), not a crash deep inside
        c("one FileWriteError", "FileWriteError" in out.output, out.output[-2000:])
    snap = out.after_fault
    ckpt = snap["ckpt"]
    c(LAST_LOADS, ckpt is not None and ckpt["epoch"] + 1 == case.epochs_saved
      and len(ckpt["train_results"]) == case.epochs_saved
      and without_time(as_csv(ckpt["train_results"])) == ref_rows[: case.epochs_saved],
      f"after the fault: last.pt {'missing' if ckpt is None else 'holds epoch index %d' % ckpt['epoch']}, "
      f"expected {case.epochs_saved} finished epochs equal to the clean run's")
    c(ROWS_SAME, without_time(snap["rows"]) == ref_rows[: case.rows],
      f"after the fault: {snap['rows']} != the clean run's first {case.rows}")
    c("temp file left only by a SIGKILL mid-save", bool(snap["temp"]) == case.temp_left, snap["temp"])
    # --- after the resume ---
    c(RESUMED, out.resume_rc == case.resume_rc, f"resume exit {out.resume_rc}\n{out.resume_output[-3000:]}")
    for pattern in case.resume_message:
        c("resume message", re.search(pattern, out.resume_output), out.resume_output[-2000:])
    if case.temp_left:
        c("resume reports the leftover temp file",
          "unfinished temporary file(s) of the interrupted run" in out.resume_output, out.resume_output[-2000:])
    rows = read_rows(out.run)
    c(ROWS_SAME, [int(r["epoch"]) for r in rows] == [1, 2, 3] and without_time(rows) == ref_rows,
      f"after the resume: epochs {[r['epoch'] for r in rows]}, rows {without_time(rows)}")
    c(NO_TEMP, temp_files(out.run) == [], temp_files(out.run))
    last_file, best_file = out.run / "weights" / "last.pt", out.run / "weights" / "best.pt"
    c(LAST_LOADS, last_file.exists() and read_checkpoint(last_file)["epoch"] == 2, "after the resume")
    if last_file.exists() and best_file.exists():
        last, ref_last = read_checkpoint(last_file), read_checkpoint(ref / "weights" / "last.pt")
        best, ref_best = read_checkpoint(best_file), read_checkpoint(ref / "weights" / "best.pt")
        c(WEIGHTS_SAME, ref_last["epoch"] == 2 and _same_weights(last["model"], ref_last["model"])
          and _same_weights(last["ema"], ref_last["ema"]), "last.pt differs from the clean run's")
        c(WEIGHTS_SAME, best["epoch"] == ref_best["epoch"] == 1  # the fitness plan makes epoch 2 the best
          and _same_weights(best["ema"], ref_best["ema"]), f"best.pt epoch {best['epoch']}, or weights differ")
        c("last.pt is plain data", set(torch.load(last_file, weights_only=True)) == set(last))
    else:
        c(WEIGHTS_SAME, False, "last.pt or best.pt missing after the resume")
    return c


@pytest.mark.parametrize("name", INTERRUPTS)
def test_interrupted_training(name, child_matrix, faults):
    faults.record("interrupt", name, check_case(name, child_matrix))


@pytest.mark.parametrize("name", DISK)
def test_disk_trouble_training(name, child_matrix, faults):
    faults.record("disk", name, check_case(name, child_matrix))


def test_reference_run_is_complete(child_matrix):
    ref, _ = child_matrix
    rows = read_rows(ref)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert all(math.isfinite(float(r[k])) for r in rows for k in r)  # no NaN, no inf
    assert temp_files(ref) == []
