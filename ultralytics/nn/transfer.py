"""Copying the weights whose names and shapes match from a checkpoint into a model, rows aligned by module name."""

from __future__ import annotations

import difflib
import re
from collections import OrderedDict
from pathlib import Path

import torch.nn as nn

from ultralytics.utils import LOGGER, UserError
from ultralytics.utils.checkpoint import model_weights, read_checkpoint


def as_state_dict(weights) -> tuple[OrderedDict, dict | None]:
    """(state_dict, model yaml or None) from a checkpoint path or dict, a state_dict or an nn.Module."""
    if isinstance(weights, (str, Path)):
        ckpt = read_checkpoint(weights)
        return model_weights(ckpt), ckpt.get("yaml")
    if isinstance(weights, nn.Module):
        return OrderedDict(weights.state_dict()), getattr(weights, "yaml", None)
    if isinstance(weights, dict) and ("model" in weights or "ema" in weights):
        return model_weights(weights), weights.get("yaml")
    if isinstance(weights, dict):
        return OrderedDict(weights), None
    raise UserError(f"cannot load weights from a {type(weights).__name__}: give a .pt path, a checkpoint "
                    "dict, a state_dict or a model")


def _rows(cfg: dict) -> list[str]:
    """The module name of every row of a model YAML dict; UserError when the rows are malformed."""
    rows = cfg.get("backbone", []), cfg.get("head", [])
    if not all(isinstance(r, list) for r in rows) or not all(
            isinstance(row, (list, tuple)) and len(row) == 4 for row in rows[0] + rows[1]):
        raise UserError("the model YAML stored in the weights is malformed: 'backbone' and 'head' must be lists "
                        "of [from, repeats, module, args] rows")
    return [str(row[2]) for row in rows[0] + rows[1]]


def row_alignment(src_cfg: dict, dst_cfg: dict) -> dict[int, int]:
    """Source row -> target row, aligning the two row lists by module name (inserted rows are skipped,
    a replaced row of the same position, like PSA -> PSALSKA, maps to its counterpart).

    yolov10n -> yolov10n-LSKA maps rows 0..16 to themselves, 17..19 to 18..20, ..., the head 23 to 26.
    """
    matcher = difflib.SequenceMatcher(a=_rows(src_cfg), b=_rows(dst_cfg), autojunk=False)
    out = {}
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            out.update({i1 + k: j1 + k for k in range(i2 - i1)})
    return out


def transfer_weights(model: nn.Module, weights, verbose: bool = True) -> int:
    """Copy every tensor whose name and shape match into model; log and return how many were copied.

    When the weights carry their model YAML and its rows differ from the model's (an inserted LSKA row
    shifts the indices of every later row), the rows are aligned by module name first, so that
    `model.19.` of yolov10n.pt lands in `model.20.` of yolov10n-LSKA.
    """
    src, src_cfg = as_state_dict(weights)
    dst = model.state_dict()
    dst_cfg = getattr(model, "yaml", None)
    shifted = 0
    if isinstance(src_cfg, dict) and isinstance(dst_cfg, dict) and _rows(src_cfg) != _rows(dst_cfg):
        align = row_alignment(src_cfg, dst_cfg)
        renamed = OrderedDict()
        for k, v in src.items():
            parts = k.split(".", 2)
            if len(parts) == 3 and parts[0] == "model" and parts[1].isdigit() and int(parts[1]) in align:
                j = align[int(parts[1])]
                shifted += j != int(parts[1])
                renamed[f"model.{j}.{parts[2]}"] = v
        src = renamed
    src = _p3_levels_to_p2_head(src, model)
    matched = {k: v for k, v in src.items() if k in dst and dst[k].shape == v.shape}
    model.load_state_dict(matched, strict=False)
    if verbose:
        note = f" ({shifted} moved to shifted rows)" if shifted else ""
        LOGGER.info(f"Transferred {len(matched)}/{len(dst)} items from pretrained weights{note}")
    return len(matched)


def _p3_levels_to_p2_head(src: OrderedDict, model: nn.Module) -> OrderedDict:
    """A 3-level head's branches (strides 8, 16, 32) into a P2 model's head (strides 4, 8, 16, 32): level i goes
    to level i + 1, so the P3-P5 branches get their own weights (they have the base model's shapes,
    docs/13-small-objects.md) and the new P2 branch keeps its initialisation."""
    head = model.model[-1] if isinstance(getattr(model, "model", None), nn.Sequential) else None
    if head is None or [int(x) for x in getattr(head, "stride", [])] != [4, 8, 16, 32]:
        return src
    pre = f"model.{len(model.model) - 1}."
    branch = re.compile(rf"^{re.escape(pre)}(cv2|cv3|one2one_cv2|one2one_cv3)\.(\d+)\.(.*)$")
    levels = {int(m.group(2)) for k in src if (m := branch.match(k))}
    if levels != {0, 1, 2}:
        return src
    out = OrderedDict()
    for k, v in src.items():
        m = branch.match(k)
        out[f"{pre}{m.group(1)}.{int(m.group(2)) + 1}.{m.group(3)}" if m else k] = v
    return out
