"""The callback registry: user code (and TensorBoard, and the tuner's pruning report) hooked to named events.

`fn(owner)` is called at the event, owner being the trainer, validator, predictor or exporter that fires it. The
trainer, validator and predictor fire events and know nothing of who listens. Under DDP a callback runs on
rank 0 only unless it was registered with all_ranks=True. An exception raised by a callback becomes a
CallbackError naming the event and the callback (the original is its __cause__).
"""

from __future__ import annotations

import difflib
from typing import Callable

from ultralytics.utils import RANK, UserError

# Ultralytics 8.4's 25 events, in the order a training fires them (validation, prediction and export last).
EVENTS = (
    "on_pretrain_routine_start",  # trainer: before the data, model and optimizer are set up
    "on_pretrain_routine_end",  # trainer: set up (and resumed), before the first epoch
    "on_train_start",  # trainer: just before the epoch loop
    "on_train_epoch_start",  # trainer: each epoch, before its first batch
    "on_train_batch_start",  # trainer: each batch, before the forward
    "optimizer_step",  # trainer: after each optimizer step (the gradients are still there)
    "on_before_zero_grad",  # trainer: after each optimizer step, just before the gradients are zeroed
    "on_train_batch_end",  # trainer: each batch, after the backward and optimizer step (not a skipped NaN batch)
    "on_train_epoch_end",  # trainer: each epoch, after its last batch, before validation
    "on_params_update",  # trainer: each epoch, the scheduler has set the next epoch's learning rates
    "on_model_save",  # trainer (rank 0): last.pt (and best.pt) and the results.csv row were written
    "on_fit_epoch_end",  # trainer (rank 0): the epoch is validated, saved and logged; trainer.stop may be set
    "on_train_end",  # trainer (rank 0): after the final validation of best.pt
    "teardown",  # trainer: last, after success and after an exception alike (writers close here)
    "on_val_start",  # validator: before its first batch
    "on_val_batch_start",  # validator: each batch, before its preprocess
    "on_val_batch_end",  # validator: each batch, after its metrics update
    "on_val_end",  # validator: metrics computed (validator.metrics)
    "on_predict_start",  # predictor: source opened, model ready, before the first image
    "on_predict_batch_start",  # predictor: each batch, before its preprocess
    "on_predict_postprocess_end",  # predictor: each batch, predictor.results made
    "on_predict_batch_end",  # predictor: each batch, results written, before they are yielded
    "on_predict_end",  # predictor: every result yielded
    "on_export_start",  # exporter: before the model is prepared
    "on_export_end",  # exporter: the file is written (exporter.file)
)


class CallbackError(UserError):
    """A callback raised: the run stopped; the message names the event and the callback."""


def callback_name(fn: Callable) -> str:
    """'module.qualname' of a function, bound method or callable object (for messages)."""
    target = getattr(fn, "__func__", fn)
    name = getattr(target, "__qualname__", None) or type(fn).__qualname__
    module = getattr(target, "__module__", None) or type(fn).__module__
    return f"{module}.{name}" if module else name


class Callbacks:
    """{event: [(fn, all_ranks), ...]}: `add(event, fn)`, `run(event, owner)`, `clear(event)`, `copy()`."""

    def __init__(self):
        self._registry: dict[str, list[tuple[Callable, bool]]] = {e: [] for e in EVENTS}

    @staticmethod
    def check_event(event: str) -> str:
        if event not in EVENTS:
            close = difflib.get_close_matches(str(event), EVENTS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise UserError(f"unknown callback event '{event}'{hint} Events: {', '.join(EVENTS)}")
        return event

    def add(self, event: str, fn: Callable, all_ranks: bool = False) -> None:
        """Call fn(owner) at `event`, after the callbacks added before it."""
        if not callable(fn):
            raise UserError(f"callback for '{event}' must be callable (fn(trainer)), got {type(fn).__name__}")
        self._registry[self.check_event(event)].append((fn, bool(all_ranks)))

    def clear(self, event: str | None = None) -> None:
        """Remove the callbacks of one event (all events when None)."""
        for e in [self.check_event(event)] if event is not None else EVENTS:
            self._registry[e] = []

    def get(self, event: str) -> list[Callable]:
        return [fn for fn, _ in self._registry[self.check_event(event)]]

    def copy(self) -> "Callbacks":
        """A registry with the same callbacks (the functions themselves are shared, not copied)."""
        new = Callbacks()
        new._registry = {e: list(v) for e, v in self._registry.items()}
        return new

    def run(self, event: str, owner) -> None:
        """Call the event's callbacks in order with `owner`; on ranks other than 0 only the all_ranks ones."""
        main = RANK in (-1, 0)
        for fn, all_ranks in self._registry[event]:
            if not (main or all_ranks):
                continue
            try:
                fn(owner)
            except Exception as e:
                raise CallbackError(f"callback '{callback_name(fn)}' raised {type(e).__name__} at event '{event}': "
                                    f"{e}") from e
