"""BaseTrainer: the epoch loop, optimisation, EMA, checkpoints, results.csv and exact resume, in one process or
as one rank of a torchrun group (DistributedDataParallel).

Task specifics (datasets, model, criterion, validator, plots) live in the subclass (models/yolo/detect/train.py).
A step is `loss, items = criterion(model(img), batch)`: the forward runs through whatever wraps the model
(DDP, torch.compile); the criterion stays eager. Every file write, log line and validation happens on
rank 0; data order and augmentation derive from (seed, epoch); decisions that end the loop are broadcast.

Checkpoints and resume: engine/trainer_checkpoint.py; the per-step agreement of DDP ranks on skipping or
stopping: engine/trainer_ddp.py (mixins of BaseTrainer: their methods are BaseTrainer's).

Extension point: callbacks (utils/callbacks), fired at Ultralytics 8.4's trainer events with the trainer; a callback
may set `trainer.stop`. `teardown` fires last, after success and after an exception alike.

Columns by key: the subclass declares `loss_names` (the criterion's loss items, in their order); results.csv and the
progress table name the losses `train/<name>` and `val/<name>`, and the metrics by the keys of the validation's
`results_dict` (utils/metrics.py), so one more loss is one more name and one more metric one entry there.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ultralytics.cfg import get_cfg
from ultralytics.data.build import WaitClock
from ultralytics.engine.results_log import ResultsLog
from ultralytics.engine.trainer_checkpoint import CheckpointMixin
from ultralytics.engine.trainer_ddp import StepAgreementMixin
from ultralytics.utils import LOGGER, UserError, colorstr
from ultralytics.utils import dist
from ultralytics.utils.callbacks import CallbackError, Callbacks, add_integration_callbacks
from ultralytics.utils.files import atomic_write_text, increment_path
from ultralytics.utils.torch_utils import (EarlyStopping, ModelEMA, autocast, build_optimizer, init_seeds, lr_lambda,
                                           make_grad_scaler, select_device)

MAX_BAD_STEPS = 20  # consecutive non-finite losses before the run is stopped


class BaseTrainer(CheckpointMixin, StepAgreementMixin):
    """Train a model with the merged settings (cfg/default.yaml <- overrides)."""

    loss_names: tuple[str, ...] = ()  # subclass: the names of the criterion's loss items (n,), in their order

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
        self.metric_keys: list[str] = []  # the metric columns of the last validation
        self.ema = None
        self.criterion = None
        self.given_model = model
        self.results = ResultsLog(self.save_dir / "results.csv")
        self.bad_steps = 0
        self.bad_grad_steps = 0
        self.saved_epoch = None  # the epoch that last.pt holds (0-based), None before the first save
        self.stop = False  # a callback sets it to end the run after the current epoch
        self.tloss = None  # (len(loss_names),) mean train loss items of the epoch so far
        self.callbacks = callbacks.copy() if callbacks is not None else Callbacks()
        if not self.launch:
            add_integration_callbacks(self)

    def run_callbacks(self, event: str) -> None:
        self.callbacks.run(event, self)

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
        self.run_callbacks("optimizer_step")
        self.run_callbacks("on_before_zero_grad")
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.update(self.model)

    def _bad_step(self, epoch: int, i: int) -> None:
        """A non-finite loss: skip the step; stop the run after MAX_BAD_STEPS in a row."""
        self.bad_steps += 1
        LOGGER.warning(f"WARNING: non-finite loss at epoch {epoch + 1}, batch {i}: step skipped "
                       f"({self.bad_steps} in a row)")
        if self.bad_steps >= MAX_BAD_STEPS:
            raise NonFiniteLossError(f"the loss was NaN/inf for {MAX_BAD_STEPS} batches in a row at epoch "
                                     f"{epoch + 1}; stopping. {self._last_note()}. "
                                     "Lower lr0, check the labels, or turn amp off")

    # --- run: here, or through torchrun --------------------------------------------------------
    def train(self) -> None:
        """Run the epochs. Ctrl-C (KeyboardInterrupt) stops at once: last.pt keeps the last finished epoch.

        device=0,1 outside torchrun: start torchrun on this script (one process per GPU) and wait for it.
        """
        if self.launch:
            dist.launch(self.args.device, self.save_dir)
            self.after_launch()
            return
        ok = False
        try:
            self._train()
            ok = True
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
            self._teardown(ok)
        if self.world_size > 1:
            dist.barrier()  # rank 0 finished its final validation
            dist.cleanup()
            if os.environ.get(dist.LAUNCHED_ENV):  # a process of launch(): the launching process carries on
                raise SystemExit(0)

    def _teardown(self, ok: bool) -> None:
        """Fire `teardown` (writers close there); when the run already failed, a failing teardown callback is
        logged and the run's own exception goes on."""
        try:
            self.run_callbacks("teardown")
        except CallbackError as e:
            if ok:
                raise
            LOGGER.warning(f"WARNING ⚠️ {e} (while the run was ending on an error)")

    def after_launch(self) -> None:
        """In the process that started torchrun, once training is over (subclass: read the results)."""

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
            self.tloss = tloss = torch.zeros(len(self.loss_names), device=self.device)
            self.run_callbacks("on_train_epoch_start")
            LOGGER.info(("\n" + "%11s" * (4 + len(self.loss_names))) % ("Epoch", "GPU_mem", *self.loss_names,
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
                if items.numel() != len(self.loss_names):
                    raise ValueError(f"{type(self.criterion).__name__} returned {items.numel()} loss items but "
                                     f"{type(self).__name__}.loss_names has {len(self.loss_names)}: "
                                     f"{self.loss_names}; name each item once, in the criterion's order")
                self.tloss = tloss = (tloss * (n_good - 1) + items) / n_good
                if main:
                    mem = f"{torch.cuda.memory_reserved() / 1e9 if torch.cuda.is_available() else 0:.3g}G"
                    pbar.set_description(("%11s" * 2 + "%11.4g" * (2 + len(self.loss_names))) % (
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
            self.run_callbacks("on_params_update")  # the learning rates of the next epoch are set
            stop = False
            if main:
                stop = self._end_epoch(epoch, tloss, lr, t_start, t_before)
            LOGGER.debug(f"epoch {epoch + 1} took {time.time() - t_epoch:.1f}s")
            if dist.broadcast_flag(stop, self.device):  # rank 0 decides; the others wait here while it validates
                break
        self.final_eval(epoch, time.time() - t_start)
        self.run_callbacks("on_train_end")  # teardown follows in train(), after success and after an error

    def _end_epoch(self, epoch: int, tloss: torch.Tensor, lr: dict, t_start: float, t_before: float) -> bool:
        """Rank 0: validate, save last/best, append the results row, plot; return True to stop the run."""
        final_epoch = epoch + 1 >= self.epochs or self.stopper.possible_stop or self.stop
        if self.args.val or final_epoch:
            self.metrics, val_loss = self.validate()
            self.metric_keys = list(self.metrics.keys)
        else:  # an unvalidated epoch logs zeros (under the keys of the last validation; results_log adds any later)
            self.metrics, val_loss = None, torch.zeros(len(self.loss_names))
        self.fitness = fitness = float(self.metrics.fitness) if self.metrics is not None else 0.0
        improved = self.best_fitness is None or fitness > self.best_fitness
        if improved:
            self.best_fitness = fitness
        metrics = self.metrics.results_dict if self.metrics is not None else dict.fromkeys(self.metric_keys, 0.0)
        row = self.results.make_row(epoch + 1, dict(zip(self.loss_names, tloss.tolist())), metrics,
                                    dict(zip(self.loss_names, val_loss.tolist())), lr,
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


class NonFiniteLossError(UserError):
    """The loss stayed NaN/inf: the run was stopped; last.pt holds the last good epoch."""
