"""Checkpoints as plain data, and a restricted reader for pickled Ultralytics-style checkpoints.

Our checkpoints hold tensors, dicts, lists, numbers and strings only. A `.pt` written by Ultralytics or
by the YOLOv10 authors' fork pickles whole model objects; it is read here with an unpickler that
rebuilds tensors and a few known containers (ALLOWED_GLOBALS) and turns classes from the model
namespaces (ultralytics.*, torch.nn.modules.*) into inert stand-ins that only store their attributes.
Any other global (os.system, builtins.eval, subprocess.Popen, ...) is refused before it is called,
so nothing in a checkpoint can run code. See SECURITY.md.
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from ultralytics.utils import UserError

CHECKPOINT_FORMAT = "yolov10-lska-ckpt/1"

_NP_SCALAR = (getattr(np, "_core", None) or np.core).multiarray.scalar

# Real callables a checkpoint may name: tensor rebuilding and plain containers. Nothing else runs.
ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "frozenset"): frozenset,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    # numpy scalars (metrics in upstream checkpoints): a dtype and raw bytes, nothing else
    ("numpy.core.multiarray", "scalar"): _NP_SCALAR,
    ("numpy._core.multiarray", "scalar"): _NP_SCALAR,
    ("numpy", "dtype"): np.dtype,
}
# Classes whose instances become inert attribute bags (the pickled model objects).
STANDIN_NAMESPACES = ("ultralytics.", "torch.nn.modules.")


class _Inert:
    """A stand-in for a pickled class: it stores the pickled state and does nothing else."""

    _origin = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.__dict__["_pickle_args"] = args
        return obj

    def __init__(self, *args, **kwargs):  # REDUCE-style construction: keep nothing, run nothing
        pass

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2 and all(isinstance(s, (dict, type(None))) for s in state):
            state = {**(state[0] or {}), **(state[1] or {})}  # (dict state, slot state)
        if isinstance(state, dict):  # plain attribute names only: a '__setstate__' or '__class__' key could
            self.__dict__.update({k: v for k, v in state.items()  # shadow the methods the unpickler calls next
                                  if isinstance(k, str) and not k.startswith("__")})
        else:
            self.__dict__["_state"] = state

    def __repr__(self):
        return f"<inert {self._origin}>"


_STANDINS: dict[tuple[str, str], type] = {}


def _standin(module: str, name: str) -> type:
    key = (module, name)
    if key not in _STANDINS:
        _STANDINS[key] = type(name, (_Inert,), {"_origin": f"{module}.{name}"})
    return _STANDINS[key]


class GlobalRefused(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list (told apart from a merely corrupt pickle)."""


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only ALLOWED_GLOBALS, torch dtypes and inert stand-ins."""

    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[(module, name)]
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module.startswith(STANDIN_NAMESPACES) and name.isidentifier():
            return _standin(module, name)
        raise GlobalRefused(f"global '{module}.{name}' is not on the checkpoint allow-list")


class _RestrictedPickleModule:
    """The pickle_module torch.load uses: our Unpickler, nothing else."""

    Unpickler = RestrictedUnpickler
    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def load(f, **kw):
        return RestrictedUnpickler(f, **kw).load()


def read_checkpoint(path: str | Path) -> dict:
    """Load a .pt file into a dict of plain data, never running code from it.

    Raises UserError naming the file when it is missing, empty, truncated, not a torch zip archive,
    or names a global outside the allow-list.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint '{path}' not found")
    if path.stat().st_size == 0:
        raise UserError(f"checkpoint '{path}' is empty (0 bytes)")
    if not zipfile.is_zipfile(path):
        raise UserError(f"checkpoint '{path}' is not a PyTorch checkpoint (not a torch zip archive: "
                        "truncated, corrupt, or another kind of file)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RestrictedPickleModule)
    except GlobalRefused as e:
        raise UserError(f"checkpoint '{path}' refused: {e}. Loading it would need code outside the "
                        "allow-list to run (see SECURITY.md)") from None
    except Exception as e:  # zip member missing, truncated storage, bad pickle opcode, ...
        raise UserError(f"checkpoint '{path}' is corrupt or truncated: {type(e).__name__}: {e}") from None
    if not isinstance(obj, dict):
        obj = {"model": obj}
    try:
        return normalize_checkpoint(obj, path)
    except (AttributeError, TypeError, ValueError, KeyError) as e:
        if isinstance(e, UserError):
            raise
        raise UserError(f"checkpoint '{path}' is malformed: its model entry is not a module's weights "
                        f"({type(e).__name__}: {e})") from None


def normalize_checkpoint(ckpt: dict, path: str | Path = "<checkpoint>") -> dict:
    """Make 'model'/'ema' state_dicts of float tensors and take 'yaml'/'names' out of pickled models."""
    out = dict(ckpt)
    for key in ("model", "ema"):
        obj = out.get(key)
        if isinstance(obj, _Inert):
            out[key] = standin_state_dict(obj)
            for attr in ("yaml", "names"):
                if attr not in out and isinstance(obj.__dict__.get(attr), dict):
                    out[attr] = obj.__dict__[attr]
    for key in ("model", "ema"):
        if isinstance(out.get(key), dict):
            out[key] = OrderedDict((k, v.float() if v.is_floating_point() else v)
                                   for k, v in out[key].items() if isinstance(v, torch.Tensor))
    if not isinstance(out.get("ema"), dict) and not isinstance(out.get("model"), dict):
        raise UserError(f"checkpoint '{path}' holds no model weights (no 'model' or 'ema' entry)")
    if isinstance(out.get("train_args"), _Inert):
        out["train_args"] = {k: v for k, v in out["train_args"].__dict__.items() if not k.startswith("_")}
    return out


def standin_state_dict(obj: _Inert, prefix: str = "", out: OrderedDict | None = None) -> OrderedDict:
    """The state_dict an nn.Module would give, read from a pickled module's inert stand-in."""
    out = OrderedDict() if out is None else out
    d = obj.__dict__
    for name, p in (d.get("_parameters") or {}).items():
        if p is not None:
            out[prefix + name] = p.detach()
    skip = d.get("_non_persistent_buffers_set") or set()
    for name, b in (d.get("_buffers") or {}).items():
        if b is not None and name not in skip:
            out[prefix + name] = b.detach()
    for name, child in (d.get("_modules") or {}).items():
        if isinstance(child, _Inert):
            standin_state_dict(child, f"{prefix}{name}.", out)
    return out


def model_weights(ckpt: dict) -> OrderedDict:
    """The weights to use for inference or transfer: the EMA when present, else the raw model."""
    return ckpt["ema"] if isinstance(ckpt.get("ema"), dict) else ckpt["model"]
