"""The architecture of a pruned model as plain data, and rebuilding it on a model built from its YAML.

A pruned model differs from its YAML only in channel counts: every conv keeps its kernel, stride, padding
and dilation, every block its wiring. So the architecture is stored as, per layer, the numbers pruning
changes (plain ints, no pickled code), inside the model's YAML dict under the key 'pruned':

    {"nc": 80,  (the class count the YAML was built with when the changes were recorded)
     "layers": {"model.2.cv1.conv": ["Conv2d", c_in, c_out, groups], "model.2.cv1.bn": ["BatchNorm2d", c],
                "model.9.attn.gn": ["GroupNorm", groups, c], ...},
     "attrs": {"model.2": {"c": 12}, ...}}

DetectionModel builds the YAML, then `apply_architecture` swaps in layers of the stored shapes, before
strides and weights, so every path that builds from a checkpoint's YAML (load, train, resume, compare)
gets the pruned shape.
"""

from __future__ import annotations

import torch.nn as nn

from ultralytics.utils import UserError

# Integer attributes of blocks that follow their channels (read in forward or by summaries).
_ATTRS = ("c", "dim")


def record_architecture(model: nn.Module) -> dict:
    """The per-layer channel counts and per-block channel attributes of a model, as plain data."""
    layers, attrs = {}, {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            layers[name] = ["Conv2d", int(m.in_channels), int(m.out_channels), int(m.groups)]
        elif isinstance(m, nn.BatchNorm2d):
            layers[name] = ["BatchNorm2d", int(m.num_features)]
        elif isinstance(m, nn.GroupNorm):
            layers[name] = ["GroupNorm", int(m.num_groups), int(m.num_channels)]
        found = {a: int(getattr(m, a)) for a in _ATTRS
                 if isinstance(getattr(m, a, None), int) and not isinstance(getattr(m, a), bool)}
        if found:
            attrs[name] = found
    return {"layers": layers, "attrs": attrs}


def architecture_changes(pruned: dict, original: dict) -> dict:
    """The entries of `pruned` (record_architecture of the pruned model) that differ from `original`'s."""
    layers = {k: v for k, v in pruned["layers"].items() if original["layers"].get(k) != v}
    attrs = {k: v for k, v in pruned["attrs"].items() if original["attrs"].get(k) != v}
    return {"layers": layers, "attrs": attrs}


def set_head_classes(head: nn.Module, nc: int) -> None:
    """Give a head new class output convs (both branches) for nc classes; the rest of the head is kept."""
    for branch in (head.cv3, head.one2one_cv3):
        for seq in branch:
            seq[-1] = nn.Conv2d(seq[-1].in_channels, nc, 1)
    head.nc, head.no = nc, nc + 4 * head.reg_max


def _rebuilt(old: nn.Module, spec: list, where: str) -> nn.Module:
    """A layer like `old` with the stored channel counts (weights are loaded afterwards)."""
    kind = spec[0] if isinstance(spec, list) and spec else None
    if kind == "Conv2d" and isinstance(old, nn.Conv2d) and len(spec) == 4:
        c1, c2, g = spec[1:]
        if (c1, c2, g) == (old.in_channels, old.out_channels, old.groups):
            return old
        new = nn.Conv2d(c1, c2, old.kernel_size, old.stride, old.padding, old.dilation, g, old.bias is not None,
                        old.padding_mode)
        return new.requires_grad_(old.weight.requires_grad)
    if kind == "BatchNorm2d" and isinstance(old, nn.BatchNorm2d) and len(spec) == 2:
        if spec[1] == old.num_features:
            return old
        return nn.BatchNorm2d(spec[1], old.eps, old.momentum, old.affine, old.track_running_stats)
    if kind == "GroupNorm" and isinstance(old, nn.GroupNorm) and len(spec) == 3:
        if (spec[1], spec[2]) == (old.num_groups, old.num_channels):
            return old
        return nn.GroupNorm(spec[1], spec[2], old.eps, old.affine)
    raise UserError(f"{where}: stored layer {spec!r} does not fit the YAML's {type(old).__name__}")


def apply_architecture(model: nn.Module, arch: dict, src: str = "<checkpoint>") -> None:
    """Swap the layers of a model built from its YAML for layers with the stored channel counts, in place."""
    if not isinstance(arch, dict) or not isinstance(arch.get("layers"), dict):
        raise UserError(f"{src}: 'pruned' must be a dict with 'layers' (per-layer channel counts), got {arch!r:.80}")
    for name, spec in arch["layers"].items():
        where = f"{src}, pruned layer '{name}'"
        try:
            old = model.get_submodule(name)
        except AttributeError:
            raise UserError(f"{where}: no such layer in the model built from the YAML") from None
        new = _rebuilt(old, spec, where)
        if new is not old:
            new.train(old.training)
            parent, _, leaf = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, leaf, new)
    for name, values in (arch.get("attrs") or {}).items():
        m = model.get_submodule(name)
        for k, v in values.items():
            if k in _ATTRS:
                setattr(m, k, int(v))
