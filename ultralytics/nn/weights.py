"""Building models from checkpoints and writing models as plain-data checkpoints."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch.nn as nn

from ultralytics.utils import UserError
from ultralytics.utils.checkpoint import CHECKPOINT_FORMAT, model_weights, read_checkpoint


def model_from_checkpoint(ckpt: dict, path: str | Path = "<checkpoint>", verbose: bool = False):
    """Rebuild a DetectionModel from a checkpoint dict (its 'yaml') and load its weights exactly."""
    from ultralytics.nn.tasks import DetectionModel

    cfg = ckpt.get("yaml")
    if not isinstance(cfg, dict):
        raise UserError(f"checkpoint '{path}' has no model 'yaml' dict, so the architecture is unknown; "
                        "build the model from its YAML and use model.load() instead")
    model = DetectionModel(cfg, verbose=verbose)
    sd = model_weights(ckpt)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise UserError(f"checkpoint '{path}' does not fit its own YAML: {len(missing)} missing tensors "
                        f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})")
    names = ckpt.get("names")
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if isinstance(names, dict) and len(names) == model.nc:
        model.names = {int(k): str(v) for k, v in names.items()}
    if isinstance(ckpt.get("train_args"), dict):
        model.args = ckpt["train_args"]
    return model


def load_model(path: str | Path, verbose: bool = False):
    """(model in eval mode, checkpoint dict) from a .pt path."""
    ckpt = read_checkpoint(path)
    model = model_from_checkpoint(ckpt, path, verbose=verbose)
    return model.eval(), ckpt


def checkpoint_dict(model: nn.Module, **extra) -> dict:
    """The plain-data checkpoint of a model: its weights, YAML and class names (+ any extra fields)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "model": OrderedDict((k, v.detach().clone().cpu()) for k, v in model.state_dict().items()),
        "yaml": model.yaml,
        "names": dict(model.names),
        **extra,
    }


def save_model(model: nn.Module, path: str | Path, **extra) -> Path:
    """Write a model as a plain-data checkpoint, atomically."""
    from ultralytics.utils.files import atomic_torch_save

    path = Path(path)
    atomic_torch_save(checkpoint_dict(model, **extra), path)
    return path
