"""Callbacks: the one extension point of the trainer, validator and predictor (see base.py), and the built-in
integrations that hang on it (TensorBoard)."""

from ultralytics.utils.callbacks.base import EVENTS, CallbackError, Callbacks, callback_name

__all__ = ["EVENTS", "CallbackError", "Callbacks", "callback_name", "add_integration_callbacks"]


def add_integration_callbacks(trainer) -> None:
    """Register the integrations the trainer's settings ask for (tensorboard=True: event files in save_dir), on the
    process that writes files (rank 0 of a DDP run, or the only one)."""
    if trainer.args.tensorboard and trainer.rank in (-1, 0):
        from ultralytics.utils.callbacks.tensorboard import TensorBoardLogger

        TensorBoardLogger.register(trainer.callbacks, graph=bool(trainer.args.tensorboard_graph))
