"""One process of the DDP tests (tests/test_ddp.py): `torchrun --nproc_per_node 2 tests/ddp_child.py SPEC.json`
(or plain `python tests/ddp_child.py SPEC.json` for the single-process reference).

SPEC: {"settings": {...train settings...}, "out": dir, "mode": "train" | "grads" | "fail" | "nan" | "sigint" |
       "crash_after_epoch",
       "fail_rank": int, "fail_batch": int}
Writes out/rank{R}.json: per optimizer step a SHA-1 of all parameters; in "grads" mode also out/grads{R}.pt,
the gradients seen by the first optimizer step (BatchNorm frozen: running statistics, no update).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ultralytics import YOLO  # noqa: E402
from ultralytics.nn.registry import register_module  # noqa: E402
from ultralytics.engine import results_log, trainer as trainer_mod  # noqa: E402
from ultralytics.utils.loss import v10DetectLoss  # noqa: E402


class DDPScale(torch.nn.Module):
    """A per-channel learnable scale, registered here: the test model YAML uses it in place of PSA, so every
    process started by torchrun must have run this registration (x: (B, C, H, W) -> same)."""

    def __init__(self, c1: int):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1, c1, 1, 1))

    def forward(self, x):
        return x * self.w


register_module(DDPScale, "same")


def params_hash(model) -> str:
    h = hashlib.sha1()
    for p in model.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def frozen_bn(self, x):
    """BatchNorm with its running statistics (as in eval mode): per-process batches then give the same output."""
    return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    out, mode = Path(spec["out"]), spec.get("mode", "train")
    rank = int(os.environ.get("RANK", -1))
    record = {"hashes": []}
    real_step = trainer_mod.BaseTrainer.optimizer_step

    def step(self):
        if mode == "grads" and not record["hashes"]:
            grads = {n: p.grad.detach().clone() for n, p in self.model.named_parameters() if p.grad is not None}
            torch.save({k.removeprefix("module."): v for k, v in grads.items()}, out / f"grads{rank}.pt")
        real_step(self)
        proj = getattr(self.criterion, "proj", None)  # distillation's projector (not DDP's), when there is one
        record["hashes"].append(params_hash(self.model) + (params_hash(proj) if proj is not None else ""))

    trainer_mod.BaseTrainer.optimizer_step = step
    if mode == "grads":
        torch.nn.BatchNorm2d.forward = frozen_bn
    if mode in ("fail", "nan"):
        real_loss, seen = v10DetectLoss.__call__, {"n": 0}

        def failing(self, preds, batch):
            out = real_loss(self, preds, batch)
            if torch.is_grad_enabled():
                seen["n"] += 1
                if rank == spec["fail_rank"] and seen["n"] == spec["fail_batch"]:
                    if mode == "nan":  # a non-finite loss on this rank alone
                        return out[0] * float("nan"), out[1]
                    raise RuntimeError(f"boom on rank {rank} at batch {seen['n']}")
            return out

        v10DetectLoss.__call__ = failing
    if mode == "sigint":  # rank 0 announces its pid at a training batch and waits there for one SIGINT
        real_loss, seen = v10DetectLoss.__call__, {"n": 0}

        def waiting(self, preds, batch):
            if torch.is_grad_enabled() and rank == 0:
                seen["n"] += 1
                if seen["n"] == spec["fail_batch"]:
                    import signal
                    import time

                    flag = signal.getsignal(signal.SIGINT).__self__  # the trainer's SigintFlag
                    (out / "pid").write_text(str(os.getpid()))
                    deadline = time.time() + 60
                    while not flag.pressed and time.time() < deadline:
                        time.sleep(0.02)
            return real_loss(self, preds, batch)

        v10DetectLoss.__call__ = waiting
    if mode == "crash_after_epoch":
        real_append = results_log.ResultsLog.append

        def append(self, row):
            real_append(self, row)
            if row["epoch"] == spec["epoch"]:
                os._exit(3)  # the process dies right after the epoch is safely written

        results_log.ResultsLog.append = append
    out.mkdir(parents=True, exist_ok=True)
    settings = dict(spec["settings"])
    if settings.get("resume"):
        model, settings = YOLO(settings["resume"]), {**settings, "resume": True}
    else:
        model = YOLO(settings.pop("model"))
    model.train(**settings)
    (out / f"rank{rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(sys.argv[1])
