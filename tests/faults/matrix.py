"""The child-process fault matrix: each case is a 3-epoch training hit by one fault, then resumed.

A case names the fault (see child_train.py), what the killed/failed process must leave behind (exit status,
the epoch last.pt holds, the rows of results.csv, whether an unfinished temp file is left, a message),
and what the resume must end with. run_matrix() runs the uninterrupted reference and every case, two
processes at a time, each case as fault-then-resume. The processes are forked from a pre-imported zygote,
except the Ctrl-C cases, which run as fresh `python` processes so that their exit status is CPython's own.
"""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .helpers import FITNESS, Child, train_spec

KILLED, INTERRUPTED, FAILED = -signal.SIGKILL, -signal.SIGINT, 1


@dataclass
class Case:
    kind: str  # 'interrupt' or 'disk'
    fault: dict
    rc: int  # exit status of the faulty process
    epochs_saved: int  # finished epochs that last.pt holds after the fault
    rows: int  # rows of results.csv after the fault
    temp_left: bool = False  # an unfinished '.last.pt.*.tmp' is left behind (SIGKILL during a write)
    message: list[str] = field(default_factory=list)  # regexes the faulty process's output must match
    resume_rc: int = 0
    resume_message: list[str] = field(default_factory=list)


_LAST_WRITE = r"could not write '[^']*weights/last\.pt': "
CASES: dict[str, Case] = {
    # --- SIGKILL ---
    "kill_mid_epoch": Case("interrupt", {"kind": "kill_batch", "batch": 5}, KILLED, 1, 1),
    "kill_mid_write_last": Case("interrupt", {"kind": "kill_write", "file": "last.pt", "nth": 2,
                                              "stage": "mid_write"}, KILLED, 1, 1, temp_left=True),
    "kill_before_replace_last": Case("interrupt", {"kind": "kill_write", "file": "last.pt", "nth": 2,
                                                   "stage": "before_replace"}, KILLED, 1, 1, temp_left=True),
    "kill_after_best_before_last": Case("interrupt", {"kind": "kill_write", "file": "best.pt", "nth": 2,
                                                      "stage": "after_replace"}, KILLED, 1, 1),
    "kill_after_last_before_row": Case("interrupt", {"kind": "kill_write", "file": "last.pt", "nth": 2,
                                                     "stage": "after_replace"}, KILLED, 2, 1),
    "kill_in_validation": Case("interrupt", {"kind": "kill_val", "call": 2}, KILLED, 1, 1),
    "kill_final_epoch_before_row": Case(
        "interrupt", {"kind": "kill_write", "file": "last.pt", "nth": 3, "stage": "after_replace"}, KILLED, 3, 2,
        resume_rc=FAILED, resume_message=[r"finished all 3 epochs; nothing to resume\. Its results\.csv lacked rows"]),
    # --- SIGINT (Ctrl-C) ---
    "sigint_mid_epoch": Case("interrupt", {"kind": "sigint_wait", "batch": 5}, INTERRUPTED, 1, 1, message=[
        r"training interrupted \(KeyboardInterrupt\) in epoch 2/3\. \S*weights/last\.pt holds epoch 1, the last "
        r"finished one; continue with YOLO\('\S*last\.pt'\)\.train\(resume=True\)"]),
    "sigint_in_save": Case("interrupt", {"kind": "sigint_write", "file": "last.pt", "nth": 2}, INTERRUPTED, 1, 1,
                           message=[r"interrupted \(KeyboardInterrupt\) in epoch 2/3\. \S*last\.pt holds epoch 1"]),
    # --- disk trouble ---
    "read_only_dir_at_last": Case("disk", {"kind": "oserror_write", "file": "last.pt", "nth": 2, "stage": "mkstemp",
                                           "errno": "EROFS"}, FAILED, 1, 1,
                                  message=[_LAST_WRITE + r"Read-only file system \[EROFS\]; any previous version"]),
    "disk_full_fsync_last": Case("disk", {"kind": "oserror_write", "file": "last.pt", "nth": 2, "stage": "fsync",
                                          "errno": "ENOSPC"}, FAILED, 1, 1,
                                 message=[_LAST_WRITE + r"No space left on device \[ENOSPC\]"]),
    "disk_full_mid_write_last": Case("disk", {"kind": "oserror_write", "file": "last.pt", "nth": 2,
                                              "stage": "mid_write", "errno": "ENOSPC"}, FAILED, 1, 1,
                                     message=[_LAST_WRITE + r"No space left on device \[ENOSPC\]"]),
    "read_only_dir_at_best": Case("disk", {"kind": "oserror_write", "file": "best.pt", "nth": 2, "stage": "mkstemp",
                                           "errno": "EROFS"}, FAILED, 1, 1,
                                  message=[r"could not write '[^']*weights/best\.pt': Read-only file system"]),
    "disk_full_results_csv": Case("disk", {"kind": "oserror_write", "file": "results.csv", "nth": 2,
                                           "stage": "fsync", "errno": "ENOSPC"}, FAILED, 2, 1,
                                  message=[r"could not write '[^']*results\.csv': No space left on device"]),
}


@dataclass
class Outcome:
    run: Path
    rc: int
    output: str
    after_fault: dict  # snapshot taken right after the fault: rows, temp files, last.pt epoch
    resume_rc: int | None = None
    resume_output: str = ""


def _snapshot(run: Path) -> dict:
    from ultralytics.utils.checkpoint import read_checkpoint

    from .helpers import read_rows, temp_files

    last = run / "weights" / "last.pt"
    snap = {"rows": read_rows(run) if (run / "results.csv").exists() else [], "temp": temp_files(run)}
    snap["ckpt"] = read_checkpoint(last) if last.exists() else None
    return snap


def _run_case(name: str, case: Case, data: str, work: Path, zygote) -> Outcome:
    d = work / name
    fresh = case.rc == INTERRUPTED
    child = Child(d, "fault", train_spec(data, d / "runs", "run", fault=case.fault), None if fresh else zygote)
    child.start()
    if case.fault["kind"] == "sigint_wait":
        child.wait_ready()
        child.sigint()
    rc, out = child.wait()
    run = d / "runs" / "run"
    outcome = Outcome(run, rc, out, _snapshot(run))
    if (run / "weights" / "last.pt").exists():
        resume = Child(d, "resume", {"resume": str(run / "weights" / "last.pt"), "fitness": FITNESS, "threads": 1},
                       zygote)
        outcome.resume_rc, outcome.resume_output = resume.run()
    return outcome


def run_matrix(data: str, work: Path, zygote) -> tuple[Path, dict[str, Outcome]]:
    """(reference run dir, {case name: Outcome}), two processes at a time."""
    ref = Child(work / "reference", "reference", train_spec(data, work / "reference" / "runs", "ref"), zygote)
    with ThreadPoolExecutor(2) as pool:
        ref_future = pool.submit(ref.run)
        futures = {name: pool.submit(_run_case, name, case, data, work, zygote) for name, case in CASES.items()}
        rc, out = ref_future.result()
        assert rc == 0, f"the uninterrupted reference run failed:\n{out[-3000:]}"
        return work / "reference" / "runs" / "ref", {name: f.result() for name, f in futures.items()}
