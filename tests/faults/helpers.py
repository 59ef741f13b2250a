"""Helpers of the fault suite: named checks, tiny settings, child-process trainings (child_train.py), results.csv
readers, and interval overlap counting for the concurrency tests."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CHILD = HERE / "child_train.py"

# Tiny trainings: 12 train images in 3 batches per epoch, 4 val images, 3 epochs (mosaic off in the last).
TINY = dict(imgsz=64, batch=4, workers=0, epochs=3, close_mosaic=1, device="cpu", optimizer="SGD", plots=False,
            seed=0, deterministic=True, warmup_epochs=1)
TINY_MODEL = HERE / "yolov10t-faults.yaml"  # yolov10n's rows at 1/16 width: the faults concern the trainer
FITNESS = [0.1, 0.3, 0.2]  # epoch 2 is the best: best.pt is written at epochs 1 and 2, not 3


# The "nothing lost" checks: a scenario claims nothing lost only from these, run and passed (conftest.py).
LAST_LOADS = "last.pt loads and holds the last finished epoch"
RESUMED = "resume completes (or says every epoch is done)"
ROWS_SAME = "results.csv rows == the clean run's"
ROWS_FINISHED = "results.csv has one row per finished epoch"
WEIGHTS_SAME = "weights == the clean run's"
NO_TEMP = "no temp file left"
WEIGHTS_FINITE = "saved weights finite"
SKIPS_COUNTED = "skipped data counted and reported"
GOOD_USED = "every good image used"
ROWS_KEPT = "every good label row kept"
ROWS_ACCOUNTED = "every label row kept or reported"
LABELS_SAME = "labels == the truth"
READS_COMPLETE = "every read complete (never half-written)"
RUN_FILES = "each run's files complete and its own"
LOSS_CHECKS = frozenset({LAST_LOADS, RESUMED, ROWS_SAME, ROWS_FINISHED, WEIGHTS_SAME, NO_TEMP, WEIGHTS_FINITE,
                         SKIPS_COUNTED, GOOD_USED, ROWS_KEPT, ROWS_ACCOUNTED, LABELS_SAME, READS_COMPLETE, RUN_FILES})


class Checks(dict):
    """{check name: passed} of the checks one scenario ran; `why[name]` keeps the evidence of a failure.

    checks(name, ok, why) adds one outcome (a name checked twice passes only if both passed) and returns ok.
    """

    def __init__(self):
        super().__init__()
        self.why: dict[str, str] = {}

    def __call__(self, name: str, ok, why="") -> bool:
        ok = bool(ok)
        self[name] = self.get(name, True) and ok
        if not ok:
            why = str(why)  # its first line (what was expected) and the end of the evidence
            self.why.setdefault(name, why if len(why) <= 3000 else why[:200] + " [...] " + why[-2800:])
        return ok


def raises(fn, exc: type = None, match: str | None = None) -> tuple[bool, str]:
    """(fn() raised `exc` (default UserError) whose message matches the regex `match`, what happened)."""
    import re

    if exc is None:
        from ultralytics.utils import UserError as exc
    try:
        fn()
    except exc as e:
        ok = match is None or re.search(match, str(e)) is not None
        return ok, f"{type(e).__name__}: {e}" + ("" if ok else f" (does not match /{match}/)")
    except Exception as e:  # noqa: BLE001 - the wrong kind of error is a failed check, not a crash of the test
        return False, f"{type(e).__name__} instead of {exc.__name__}: {e}"
    return False, f"no {exc.__name__} raised"


def overlaps(inner: list[tuple[float, float]], outer: list[tuple[float, float]]) -> int:
    """How many `inner` intervals (start, end) started while some `outer` interval was in progress."""
    import bisect

    outer = sorted(outer)
    starts = [a for a, _ in outer]
    n, ends_max = 0, []
    for a, b in outer:  # running max of the end times, in order of start
        ends_max.append(max(b, ends_max[-1]) if ends_max else b)
    for a, _ in inner:
        i = bisect.bisect_right(starts, a) - 1
        n += i >= 0 and ends_max[i] > a
    return n


def child_env(threads: int = 1) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE",
               PYTHONUNBUFFERED="1", NO_COLOR="1", PYTHONHASHSEED="0")
    return env


class Zygote:
    """The pre-imported parent of zygote.py: spawn() forks a training child from it in milliseconds."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "zygote.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=child_env(), cwd=HERE, text=True, bufsize=1)
        self.lock = threading.Lock()
        line = self.proc.stdout.readline().strip()
        assert line == "ready", f"the zygote did not start: {line!r}"

    def spawn(self, spec_file: Path, log: Path, rc: Path, cwd: Path) -> int:
        cmd = {"spec": str(spec_file), "log": str(log), "rc": str(rc), "cwd": str(cwd)}
        with self.lock:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
            return int(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(120)


class Child:
    """A training in its own process (child_train.py): start(), then wait() -> (exit status, output).

    With a Zygote the process is forked from it (no import time); without, it is a fresh `python` process.
    An exit status is negative when the process was killed by a signal (-9 SIGKILL, -2 SIGINT).
    """

    def __init__(self, workdir: Path, tag: str, spec: dict, zygote: Zygote | None = None):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tag, self.spec, self.zygote = tag, dict(spec), zygote
        self.spec.setdefault("ready", str(self.dir / f"{tag}.ready"))
        self.spec.setdefault("done", str(self.dir / f"{tag}.done"))
        self.spec_file = self.dir / f"{tag}.json"
        self.spec_file.write_text(json.dumps(self.spec))
        self.log, self.rc_file = self.dir / f"{tag}.log", self.dir / f"{tag}.rc"
        self.proc = self.pid = None

    def start(self) -> "Child":
        if self.zygote is not None:
            self.pid = self.zygote.spawn(self.spec_file, self.log, self.rc_file, self.dir)
        else:
            with open(self.log, "wb") as fh:
                self.proc = subprocess.Popen([sys.executable, str(CHILD), str(self.spec_file)], cwd=self.dir,
                                             stdout=fh, stderr=subprocess.STDOUT, env=child_env())
            self.pid = self.proc.pid
        return self

    def returncode(self) -> int | None:
        if self.proc is not None:
            return self.proc.poll()
        return int(self.rc_file.read_text()) if self.rc_file.exists() else None

    def wait_ready(self, timeout: float = 120) -> None:
        """Wait until the child wrote its ready file (an armed 'sigint_wait' fault, or waiting at a barrier)."""
        ready, t = Path(self.spec["ready"]), time.time()
        while not ready.exists():
            if self.returncode() is not None or time.time() - t > timeout:
                raise AssertionError(f"child {self.tag} never got ready:\n{self.output()[-3000:]}")
            time.sleep(0.01)

    def sigint(self) -> None:
        os.kill(self.pid, signal.SIGINT)

    def wait(self, timeout: float = 300) -> tuple[int, str]:
        t = time.time()
        while (rc := self.returncode()) is None:
            if time.time() - t > timeout:
                os.kill(self.pid, signal.SIGKILL)
                raise AssertionError(f"child {self.tag} ran past {timeout} s:\n{self.output()[-3000:]}")
            time.sleep(0.02)
        return rc, self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def run(self, timeout: float = 300) -> tuple[int, str]:
        return self.start().wait(timeout)


def read_rows(run: Path) -> list[dict]:
    with open(Path(run) / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def without_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


def as_csv(rows: list[dict]) -> list[dict]:
    """Rows as kept in a checkpoint ('train_results') -> as results.csv writes them (text, 6 significant digits)."""
    return [{k: str(v) if k == "epoch" else f"{v:.6g}" for k, v in r.items()} for r in rows]


def temp_files(run: Path) -> list[str]:
    """Unfinished atomic-write temp files ('.<name>.<random>.tmp') in a run dir and its weights dir."""
    run = Path(run)
    return sorted(p.name for d in (run, run / "weights") if d.is_dir() for p in d.glob(".*.tmp"))


def train_spec(data: str, project: Path, name: str, **extra) -> dict:
    """The spec of a child training (child_train.py) of the tiny model with the TINY settings."""
    return {"data": data, "project": str(project), "name": name, "settings": dict(TINY), "fitness": FITNESS,
            "threads": 1, "model": str(TINY_MODEL), **extra}
