"""What the analysis tools share: load a model, check layer indices, run the rows and keep some outputs.

A "layer" here is a YAML row: `model.model[i]` of a DetectionModel (an nn.Sequential whose item i is row i).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn

from ultralytics.utils import UserError


def open_model(model):
    """The model behind `model`: a YAML path built, a .pt/.onnx/.torchscript file loaded, a YOLO facade unwrapped.

    Anything else is returned as given. (The facade is recognised by its `.model`, so that analysis never
    imports engine/model.py, which imports analysis.)
    """
    from ultralytics.nn.backend import ExportedModel, load_inference_model
    from ultralytics.nn.tasks import DetectionModel

    if isinstance(model, (str, Path)):
        if Path(str(model)).suffix.lower() in (".yaml", ".yml"):
            return DetectionModel(str(model), verbose=False)
        return load_inference_model(model)
    inner = getattr(model, "model", None)
    return inner if isinstance(inner, (DetectionModel, ExportedModel)) else model


def load_detection_model(model, device: torch.device | None = None, freeze: bool = True):
    """A DetectionModel in eval mode (float32, on `device`) from a YAML/.pt path, a YOLO object or a model.

    User-registered modules work like any other row (they resolve through the registry when the YAML is read).
    """
    model = open_model(model)
    if not isinstance(model, nn.Module) or not isinstance(getattr(model, "model", None), nn.Sequential):
        raise UserError(f"model must be a model YAML, a .pt checkpoint, a YOLO object or a DetectionModel, "
                        f"got {type(model).__name__}")
    model = model.float().eval()
    if device is not None:
        model = model.to(device)
    for p in model.parameters() if freeze else ():
        p.requires_grad_(False)  # the tools differentiate w.r.t. inputs and activations only
    return model


def model_label(model, given=None) -> str:
    """A short name for tables: the file stem of `given` when it is a path, else the YAML's stem."""
    if isinstance(given, (str, Path)):
        p = Path(str(given))
        return p.parent.parent.name + "/" + p.stem if p.parent.name == "weights" else p.stem
    return Path(str((getattr(model, "yaml", None) or {}).get("yaml_file", "model"))).stem


def head_inputs(model) -> list[int]:
    """The rows the head (last row) reads, as absolute indices, e.g. [16, 19, 22] for yolov10n."""
    head = model.model[-1]
    f = head.f if isinstance(head.f, list) else [head.f]
    return [j + head.i if j < 0 else j for j in f]


def check_layers(model, layers, what: str = "layers") -> list[int]:
    """Validate layer indices (int, list of ints, or None = the head's inputs); negative ints count from the end.

    The head row itself is not a valid layer (its outputs are the scores). A bad index is a UserError that
    lists the valid ones.
    """
    n = len(model.model) - 1  # rows 0 .. n-1 (row n is the head)
    if layers is None or (isinstance(layers, str) and not layers.strip()):
        return head_inputs(model)
    given = layers
    if isinstance(layers, str):  # layers=16,19,22 on the command line
        layers = [v.strip() for v in layers.strip("[] ").split(",")]
    items = layers if isinstance(layers, (list, tuple)) else [layers]
    out = []
    for v in items:
        if isinstance(v, str) and v.strip().lstrip("-").isdigit():
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool) or not -n <= v < n:
            raise UserError(f"{what}={given!r}: {v!r} is not a layer of this model; valid layers are the rows "
                            f"0..{n - 1} (or -{n}..-1; row {n} is the head), e.g. {what}={head_inputs(model)} "
                            f"(the rows the head reads)")
        out.append(v % n)
    return out


def run_rows(model, x: torch.Tensor, keep: list[int]) -> dict[int, torch.Tensor]:
    """Run rows 0..max(keep) on x (B, 3, H, W) and return {row: output (B, C_i, H_i, W_i)} for the kept rows."""
    y, out, last = [], {}, max(keep)
    for m in model.model[: last + 1]:
        if m.f != -1:
            x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
        x = m(x)
        y.append(x)
        if m.i in keep:
            out[m.i] = x
    return out


def level_name(model, row: int, stride: float) -> str:
    """'P3' / 'P4' / 'P5' for a row the head reads (2^k = its stride), else 'row<i>'."""
    if row in head_inputs(model) and stride > 0 and float(math.log2(stride)).is_integer():
        return f"P{int(math.log2(stride))}"
    return f"row{row}"


def to_tensor(im: np.ndarray) -> torch.Tensor:
    """BGR uint8 (H, W, 3) -> RGB float (1, 3, H, W) in 0..1."""
    return torch.from_numpy(np.ascontiguousarray(im[..., ::-1].transpose(2, 0, 1))).float().div(255).unsqueeze(0)


def resize_square(im: np.ndarray, size: int) -> np.ndarray:
    """Resize a BGR image to (size, size) (no letterbox: the ERF concerns the network, not the aspect)."""
    return cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR)
