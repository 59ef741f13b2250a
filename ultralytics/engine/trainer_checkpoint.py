"""The trainer's checkpoints: what last.pt / best.pt hold, the order they are written in, and exact resume from
last.pt (settings, weights, optimizer, EMA, scaler, early stopping, results rows and rank 0's random generators).

A mixin of BaseTrainer (engine/trainer.py), which owns the attributes read here: args, model, ema, optimizer,
scaler, stopper, results, data, metrics, best_fitness, save_dir, wdir, last, best, rank, world_size, amp.
"""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from ultralytics.engine.results_log import ResultsLog
from ultralytics.utils import LOGGER, RANK, UserError
from ultralytics.utils.checkpoint import CHECKPOINT_FORMAT, read_checkpoint
from ultralytics.utils.files import atomic_torch_save
from ultralytics.utils.torch_utils import de_parallel
from ultralytics.version import __version__


class CheckpointMixin:
    """Write checkpoints at the end of an epoch; read one back to resume the run it came from."""

    # --- resume -----------------------------------------------------------------------------------
    def _resume_overrides(self, overrides: dict) -> dict:
        """Settings of the interrupted run, from its last.pt (only device/workers may be changed)."""
        path = overrides["resume"]
        if path is True:
            raise UserError("resume=True needs the checkpoint: resume='runs/train/exp/weights/last.pt'")
        path = Path(path)
        try:
            ckpt = read_checkpoint(path)
        except UserError as e:
            raise UserError(f"resume='{path}': {e}") from None
        if "optimizer" not in ckpt or "train_args" not in ckpt or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise UserError(f"cannot resume from '{path}': it is not a training checkpoint of this project "
                            "(it has no optimizer state); start a new run with model.load() instead")
        args = dict(ckpt["train_args"])
        if ckpt["epoch"] + 1 >= args["epochs"]:
            note = self._complete_results(path, ckpt)
            raise UserError(f"'{path}' finished all {args['epochs']} epochs; nothing to resume.{note} Start a new "
                            f"run (e.g. YOLO('{path}').train(epochs=...)) to fine-tune further")
        for k in ("device", "workers"):  # may differ on the machine that resumes; nothing else may
            if k in overrides:
                args[k] = overrides[k]
        args["resume"] = str(path)
        ckpt["save_dir"] = str(path.resolve().parent.parent)
        self.resume_ckpt = ckpt
        LOGGER.info(f"Resuming training from {path} at epoch {ckpt['epoch'] + 2} of {args['epochs']}")
        return args

    @staticmethod
    def _complete_results(path: Path, ckpt: dict) -> str:
        """A run killed between its last checkpoint and its results row: rewrite results.csv from the checkpoint."""
        rows = ckpt.get("train_results") or []
        log = ResultsLog(path.resolve().parent.parent / "results.csv")
        try:
            with open(log.path, newline="") as f:
                done = sum(1 for _ in f) - 1
        except OSError:
            done = -1
        if not rows or done == len(rows) or RANK not in (-1, 0):
            return ""
        log.restore(rows)
        return f" Its results.csv lacked rows that {path.name} holds and was completed from it."

    def _remove_stale_temp_files(self) -> None:
        """Delete the unfinished temp files ('.<name>.<random>.tmp') that a killed run leaves behind."""
        stale = [p for d in (self.save_dir, self.wdir) if d.is_dir() for p in d.glob(".*.tmp") if p.is_file()]
        for p in stale:
            p.unlink(missing_ok=True)
        if stale:
            LOGGER.info(f"Removed {len(stale)} unfinished temporary file(s) of the interrupted run: "
                        f"{', '.join(p.name for p in stale)}")

    def _load_resume_state(self) -> None:
        ckpt = self.resume_ckpt
        model = de_parallel(self.model)
        model.load_state_dict(ckpt["model"])
        self.ema.ema.load_state_dict(ckpt["ema"])
        self.ema.updates = ckpt["updates"]
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.start_epoch = ckpt["epoch"] + 1
        self.saved_epoch = ckpt["epoch"]
        self.best_fitness = ckpt.get("best_fitness")
        self.stopper.load_state_dict(ckpt.get("stopper", {}))
        self.results.restore(ckpt.get("train_results", []))
        rng = ckpt.get("rng") or {}
        if "torch" in rng and self.rank in (-1, 0):  # the checkpoint holds rank 0's generators
            torch.set_rng_state(rng["torch"])
            n = rng["numpy"]
            np.random.set_state(("MT19937", np.asarray(n["keys"], np.uint32), n["pos"], n["has_gauss"], n["cached"]))
            random.setstate((rng["python"][0], tuple(rng["python"][1]), rng["python"][2]))

    # --- checkpoints ------------------------------------------------------------------------------
    def checkpoint(self, epoch: int, row: dict) -> dict:
        model = de_parallel(self.model)
        _, keys, pos, has_gauss, cached = np.random.get_state()
        py_state = random.getstate()
        return {
            "format": CHECKPOINT_FORMAT, "version": __version__, "date": datetime.now().isoformat(),
            "epoch": epoch, "best_fitness": self.best_fitness,
            "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "ema": {k: v.detach().clone() for k, v in self.ema.ema.state_dict().items()},
            "updates": self.ema.updates, "optimizer": self.optimizer.state_dict(), "world_size": self.world_size,
            "scaler": self.scaler.state_dict() if self.amp else None,
            "stopper": self.stopper.state_dict(),
            "yaml": model.yaml, "names": dict(self.data["names"]),
            "train_args": {k: v for k, v in vars(self.args).items()},
            "train_metrics": {k: float(v) for k, v in (self.metrics.results_dict if self.metrics else {}).items()},
            "train_results": self.results.rows + [row],
            "rng": {"torch": torch.get_rng_state(),
                    "numpy": {"keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss),
                              "cached": float(cached)},
                    "python": [py_state[0], list(py_state[1]), py_state[2]]},
        }

    def save_model(self, epoch: int, improved: bool, row: dict) -> None:
        """best.pt and epochN.pt first, last.pt last: last.pt is the commit point that resume reads, so a crash
        between the writes re-runs this epoch, which rewrites the others identically."""
        ckpt = self.checkpoint(epoch, row)
        if improved:
            best = {k: v for k, v in ckpt.items() if k != "optimizer"}
            atomic_torch_save(best, self.best)
        if self.args.save_period > 0 and (epoch + 1) % self.args.save_period == 0:
            atomic_torch_save(ckpt, self.wdir / f"epoch{epoch + 1}.pt")
        atomic_torch_save(ckpt, self.last)
        self.saved_epoch = epoch

    def _last_note(self) -> str:
        """What last.pt holds now, and how to go on from it."""
        if self.saved_epoch is None:
            return f"No epoch finished, so nothing was saved ({self.last} was not written)"
        return (f"{self.last} holds epoch {self.saved_epoch + 1}, the last finished one; continue with "
                f"YOLO('{self.last}').train(resume=True)")
