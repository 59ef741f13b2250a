"""BaseTrainer: the epoch loop, optimisation, EMA, checkpoints, results.csv and exact resume, in one process or
as one rank of a torchrun group (DistributedDataParallel).

Task specifics (datasets, model, criterion, validator, plots) live in the subclass (models/yolo/detect/train.py).
A step is `loss, items = criterion(model(img), batch)`: the forward runs through whatever wraps the model
(DDP, torch.compile); the criterion stays eager. Every file write, log line and validation happens on
rank 0; data order and augmentation derive from (seed, epoch); decisions that end the loop are broadcast.

Extension point: callbacks (utils/callbacks), fired at the named events; a callback may set `trainer.stop`.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ultralytics.cfg import get_cfg
from ultralytics.data.build import WaitClock
from ultralytics.engine.results_log import ResultsLog
from ultralytics.utils import LOGGER, RANK, UserError, colorstr
from ultralytics.utils import dist
from ultralytics.utils.callbacks import CallbackError, Callbacks, add_integration_callbacks
from ultralytics.utils.checkpoint import CHECKPOINT_FORMAT, read_checkpoint
from ultralytics.utils.files import atomic_torch_save, atomic_write_text, increment_path
from ultralytics.utils.torch_utils import (EarlyStopping, ModelEMA, autocast, build_optimizer, de_parallel,
                                           init_seeds, lr_lambda, make_grad_scaler, select_device)
from ultralytics.version import __version__

MAX_BAD_STEPS = 20  # consecutive non-finite losses before the run is stopped


class BaseTrainer:
    """Train a model with the merged settings (cfg/default.yaml <- overrides)."""

    def __init__(self, overrides: dict | None = None, model=None, callbacks: Callbacks | None = None):
        overrides = dict(overrides or {})
        self.resume_ckpt = None
        if overrides.get("resume"):
            overrides["resume"] = get_cfg(overrides={"mode": "train", **overrides}).resume  # bad values named first
            overrides = self._resume_overrides(overrides)
        self.args = get_cfg(overrides={"mode": "train", **overrides})
        self.launch = dist.launch_needed(self.args.device)  # device=0,1 outside torchrun: start torchrun
        self.world_size = dist.env_world_size()
        if dist.under_torchrun():  # settings checked before anything is written or joined
            self.device = dist.process_device(self.args.device, self.args.batch)
        else:
            self.device = select_device(self.args.device, self.args.batch)
        if self.resume_ckpt is not None:
            saved = int(self.resume_ckpt.get("world_size", 1))
            if saved != (len(dist.cuda_ids(self.args.device)) if self.launch else self.world_size):
                raise UserError(f"resume='{self.args.resume}': that run trained with world size {saved}; resume it "
                                f"with the same number of processes (now {self.world_size}) so no image is lost "
                                "or repeated")
        self.backend = dist.setup(self.device) if self.world_size > 1 else None
        self.rank = dist.rank()
        self.amp = bool(self.args.amp) and self.device.type == "cuda"
        init_seeds(self.args.seed + 1 + max(self.rank, 0), deterministic=self.args.deterministic)
        if self.resume_ckpt is not None:
            self.save_dir = Path(self.resume_ckpt["save_dir"])
        elif os.environ.get(dist.SAVE_DIR_ENV):  # a process of launch(): the launcher claimed the directory
            self.save_dir = Path(os.environ[dist.SAVE_DIR_ENV])
        else:
            project = Path(self.args.project or "runs/train")
            claim = self.rank in (-1, 0)  # rank 0 claims exp, exp2, ...; the others take its choice
            self.save_dir = dist.broadcast_object(
                increment_path(project / (self.args.name or "exp"), exist_ok=self.args.exist_ok) if claim else None)
        self.wdir = self.save_dir / "weights"
        self.last, self.best = self.wdir / "last.pt", self.wdir / "best.pt"
        if self.rank in (-1, 0) and not self.launch:
            self.wdir.mkdir(parents=True, exist_ok=True)
            if self.resume_ckpt is not None:
                self._remove_stale_temp_files()
            import yaml

            atomic_write_text(self.save_dir / "args.yaml", yaml.safe_dump(vars(self.args), sort_keys=False))
        self.epochs = self.args.epochs
        self.start_epoch = 0
        self.best_fitness = None
        self.fitness = None
        self.metrics = None
        self.ema = None
        self.criterion = None
        self.given_model = model
        self.results = ResultsLog(self.save_dir / "results.csv")
        self.bad_steps = 0
        self.bad_grad_steps = 0
        self.saved_epoch = None  # the epoch that last.pt holds (0-based), None before the first save
        self.stop = False  # a callback sets it to end the run after the current epoch
        self.tloss = None  # mean (box, cls, dfl) train loss of the epoch so far
        self.callbacks = callbacks.copy() if callbacks is not None else Callbacks()
        if not self.launch:
            add_integration_callbacks(self)

    def run_callbacks(self, event: str) -> None:
        self.callbacks.run(event, self)

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

    # --- optimisation -----------------------------------------------------------------------------
    def _setup_optimization(self) -> None:
        args, n_train = self.args, len(self.train_loader.dataset)
        batch = self.batch_size * self.world_size  # the global batch: accumulation and decay follow it
        self.accumulate = max(round(args.nbs / batch), 1)
        weight_decay = args.weight_decay * batch * self.accumulate / args.nbs
        iterations = math.ceil(n_train / max(batch, args.nbs)) * self.epochs
        self.optimizer = build_optimizer(self.model, args.optimizer, args.lr0, args.momentum, weight_decay,
                                         iterations, self.data["nc"])
        self.bias_group = next(j for j, g in enumerate(self.optimizer.param_groups) if g.get("name") == "bias")
        self.lf = lr_lambda(args.cos_lr, args.lrf, self.epochs)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda=self.lf)
        self.scaler = make_grad_scaler(self.amp, self.device)
        self.ema = ModelEMA(self.model)
        self.stopper = EarlyStopping(patience=args.patience)

    def _warmup(self, ni: int, nw: int, epoch: int) -> None:
        """Linear warmup of lr (bias lr from warmup_bias_lr down) and momentum over the first nw iterations."""
        xi = [0, nw]
        self.accumulate = max(1, int(np.interp(ni, xi, [1, self.args.nbs / (self.batch_size * self.world_size)]).round()))
        for j, g in enumerate(self.optimizer.param_groups):
            start = self.args.warmup_bias_lr if j == self.bias_group else 0.0
            g["lr"] = float(np.interp(ni, xi, [start, g["initial_lr"] * self.lf(epoch)]))
            if "momentum" in g:
                g["momentum"] = float(np.interp(ni, xi, [self.args.warmup_momentum, self.args.momentum]))

    def optimizer_step(self) -> None:
        self.scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=10.0)
        if not self.scaler.is_enabled() and not torch.isfinite(norm):  # (with AMP the scaler skips such steps)
            self.optimizer.zero_grad(set_to_none=True)
            self.bad_grad_steps += 1
            LOGGER.warning(f"WARNING: non-finite gradients at epoch {self.epoch + 1}: optimizer step skipped "
                           f"({self.bad_grad_steps} in a row)")
            if self.bad_grad_steps >= MAX_BAD_STEPS:
                raise NonFiniteLossError(f"the gradients were NaN/inf for {MAX_BAD_STEPS} optimizer steps in a row "
                                         f"at epoch {self.epoch + 1}; stopping. {self._last_note()}")
            return
        self.bad_grad_steps = 0
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.update(self.model)

    # --- run: here, or through torchrun --------------------------------------------------------
    def train(self) -> None:
        """Run the epochs. Ctrl-C (KeyboardInterrupt) stops at once: last.pt keeps the last finished epoch.

        device=0,1 outside torchrun: start torchrun on this script (one process per GPU) and wait for it.
        """
        if self.launch:
            dist.launch(self.args.device, self.save_dir)
            self.after_launch()
            return
        try:
            self._train()
        except CallbackError as e:
            raise CallbackError(f"{e}. {self._last_note()}") from e.__cause__
        except KeyboardInterrupt:
            if self.rank in (-1, 0):
                LOGGER.warning(f"\nWARNING: training interrupted (KeyboardInterrupt) in epoch "
                               f"{getattr(self, 'epoch', self.start_epoch) + 1}/{self.epochs}. {self._last_note()}")
            raise
        finally:
            if hasattr(self, "sigint"):
                self.sigint.restore()
        if self.world_size > 1:
            dist.barrier()  # rank 0 finished its final validation
            dist.cleanup()
            if os.environ.get(dist.LAUNCHED_ENV):  # a process of launch(): the launching process carries on
                raise SystemExit(0)

    def after_launch(self) -> None:
        """In the process that started torchrun, once training is over (subclass: read the results)."""

    def _last_note(self) -> str:
        """What last.pt holds now, and how to go on from it."""
        if self.saved_epoch is None:
            return f"No epoch finished, so nothing was saved ({self.last} was not written)"
        return (f"{self.last} holds epoch {self.saved_epoch + 1}, the last finished one; continue with "
                f"YOLO('{self.last}').train(resume=True)")

    def _step_flags(self, loss: torch.Tensor | None) -> tuple[bool, bool, int]:
        """(the loss is non-finite on some rank, Ctrl-C was pressed on some rank, the highest rank whose step raised
        or -1; loss None: this one raised): one all-reduce under DDP."""
        raised = self.rank + 1 if loss is None else 0
        bad, stop, raised = dist.max_over_ranks(
            [loss is not None and not bool(torch.isfinite(loss)), self.sigint.pressed, raised], self.device)
        return bad > 0, stop > 0, int(raised) - 1

    def _coordinated_stop(self, error: Exception | None, raised: int, epoch: int, i: int) -> None:
        """Every rank stops at this step, having learnt at the same all-reduce that a rank raised (raised >= 0) or
        that Ctrl-C was pressed: the rank that raised re-raises its error, the others raise PeerError, and for an
        interrupt all raise KeyboardInterrupt; none is left waiting in a collective."""
        where = dict(epoch=epoch + 1, batch=i)
        if raised >= 0:
            dist.write_exit_record(stop="exception", raised_by=raised, raised_here=error is not None, **where)
            if error is not None:
                raise error
            raise dist.PeerError(f"rank {raised} raised an error at epoch {epoch + 1}, batch {i} (its traceback is "
                                 f"above); rank {self.rank} stopped at the same step")
        dist.write_exit_record(stop="interrupt", pressed_here=self.sigint.pressed, **where)
        raise KeyboardInterrupt

    # --- the loop ---------------------------------------------------------------------------------
    def _train(self) -> None:
        self.run_callbacks("on_pretrain_routine_start")
        self.setup()  # subclass: data, model (DDP-wrapped under torchrun), criterion, loaders, validator
        self._setup_optimization()
        if self.resume_ckpt is not None:
            self._load_resume_state()
        self.sigint = dist.SigintFlag(active=self.world_size > 1)  # Ctrl-C under DDP: a flag all ranks see
        self.scheduler.last_epoch = self.start_epoch - 1
        nb = len(self.train_loader)
        nw = max(round(self.args.warmup_epochs * nb), 100) if self.args.warmup_epochs > 0 else -1
        last_opt_step = self.start_epoch * nb - 1
        self.optimizer.zero_grad(set_to_none=True)
        self.run_callbacks("on_pretrain_routine_end")
        if self.world_size > 1:
            LOGGER.info(f"DDP: world size {self.world_size}, backend {self.backend}, {self.batch_size} images per "
                        "process")
        LOGGER.info(f"Image sizes {self.args.imgsz} train, {self.args.imgsz} val\n"
                    f"Using {self.train_loader.num_workers} dataloader workers\n"
                    f"Logging results to {colorstr('bold', self.save_dir)}\n"
                    f"Starting training for {self.epochs} epochs...")
        main = self.rank in (-1, 0)
        t_start, t_before = time.time(), self.results.elapsed()  # a resumed run adds to the earlier time
        epoch = self.start_epoch
        self.run_callbacks("on_train_start")
        for epoch in range(self.start_epoch, self.epochs):
            t_epoch = time.time()
            self.epoch = epoch
            self.model.train()
            if hasattr(self.criterion, "set_epoch"):
                self.criterion.set_epoch(epoch)  # loss weights that follow the epoch (also after a resume)
            if self.args.close_mosaic and epoch == self.epochs - self.args.close_mosaic:
                LOGGER.info("Closing dataloader mosaic")
                self.train_loader.dataset.close_mosaic()
            elif self.args.close_mosaic and epoch > self.epochs - self.args.close_mosaic:
                self.train_loader.dataset.close_mosaic()  # resumed after the switch: keep it closed
            self.train_loader.set_epoch(epoch)
            self.tloss = tloss = torch.zeros(3, device=self.device)
            self.run_callbacks("on_train_epoch_start")
            LOGGER.info(("\n" + "%11s" * 7) % ("Epoch", "GPU_mem", "box_loss", "cls_loss", "dfl_loss",
                                                "Instances", "Size"))
            clock = WaitClock(self.train_loader)  # time waiting for data vs the rest, logged after the epoch
            pbar = tqdm(enumerate(clock), total=nb, bar_format="{l_bar}{bar:10}{r_bar}", disable=not main)
            n_good, synced = 0, True
            for i, batch in pbar:
                ni = i + nb * epoch
                self.run_callbacks("on_train_batch_start")
                if ni <= nw:
                    self._warmup(ni, nw, epoch)
                batch = self.preprocess_batch(batch)
                step_now = ni - last_opt_step >= self.accumulate
                sync = step_now or i == nb - 1  # DDP all-reduces gradients only where they are used
                with (self.model.no_sync() if self.world_size > 1 and not sync else contextlib.nullcontext()):
                    error = None
                    try:
                        with autocast(self.amp, self.device):
                            loss, items = self.criterion(self.train_model(batch["img"]), batch)
                        loss = loss * self.world_size  # DDP averages gradients: the sum over ranks is the full batch's
                    except Exception as e:  # under DDP the other ranks learn of it below, instead of waiting forever
                        if self.world_size == 1:
                            raise
                        error, loss = e, None
                    bad, interrupted, raised = self._step_flags(loss)
                    if raised >= 0 or interrupted:
                        self._coordinated_stop(error, raised, epoch, i)
                    if bad:
                        self._bad_step(epoch, i)  # nothing was backpropagated: earlier accumulated gradients stay
                        synced = False
                        continue
                    self.bad_steps = 0
                    self.scaler.scale(loss).backward()
                    synced = sync
                if step_now:
                    self.optimizer_step()
                    last_opt_step = ni
                n_good += 1
                self.tloss = tloss = (tloss * (n_good - 1) + items) / n_good
                if main:
                    mem = f"{torch.cuda.memory_reserved() / 1e9 if torch.cuda.is_available() else 0:.3g}G"
                    pbar.set_description(("%11s" * 2 + "%11.4g" * 5) % (
                        f"{epoch + 1}/{self.epochs}", mem, *tloss.tolist(), batch["cls"].shape[0],
                        batch["img"].shape[-1]))
                    if self.args.plots and epoch == 0 and i < 3:
                        self.plot_training_samples(batch, i)
                self.run_callbacks("on_train_batch_end")
            pbar.close()
            if main:
                LOGGER.info(f"epoch {epoch + 1} {clock.report()}")
            if last_opt_step < nb * (epoch + 1) - 1 and n_good:
                if self.world_size > 1 and not synced:
                    dist.average_gradients(self.model.parameters())  # the skipped last micro-batch did not sync
                self.optimizer_step()  # no gradients carried into the next epoch: a resumed run sees the same
                last_opt_step = nb * (epoch + 1) - 1
            self.tloss = tloss = dist.mean_over_ranks(tloss)  # the row shows the loss over all ranks' images
            lr = {f"lr/pg{j}": g["lr"] for j, g in enumerate(self.optimizer.param_groups)}
            self.run_callbacks("on_train_epoch_end")
            self.scheduler.step()
            stop = False
            if main:
                stop = self._end_epoch(epoch, tloss, lr, t_start, t_before)
            LOGGER.debug(f"epoch {epoch + 1} took {time.time() - t_epoch:.1f}s")
            if dist.broadcast_flag(stop, self.device):  # rank 0 decides; the others wait here while it validates
                break
        self.final_eval(epoch, time.time() - t_start)
        self.run_callbacks("on_train_end")

    def _end_epoch(self, epoch: int, tloss: torch.Tensor, lr: dict, t_start: float, t_before: float) -> bool:
        """Rank 0: validate, save last/best, append the results row, plot; return True to stop the run."""
        final_epoch = epoch + 1 >= self.epochs or self.stopper.possible_stop or self.stop
        if self.args.val or final_epoch:
            self.metrics, val_loss = self.validate()
        else:
            self.metrics, val_loss = None, torch.zeros(3)
        self.fitness = fitness = float(self.metrics.fitness) if self.metrics is not None else 0.0
        improved = self.best_fitness is None or fitness > self.best_fitness
        if improved:
            self.best_fitness = fitness
        row = self.results.make_row(epoch + 1, tloss.tolist(), self.metrics, val_loss.tolist(), lr,
                                    t_before + time.time() - t_start)
        stop = self.stopper(epoch + 1, fitness)
        if self.args.time and (time.time() - t_start) / 3600 > self.args.time:
            LOGGER.info(f"Stopping: the time budget time={self.args.time} hours is spent")
            stop = True
        if self.args.save:  # save=False: results.csv only, no checkpoints
            self.save_model(epoch, improved, row)  # the checkpoint first, then the results row
        self.results.append(row)
        if self.args.save:
            self.run_callbacks("on_model_save")
        if self.args.plots:
            self.plot_metrics()
        self.run_callbacks("on_fit_epoch_end")
        if self.stop and epoch + 1 < self.epochs:
            LOGGER.info(f"Stopping after epoch {epoch + 1}: a callback set trainer.stop")
        return stop or self.stop

    def _bad_step(self, epoch: int, i: int) -> None:
        """A non-finite loss: skip the step; stop the run after MAX_BAD_STEPS in a row."""
        self.bad_steps += 1
        LOGGER.warning(f"WARNING: non-finite loss at epoch {epoch + 1}, batch {i}: step skipped "
                       f"({self.bad_steps} in a row)")
        if self.bad_steps >= MAX_BAD_STEPS:
            raise NonFiniteLossError(f"the loss was NaN/inf for {MAX_BAD_STEPS} batches in a row at epoch "
                                     f"{epoch + 1}; stopping. {self._last_note()}. "
                                     "Lower lr0, check the labels, or turn amp off")

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


class NonFiniteLossError(UserError):
    """The loss stayed NaN/inf: the run was stopped; last.pt holds the last good epoch."""
