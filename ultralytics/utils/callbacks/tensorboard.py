"""TensorBoard event files for a training run, written by callbacks (the trainer knows nothing of them).

Into the run directory (`tensorboard --logdir runs/train`): every results.csv column but `epoch` as a scalar
per epoch (step = epoch, 1-based: losses, metrics, lr/pg0..2 per parameter group, time); the running mean
train losses every BATCH_PERIOD batches (tags `batch/...`, step = batches done); at the end the images
train_batch*.jpg, val_batch*_pred.jpg and PR_curve.png that the run drew; the model graph when asked
(tensorboard_graph=True, traced once before the first epoch). The writer closes at `teardown`, which the trainer
fires after a run that raised too, so the event file is complete either way.
"""

from __future__ import annotations

from pathlib import Path

from ultralytics.utils import LOGGER

BATCH_PERIOD = 10  # per-batch losses every this many batches
IMAGE_PATTERNS = ("train_batch*.jpg", "val_batch*_pred.jpg", "PR_curve.png")
INSTALL = "pip install tensorboard"


class TensorBoardLogger:
    """One per run; its bound methods are the callbacks (rank 0 only, as callbacks are by default)."""

    def __init__(self, summary_writer, graph: bool = False):
        self.summary_writer, self.graph = summary_writer, graph
        self.writer = None
        self.batches = 0

    @classmethod
    def register(cls, callbacks, graph: bool = False) -> "TensorBoardLogger | None":
        """Add the logger's callbacks; when tensorboard is not installed say so and add nothing (training runs)."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            LOGGER.warning(f"WARNING ⚠️ tensorboard=True but the tensorboard package is not installed, so no event "
                           f"files are written: {INSTALL} (or tensorboard=False to silence this)")
            return None
        logger = cls(SummaryWriter, graph)
        for event in ("on_train_start", "on_train_batch_end", "on_fit_epoch_end", "on_train_end", "teardown"):
            callbacks.add(event, getattr(logger, event))
        return logger

    def on_train_start(self, trainer) -> None:
        """The writer is made once the run is set up (a run that fails its setup leaves no event file)."""
        self.writer = self.summary_writer(str(trainer.save_dir))
        LOGGER.info(f"TensorBoard: start with 'tensorboard --logdir {trainer.save_dir.parent}', view at "
                    "http://localhost:6006/")
        self.batches = trainer.start_epoch * len(trainer.train_loader)  # a resumed run goes on from its epoch
        if self.graph:
            self._add_graph(trainer)

    def on_train_batch_end(self, trainer) -> None:
        self.batches += 1
        if self.batches % BATCH_PERIOD == 0:
            for name, v in zip(trainer.loss_names, trainer.tloss.tolist()):
                self.writer.add_scalar(f"batch/{name}", v, self.batches)

    def on_fit_epoch_end(self, trainer) -> None:
        row = trainer.results.rows[-1]
        for k, v in row.items():
            if k != "epoch":
                self.writer.add_scalar(k, v, row["epoch"])
        self.writer.flush()

    def on_train_end(self, trainer) -> None:
        import cv2

        for pattern in IMAGE_PATTERNS:
            for f in sorted(Path(trainer.save_dir).glob(pattern)):
                im = cv2.imread(str(f))
                if im is not None:
                    self.writer.add_image(f.stem, im[..., ::-1].copy(), trainer.epoch + 1, dataformats="HWC")
        self.writer.flush()

    def teardown(self, trainer) -> None:
        """Close the writer (after success or an error; nothing to do when the run failed before it started)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _add_graph(self, trainer) -> None:
        """Trace a copy of the model on one blank image (eval mode); a model that cannot be traced is skipped."""
        import copy
        import warnings

        import torch

        from ultralytics.utils.torch_utils import de_parallel

        model = copy.deepcopy(de_parallel(trainer.model)).eval().float()
        imgsz = trainer.args.imgsz
        im = torch.zeros(1, 3, imgsz, imgsz, device=next(model.parameters()).device)
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                model(im)  # once first: the head caches its anchors, so the traced calls all take one path
                self.writer.add_graph(model, im)
        except Exception as e:  # a graph is a nicety: never stop a run for it
            LOGGER.warning(f"WARNING ⚠️ TensorBoard: the model graph could not be traced ({type(e).__name__}: {e})")
