"""Checks on user inputs: find files (cwd, then the package cfg dirs), suffixes, versions; print call args."""

from __future__ import annotations

import difflib
import glob
import inspect
import re
from pathlib import Path
from ultralytics.utils import LOGGER, ROOT, UserError, colorstr

CFG_DIR = ROOT / "cfg"  # searched recursively after the current directory: models/v10/*.yaml, datasets/*.yaml


def check_suffix(file: str | Path | list | tuple = "yolov10n.pt", suffix: str | tuple[str, ...] = (".pt",),
                 msg: str = "") -> None:
    """Raise UserError when `file` (or any file in a list) does not end in one of `suffix` (case-insensitive)."""
    if not file or not suffix:
        return
    suffixes = tuple(s.lower() for s in ((suffix,) if isinstance(suffix, str) else suffix))
    for f in file if isinstance(file, (list, tuple)) else [file]:
        s = Path(f).suffix.lower()
        if s and s not in suffixes:
            raise UserError(f"{msg}{f!s}: suffix '{s}' is not accepted here; expected one of {', '.join(suffixes)}")


def check_file(file: str | Path, suffix: str | tuple[str, ...] = "") -> Path:
    """Find `file` as given, then under cwd, then anywhere under the package cfg dir; return its Path.

    A missing file is a UserError naming the file, the places searched and the closest names there.
    """
    if file is None or str(file).strip() == "":
        raise UserError("no file given (empty name)")
    check_suffix(file, suffix)
    text = str(file).strip()
    if re.match(r"^[a-z][a-z0-9+.-]*://", text, re.I):
        raise UserError(f"'{text}' is a URL; downloads are not supported, put the file on disk and pass its path")
    path = Path(text).expanduser()
    if path.is_file():
        return path
    cwd = Path.cwd()
    if not path.is_absolute():
        hits = sorted(p for p in CFG_DIR.glob(f"**/{glob.escape(text)}") if p.is_file())
        if hits:
            if len(hits) > 1:
                LOGGER.warning(f"WARNING: '{text}' matches {len(hits)} files under {CFG_DIR}; using {hits[0]}")
            return hits[0]
    want = path.suffix.lower()
    known = sorted({p.name for p in [*cwd.glob("*"), *CFG_DIR.rglob("*")]
                    if p.is_file() and (not want or p.suffix.lower() == want)})
    close = difflib.get_close_matches(path.name, known, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    where = f"{path}" if path.is_absolute() else f"{cwd} and (recursively) {CFG_DIR}"
    raise UserError(f"file '{text}' not found; looked in {where}{hint}")


def check_yaml(file: str | Path) -> Path:
    """check_file for YAML files (.yaml or .yml)."""
    return check_file(file, suffix=(".yaml", ".yml"))


def _version_tuple(version: str) -> tuple[int, ...]:
    """'2.13.0+cpu' -> (2, 13, 0); the numeric release part only ('1.0rc1' -> (1, 0))."""
    release = re.match(r"\s*v?([\d.]*\d)", str(version))
    if not release:
        raise UserError(f"cannot read version '{version}'")
    return tuple(int(x) for x in release.group(1).split("."))


def check_version(current: str = "0.0.0", minimum: str = "0.0.0", name: str = "version", hard: bool = False) -> bool:
    """True when `current` satisfies `minimum`: a plain version means '>=', or a spec like '>=2.0,<3'.

    hard=True raises a UserError naming the package, the found version and the requirement instead of returning False.
    """
    cur = _version_tuple(current)
    ops = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
           "<": lambda a, b: a < b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}
    ok = True
    for spec in str(minimum).split(","):
        m = re.match(r"^\s*(>=|<=|==|!=|>|<)?\s*(.+?)\s*$", spec)
        if not m or not m.group(2):
            continue
        want = _version_tuple(m.group(2))
        width = max(len(cur), len(want))
        a, b = cur + (0,) * (width - len(cur)), want + (0,) * (width - len(want))
        ok &= ops[m.group(1) or ">="](a, b)
    if not ok and hard:
        raise UserError(f"{name}{minimum if minimum[0] in '<>=!' else '>=' + minimum} is required, "
                        f"but {name}=={current} is installed")
    return ok


def print_args(args: dict | None = None, title: str | None = None) -> str:
    """Log 'title: k1=v1, k2=v2' (args None -> the calling function's arguments); return the line."""
    frame = inspect.currentframe().f_back
    if args is None:
        info = inspect.getargvalues(frame)
        args = {k: info.locals[k] for k in info.args}
    if title is None:
        title = frame.f_code.co_name
    line = colorstr(f"{title}: ") + ", ".join(f"{k}={v}" for k, v in args.items())
    LOGGER.info(line)
    return line



def weights_from_args(overrides: dict, default: str) -> str:
    """The weights a root script (val.py, predict.py) should load: `weights=` or `model=` from the
    command line (both removed from overrides), else `default`; UserError when the file is missing."""
    weights = overrides.pop("weights", None)
    weights = overrides.pop("model", None) or weights or default
    if not Path(weights).is_file() and not any(Path(weights).glob("*.xml")):  # a file, or an OpenVINO folder
        raise UserError(f"weights file '{weights}' not found: train a model first (python train.py), "
                        "or pass model=path/to/best.pt")
    return str(weights)


EXPORT_PIP = "pip install -r requirements-export.txt  (or: pip install onnx onnxruntime)"


def require(module: str, purpose: str, pip: str = EXPORT_PIP):
    """Import an optional dependency, or raise a UserError naming the pip command that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{purpose} needs the '{module}' package, which is not installed: {pip}") from None


def get_setting(args, key: str, default=None):
    """One setting from a dict (a checkpoint's train_args), a namespace (merged settings) or None: `default` when
    it is absent or None."""
    value = args.get(key) if isinstance(args, dict) else getattr(args, key, None)
    return default if value is None else value
