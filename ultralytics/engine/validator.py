"""BaseValidator: the task-agnostic validation loop (setup, the batch loop, losses in training, timing, callbacks).

A task subclasses it (models/yolo/detect/val.py: DetectionValidator) and defines what is specific to it: the
dataset and loader (`get_data`, `get_dataloader`), `init_metrics`, `preprocess`, `postprocess`, `update_metrics`,
`finalize` (metrics, table, plots, files), `plot_batch` and `get_desc` (the progress bar's header).
Events, each called with the validator: on_val_start (model and loader ready, before the first batch),
on_val_batch_start (before a batch's preprocess; `self.batch_i`, `self.batch`), on_val_batch_end (the batch's
metrics updated; `self.preds`), on_val_end (metrics computed: `self.metrics`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ultralytics.utils import UserError


class BaseValidator:
    """Validate during training (`validator(trainer=...)`) or standalone (`validator(model=...)`).

    Standalone, the model is prepared once (nn/backend.py prepare_inference_model: a fused copy with the head mode
    of `nms`/`max_det`, on the device, half on CUDA) and kept in `cache` (the caller's dict) for the next call.
    During training the trainer's EMA model is scored in place (its head mode restored afterwards) and `self.loss`
    accumulates the criterion's validation losses over the batches.
    """

    def __init__(self, dataloader=None, save_dir: Path | None = None, args=None, overrides: dict | None = None,
                 callbacks=None, cache: dict | None = None):
        from ultralytics.cfg import get_cfg
        from ultralytics.utils.callbacks import Callbacks

        self.args = args if args is not None else get_cfg(overrides={"mode": "val", **(overrides or {})})
        self.dataloader = dataloader
        self.save_dir = Path(save_dir) if save_dir is not None else None
        self.training = False
        self.loss = None
        self.data = None
        self.device = None
        self.batch_i, self.batch, self.preds = 0, None, None
        self.seen = 0
        self.cache = cache
        self.dataloader_wait = 0.0  # ms per image spent waiting for the loader (last run)
        self.callbacks = callbacks if callbacks is not None else Callbacks()

    # --- setup ------------------------------------------------------------------------------------
    def _standalone_setup(self, model):
        """Resolve what was not given (dataset, device, loader, run dir); return the prepared model."""
        from ultralytics.nn.backend import prepare_inference_model
        from ultralytics.utils.files import increment_path
        from ultralytics.utils.torch_utils import select_device

        args = self.args
        if self.data is None:
            self.data = self.get_data(model)
        self.check_model(model)
        if self.device is None:
            self.device = select_device(args.device, args.batch, verbose=False)
        if self.dataloader is None:
            self.dataloader = self.get_dataloader(int(model.stride.max()))
            if getattr(model, "dynamic", True) is False:  # an exported fixed-shape graph: square imgsz letterboxes
                self.dataloader.dataset.rect = False
            self._own_loader = True
        if self.save_dir is None:
            project = Path(args.project or "runs/val")
            self.save_dir = increment_path(project / (args.name or "exp"), exist_ok=args.exist_ok)
        return prepare_inference_model(model, args, self.device, self.cache)

    def set_head(self, model) -> tuple | None:
        """Make the head decode what `nms` asks for, up to max_det boxes; returns the previous (nms, max_det)."""
        head = model.model[-1] if hasattr(model, "model") else None
        if not hasattr(head, "nms"):
            return None
        prev = (head.nms, head.max_det)
        head.nms, head.max_det = bool(self.args.nms), int(self.args.max_det)
        return prev

    # --- main -------------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, trainer=None, model=None):
        """Score `model` (standalone) or the trainer's model; returns the task's metrics object."""
        self.training = trainer is not None
        self._own_loader = False
        head_state = None
        if self.training:
            self.device, self.data = trainer.device, trainer.data
            model = trainer.ema.ema if trainer.ema else trainer.model
            head_state = self.set_head(model)  # restored below: the trained model is left as it was
            half = bool(trainer.amp)
            model = model.half() if half else model.float()
            self.loss = None
        else:
            if model is None:
                raise UserError(f"{type(self).__name__} needs a model or a trainer")
            model = self._standalone_setup(model)  # eval, half on CUDA when asked
            half = bool(self.args.half) and self.device.type == "cuda"
        model.eval()
        self.model, self.half = model, half
        self.init_metrics()
        self.callbacks.run("on_val_start", self)
        self.on_start()
        plots = bool(self.args.plots) and not self.training
        cuda = self.device.type == "cuda"
        dt, wait, n_wait = np.zeros(4), 0.0, 0
        loader = self.dataloader
        bar = tqdm(loader, total=len(loader), desc=self.get_desc(), bar_format="{l_bar}{bar:10}{r_bar}",
                   disable=not self.args.verbose)
        t_ready = time.perf_counter()
        for bi, batch in enumerate(bar):
            self.batch_i, self.batch = bi, batch
            self.callbacks.run("on_val_batch_start", self)
            t0 = time.perf_counter()
            if bi:  # the first batch also waits for the workers to start
                wait, n_wait = wait + t0 - t_ready, n_wait + len(batch["im_file"])
            batch = self.batch = self.preprocess(batch, half)
            t1 = _sync(cuda)
            if self.training:
                preds, raw = model(batch["img"], raw=True)
                t2 = _sync(cuda)
                loss = trainer.criterion(raw, batch)[1]
                self.loss = loss if self.loss is None else self.loss + loss
            else:
                preds = self.inference(model, batch)
                t2 = _sync(cuda)
            t3 = _sync(cuda)
            self.preds = preds = self.postprocess(preds)
            self.update_metrics(preds, batch)
            t4 = time.perf_counter()
            dt += (t1 - t0, t2 - t1, t3 - t2, t4 - t3)
            if plots and bi < 3:
                self.plot_batch(batch, preds, bi)
            self.callbacks.run("on_val_batch_end", self)
            t_ready = time.perf_counter()
        n = max(self.seen, 1)
        self.metrics.speed = dict(zip(("preprocess", "inference", "loss", "postprocess"), (dt * 1e3 / n).tolist()))
        self.dataloader_wait = wait * 1e3 / max(n_wait, 1)
        self.finalize()
        if not self.training:
            self._starvation_hint(loader)
        if self._own_loader:
            self.dataloader = None  # stops its worker processes
        if self.training:
            if head_state is not None:
                model.model[-1].nms, model.model[-1].max_det = head_state
            model.float()
        self.callbacks.run("on_val_end", self)
        return self.metrics

    def inference(self, model, batch: dict):
        """The model's output on a preprocessed batch (standalone validation; training runs the raw forward)."""
        return model(batch["img"])

    def _starvation_hint(self, loader) -> None:
        """Say so when the model mostly waited for images (too few loader workers for this machine)."""
        from ultralytics.utils import LOGGER

        busy = sum(self.metrics.speed.values())
        if len(loader) > 2 and self.dataloader_wait > max(busy, 1.0):
            LOGGER.info(f"Note: {self.dataloader_wait:.1f}ms per image were spent waiting for the dataloader "
                        f"({getattr(loader, 'num_workers', 0)} workers); more workers= or cache=ram would help")

    # --- the task's part --------------------------------------------------------------------------
    def get_data(self, model) -> dict:
        """The dataset dict (names, nc, split paths) to validate on."""
        raise NotImplementedError(f"{type(self).__name__} must define get_data")

    def check_model(self, model) -> None:
        """Raise a UserError when the model cannot be scored on self.data (e.g. class counts differ)."""

    def get_dataloader(self, stride: int):
        """The loader over args.split."""
        raise NotImplementedError(f"{type(self).__name__} must define get_dataloader")

    def get_desc(self) -> str:
        """The progress bar's header."""
        return ""

    def on_start(self) -> None:
        """Called after on_val_start, before the first batch (e.g. a line saying what is scored)."""

    def init_metrics(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define init_metrics")

    def preprocess(self, batch: dict, half: bool) -> dict:
        return batch

    def postprocess(self, preds):
        return preds

    def update_metrics(self, preds, batch: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define update_metrics")

    def finalize(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define finalize")

    def plot_batch(self, batch: dict, preds, bi: int) -> None:
        """Plots of one batch (standalone, plots=True, the first 3 batches)."""


def _sync(cuda: bool) -> float:
    """time.perf_counter() after the GPU finished its queued work (so timings are real)."""
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter()
