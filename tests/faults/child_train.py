"""A training run in its own process, with one fault injected from outside the product code.

Usage: python child_train.py spec.json. The spec (JSON) holds:
  data, project, name, settings (dict of train settings), model (optional model YAML), resume (last.pt or null),
  fitness (optional list: the fitness each epoch reports, so best.pt changes on a known schedule),
  threads (torch threads), barrier (a file to wait for before training), ready (written when a 'sigint_wait'
  fault is armed, or when waiting at the barrier), fault (null or a dict, see below), done (written at the
  end with {"save_dir": ..., "t_start": ..., "t_end": ...}: time.monotonic() after the barrier and at the end).

Faults (all patches live in this process only; the product code is not changed for them):
  kill_batch      {batch: k}                       SIGKILL at the k-th training batch (1-based, over epochs)
  kill_val        {call: n}                        SIGKILL inside the n-th validation, at its first forward
  kill_write      {file, nth, stage}               SIGKILL at the nth atomic write of `file`, at stage
                                                   mid_write | before_replace | after_replace
  sigint_wait     {batch: k}                       at the k-th training batch write `ready` and wait for a SIGINT
  sigint_write    {file, nth}                      SIGINT to itself at the nth write of `file`, before os.replace
  oserror_write   {file, nth, stage, errno}        OSError(errno) at the nth write of `file`:
                                                   stage mkstemp (read-only dir) | fsync (disk full) | mid_write
"""

from __future__ import annotations

import errno as errno_mod
import io
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path


def _kill() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _fd_name(fd: int) -> str:
    try:
        return os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return ""


def _is_temp_of(tmp_name: str, file: str) -> bool:
    """Temp files of atomic writes are named '.<file>.<random>.tmp'."""
    return os.path.basename(tmp_name).startswith(f".{file}.") and tmp_name.endswith(".tmp")


def install_write_fault(fault: dict) -> None:
    """Patch os.replace / tempfile.mkstemp / os.fsync / torch.save to fail or die at one write of one file."""
    import torch

    kind, file, nth = fault["kind"], fault["file"], int(fault["nth"])
    stage = fault.get("stage", "before_replace")
    counts = {"n": 0}
    code = getattr(errno_mod, fault.get("errno", "ENOSPC"))

    def fire():
        if kind == "kill_write":
            _kill()
        if kind == "sigint_write":
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the KeyboardInterrupt is raised here
        raise OSError(code, os.strerror(code))

    real_mkstemp = tempfile.mkstemp

    def mkstemp(*a, **kw):
        if kw.get("prefix") == f".{file}.":
            counts["n"] += 1  # one atomic write of `file` begins
            if counts["n"] == nth and stage == "mkstemp":
                fire()
        return real_mkstemp(*a, **kw)

    real_fsync = os.fsync

    def fsync(fd):
        if counts["n"] == nth and stage == "fsync" and _is_temp_of(_fd_name(fd), file):
            fire()
        return real_fsync(fd)

    real_replace = os.replace

    def replace(src, dst, *a, **kw):
        hit = counts["n"] == nth and os.path.basename(str(dst)) == file
        if hit and stage == "before_replace":
            fire()
        out = real_replace(src, dst, *a, **kw)
        if hit and stage == "after_replace":
            fire()
        return out

    real_save = torch.save

    def save(obj, f, *a, **kw):
        name = getattr(f, "name", "")
        if stage == "mid_write" and counts["n"] == nth and isinstance(name, int):
            name = _fd_name(name)
        if stage == "mid_write" and counts["n"] == nth and _is_temp_of(str(name), file):
            buf = io.BytesIO()
            real_save(obj, buf, *a, **kw)
            data = buf.getvalue()
            f.write(data[: len(data) // 2])  # half of the checkpoint reaches the disk
            f.flush()
            os.fsync(f.fileno())
            fire()
        return real_save(obj, f, *a, **kw)

    tempfile.mkstemp, os.fsync, os.replace, torch.save = mkstemp, fsync, replace, save


def install_batch_fault(fault: dict, ready: str | None) -> None:
    """Patch the trainer's criterion (v10DetectLoss) to die (or wait for SIGINT) at the k-th training batch."""
    import torch

    from ultralytics.utils.loss import v10DetectLoss

    real_loss, counts, k = v10DetectLoss.__call__, {"n": 0}, int(fault["batch"])

    def loss(self, preds, batch):
        if torch.is_grad_enabled():  # a training step (validation runs under no_grad)
            counts["n"] += 1
            if counts["n"] == k:
                if fault["kind"] == "kill_batch":
                    _kill()
                Path(ready).write_text("armed")  # sigint_wait: the parent sends SIGINT now
                deadline = time.time() + 60
                while time.time() < deadline:
                    time.sleep(0.02)
                raise SystemExit("no SIGINT arrived within 60 s")
        return real_loss(self, preds, batch)

    v10DetectLoss.__call__ = loss


def install_val_fault(fault: dict) -> None:
    """Patch validation so the process dies at the first forward pass of the n-th validation."""
    from ultralytics.models.yolo.detect.train import DetectionTrainer
    from ultralytics.nn.tasks import DetectionModel

    state = {"calls": 0, "armed": False}
    real_validate, real_forward = DetectionTrainer.validate, DetectionModel.forward

    def validate(self):
        state["calls"] += 1
        state["armed"] = state["calls"] == int(fault["call"])
        return real_validate(self)

    def forward(self, x, raw=False):
        if state["armed"] and not self.training:
            _kill()
        return real_forward(self, x, raw)

    DetectionTrainer.validate, DetectionModel.forward = validate, forward


def install_fitness(schedule: list[float]) -> None:
    """Each epoch's validation reports schedule[epoch] as fitness, so best.pt is rewritten on a known plan."""
    from ultralytics.models.yolo.detect.train import DetectionTrainer
    from ultralytics.utils.metrics import DetMetrics

    real_fitness = DetMetrics.fitness
    DetMetrics.fitness = property(lambda m: m.__dict__.get("_forced_fitness", real_fitness.fget(m)))
    real_validate = DetectionTrainer.validate

    def validate(self):
        metrics, loss = real_validate(self)
        metrics._forced_fitness = float(schedule[min(self.epoch, len(schedule) - 1)])
        return metrics, loss

    DetectionTrainer.validate = validate


def main(spec_file: str) -> None:
    # A shell without job control starts background commands with SIGINT ignored, and Python then keeps it
    # ignored (no KeyboardInterrupt). Ctrl-C is what these children simulate, so give them Python's handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    spec = json.loads(Path(spec_file).read_text())
    import torch

    torch.set_num_threads(int(spec.get("threads", 1)))
    from ultralytics import YOLO

    if spec.get("fitness"):
        install_fitness(spec["fitness"])
    fault = spec.get("fault") or {}
    kind = fault.get("kind")
    if kind in ("kill_write", "sigint_write", "oserror_write"):
        install_write_fault(fault)
    elif kind in ("kill_batch", "sigint_wait"):
        install_batch_fault(fault, spec.get("ready"))
    elif kind == "kill_val":
        install_val_fault(fault)
    elif kind:
        raise SystemExit(f"unknown fault kind {kind!r}")
    if spec.get("barrier"):  # start together with other children: say ready, wait for the go
        Path(spec["ready"]).write_text("ready")
        deadline = time.time() + 60
        while not Path(spec["barrier"]).exists() and time.time() < deadline:
            time.sleep(0.005)
    t_start = time.monotonic()  # system-wide clock: the parent compares the intervals of concurrent children
    if spec.get("resume"):
        model = YOLO(spec["resume"])
        model.train(resume=True)
    else:
        model = YOLO(spec.get("model", "yolov10n.yaml"))
        model.train(data=spec["data"], project=spec["project"], name=spec["name"], **spec["settings"])
    if spec.get("done"):
        Path(spec["done"]).write_text(json.dumps({"save_dir": str(model.trainer.save_dir), "t_start": t_start,
                                                  "t_end": time.monotonic()}))


if __name__ == "__main__":
    main(sys.argv[1])
