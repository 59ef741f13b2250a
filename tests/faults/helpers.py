"""Helpers of the fault suite: tiny settings, child-process trainings (child_train.py), results.csv readers."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CHILD = HERE / "child_train.py"

# Tiny trainings: 12 train images in 3 batches per epoch, 4 val images, 3 epochs (mosaic off in the last).
TINY = dict(imgsz=64, batch=4, workers=0, epochs=3, close_mosaic=1, device="cpu", optimizer="SGD", plots=False,
            seed=0, deterministic=True, warmup_epochs=1)
FITNESS = [0.1, 0.3, 0.2]  # epoch 2 is the best: best.pt is written at epochs 1 and 2, not 3


def child_env(threads: int = 1) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE",
               PYTHONUNBUFFERED="1", NO_COLOR="1", PYTHONHASHSEED="0")
    return env


class Child:
    """A training in a child process (see child_train.py): start(), then wait() -> (returncode, output)."""

    def __init__(self, workdir: Path, tag: str, spec: dict):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tag, self.spec = tag, dict(spec)
        self.spec.setdefault("ready", str(self.dir / f"{tag}.ready"))
        self.spec.setdefault("done", str(self.dir / f"{tag}.done"))
        self.spec_file = self.dir / f"{tag}.json"
        self.spec_file.write_text(json.dumps(self.spec))
        self.log = self.dir / f"{tag}.log"
        self.proc = None

    def start(self) -> "Child":
        self._fh = open(self.log, "wb")
        self.proc = subprocess.Popen([sys.executable, str(CHILD), str(self.spec_file)], cwd=self.dir,
                                     stdout=self._fh, stderr=subprocess.STDOUT, env=child_env())
        return self

    def wait_ready(self, timeout: float = 120) -> None:
        """Wait until the armed fault wrote its ready file (sigint_wait)."""
        ready, t = Path(self.spec["ready"]), time.time()
        while not ready.exists():
            if self.proc.poll() is not None or time.time() - t > timeout:
                raise AssertionError(f"child {self.tag} never armed its fault:\n{self.output()[-3000:]}")
            time.sleep(0.01)

    def sigint(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def wait(self, timeout: float = 300) -> tuple[int, str]:
        try:
            rc = self.proc.wait(timeout)
        finally:
            self._fh.close()
        return rc, self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def run(self, timeout: float = 300) -> tuple[int, str]:
        return self.start().wait(timeout)


def run_children(children: list[Child], parallel: int = 2) -> list[tuple[int, str]]:
    """Run children, `parallel` at a time (each uses one thread): results in the same order."""
    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(lambda c: c.run(), children))


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
    return {"data": data, "project": str(project), "name": name, "settings": dict(TINY), "fitness": FITNESS,
            "threads": 1, **extra}
