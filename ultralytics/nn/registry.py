"""The table parse_model reads: YAML module name -> (class, channel rule).

Channel rules say how a YAML row's args become constructor args and what the row outputs:
- conv:    args = [c1, c2', *args[1:]], c2' = args[0] scaled by width (capped by max_channels); out c2'
- repeat:  like conv, and the row's repeat count n is passed as the third argument (n becomes 1)
- same:    args = [c1, *args]; out = c1 (attention with parameters, e.g. LSKA)
- concat:  args as written; out = sum of the inputs' channels
- head:    args = [*args, [c of each input]]; 'nc' in args is the class count
- plain:   args as written; out = c1 (parameter-free layers such as nn.Upsample)
"""

from __future__ import annotations

import difflib

import torch.nn as nn

RULES = ("conv", "repeat", "same", "concat", "head", "plain")

_REGISTRY: dict[str, tuple[type, str]] = {}


def register_module(cls: type, rule: str = "same", name: str | None = None) -> type:
    """Make `cls` usable in model YAMLs under `name` (default: its class name) with a channel rule.

    Returns cls, so it also works as a decorator factory: register_module(MyBlock, 'conv').
    """
    if rule not in RULES:
        raise ValueError(f"unknown channel rule {rule!r} for {cls.__name__}; choose one of {', '.join(RULES)}")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"register_module expects an nn.Module subclass, got {cls!r}")
    _REGISTRY[name or cls.__name__] = (cls, rule)
    return cls


def lookup(name: str) -> tuple[type, str] | None:
    """(class, rule) for a YAML name: registered names first, then 'nn.X' from torch.nn. None if unknown."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name.startswith("nn.") and isinstance(getattr(nn, name[3:], None), type):
        cls = getattr(nn, name[3:])
        if issubclass(cls, nn.Module):
            return cls, _TORCH_RULES.get(name[3:], "plain")
    return None


def known_names() -> list[str]:
    """Every name a YAML row may use (the torch.nn names are listed as their common ones)."""
    return sorted(_REGISTRY) + [f"nn.{n}" for n in _TORCH_RULES]


def closest_names(name: str, n: int = 3) -> list[str]:
    """The registered names most like `name`, for error messages."""
    candidates = sorted(_REGISTRY) + [f"nn.{k}" for k in dir(nn) if k[:1].isupper()]
    return difflib.get_close_matches(name, candidates, n=n, cutoff=0.4)


# torch.nn layers that change or need channel counts; every other nn.X keeps its input channels.
_TORCH_RULES = {"Conv2d": "conv", "ConvTranspose2d": "conv", "BatchNorm2d": "same", "Upsample": "plain",
                "Identity": "plain", "MaxPool2d": "plain", "AvgPool2d": "plain"}
