"""Settings: load cfg/default.yaml and its type annotations, merge and validate overrides, parse key=value.

The `yolo` command that uses them is ultralytics/cli.py.
"""

from __future__ import annotations

import copy
import difflib
import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from ultralytics.utils import DEFAULT_CFG_PATH, LOGGER, UserError

__all__ = [
    "IterableSimpleNamespace", "KeySpec", "cfg2dict", "load_default_cfg", "load_cfg_schema", "get_cfg",
    "check_imgsz", "parse_key_value_args", "command_settings",
]

_LINE_RE = re.compile(r"^([A-Za-z_]\w*):(.*?)#\s*\(([^()]*)\)\s*(.*)$")
_NUM = r"-?\d+(?:\.\d+)?(?:e-?\d+)?"
_RANGE_RE = re.compile(rf"^({_NUM})-({_NUM})$")
_CMP_RE = re.compile(rf"^(>=|<=|>|<|)\s*({_NUM})$")
_TYPES = ("int", "float", "bool", "str", "dict", "list", "list[int]", "list[str]")
_NONE_STRINGS = ("none", "null", "~")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class IterableSimpleNamespace(SimpleNamespace):
    """A SimpleNamespace that also iterates over (key, value) pairs and has dict-style .get()."""

    def __iter__(self):
        """Yield (key, value) pairs in insertion order."""
        return iter(vars(self).items())

    def __str__(self) -> str:
        """One 'key=value' line per setting."""
        return "\n".join(f"{k}={v!r}" for k, v in vars(self).items())

    def __getattr__(self, attr: str):
        """Only called for missing attributes: name the closest known settings."""
        close = difflib.get_close_matches(attr, list(vars(self)), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise AttributeError(f"'{type(self).__name__}' has no setting '{attr}'{hint}")

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value of `key`, or `default` when it is not set."""
        return vars(self).get(key, default)


@dataclass(frozen=True)
class KeySpec:
    """The parsed `# (type, qualifiers) meaning` annotation of one default.yaml line."""

    key: str
    types: tuple[str, ...]  # e.g. ('int', 'list[int]')
    optional: bool = False
    conds: tuple[tuple[tuple[str, float, float], ...], ...] = ()  # AND of ORs of (op, a, b)
    choices: tuple[str, ...] = ()
    deprecated: bool = False
    annotation: str = ""
    meaning: str = ""

    def expected(self) -> str:
        """Plain words for what the key accepts, e.g. 'an int >= 1' or 'a float in [0, 1], or None'."""
        names = {"int": "an int", "float": "a float", "bool": "a bool (True/False)", "str": "a str",
                 "dict": "a dict", "list": "a list", "list[int]": "a list of ints", "list[str]": "a list of strs"}
        text = " or ".join(names[t] for t in self.types)
        words = [" or ".join(_describe_cond(c) for c in ors) for ors in self.conds]
        if self.choices:
            words.append("one of " + "/".join(self.choices))
        text += (" " + " and ".join(words)) if words else ""
        return text + (", or None" if self.optional else "")


def _describe_cond(cond: tuple[str, float, float]) -> str:
    """Words for one condition tuple: ('>=', 1, 0) -> '>= 1', ('range', 0, 1) -> 'in [0, 1]'."""
    op, a, b = cond
    fmt = lambda x: f"{x:g}"  # noqa: E731
    return f"in [{fmt(a)}, {fmt(b)}]" if op == "range" else f"equal to {fmt(a)}" if op == "==" else f"{op} {fmt(a)}"


def _parse_annotation(key: str, text: str, meaning: str, where: str) -> KeySpec:
    """Parse '(int | list[int], >=32)' contents into a KeySpec; a bad annotation names file and line."""
    parts = [p.strip() for p in text.split(",")]
    types = tuple(t.strip() for t in parts[0].split("|"))
    bad = [t for t in types if t not in _TYPES]
    if bad:
        raise UserError(f"{where}: unknown type {bad[0]!r} in the annotation of '{key}'; known: {', '.join(_TYPES)}")
    optional = deprecated = False
    conds, choices = [], ()
    for q in parts[1:]:
        if q == "optional":
            optional = True
        elif q == "deprecated":
            deprecated = True
        elif q.startswith("one of "):
            choices = tuple(w.strip() for w in q[len("one of "):].split("/"))
        else:
            ors = []
            for atom in q.split(" or "):
                atom = atom.strip()
                m, c = _RANGE_RE.match(atom), _CMP_RE.match(atom)
                if m:
                    ors.append(("range", float(m.group(1)), float(m.group(2))))
                elif c:
                    ors.append((c.group(1) or "==", float(c.group(2)), 0.0))
                else:
                    raise UserError(f"{where}: cannot read qualifier {q!r} in the annotation of '{key}'")
            conds.append(tuple(ors))
    return KeySpec(key, types, optional, tuple(conds), choices, deprecated, f"({text})", meaning)


@functools.lru_cache(maxsize=8)
def _parse_cfg_file(path: str) -> tuple[tuple[tuple[str, Any], ...], tuple[tuple[str, KeySpec], ...]]:
    """Read a defaults file once per process: ((key, default), ...), ((key, KeySpec), ...)."""
    defaults, schema = {}, {}
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{i}"
        m = _LINE_RE.match(line)
        if not m:
            raise UserError(f"{where}: expected 'key: value  # (type) meaning', got {line!r}")
        key, value, ann, meaning = m.group(1), m.group(2).strip(), m.group(3), m.group(4).strip()
        if key in defaults:
            raise UserError(f"{where}: setting '{key}' is defined twice")
        defaults[key] = yaml.safe_load(value) if value else None
        schema[key] = _parse_annotation(key, ann, meaning, where)
    whole = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if whole != defaults:  # guard against a line the line-parser read differently from YAML
        diff = [k for k in {**whole, **defaults} if whole.get(k, ...) != defaults.get(k, ...)]
        raise UserError(f"{path}: line-by-line parse disagrees with YAML for keys {diff[:5]}")
    return tuple(defaults.items()), tuple(schema.items())


def load_default_cfg(path: str | Path = DEFAULT_CFG_PATH) -> dict:
    """Return a fresh copy of the default settings {key: value} from default.yaml (parsed once per process)."""
    return copy.deepcopy(dict(_parse_cfg_file(str(path))[0]))


def load_cfg_schema(path: str | Path = DEFAULT_CFG_PATH) -> dict[str, KeySpec]:
    """Return {key: KeySpec} parsed from the '# (type) meaning' comments of default.yaml (specs are frozen)."""
    return dict(_parse_cfg_file(str(path))[1])


def cfg2dict(cfg: str | Path | dict | SimpleNamespace | None) -> dict:
    """Turn a YAML path, dict or namespace into a new dict (a missing or bad file is a UserError naming it)."""
    if cfg is None:
        return {}
    if isinstance(cfg, (str, Path)):
        path = Path(cfg)
        if not path.is_file():
            raise UserError(f"settings file '{cfg}' not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise UserError(f"settings file '{cfg}' is not valid YAML: {e}") from e
        if not isinstance(data, dict):
            raise UserError(f"settings file '{cfg}' must hold a mapping of key: value, got {type(data).__name__}")
        return data
    if isinstance(cfg, SimpleNamespace):
        return dict(vars(cfg))
    if isinstance(cfg, dict):
        return dict(cfg)
    raise UserError(f"settings must be a YAML path, dict or namespace, got {type(cfg).__name__}")


def _to_float(value: Any) -> float | None:
    """A number or numeric string as float, else None (bools are not numbers here)."""
    if isinstance(value, bool):
        return None
    try:
        return float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return None


def _coerce(value: Any, typ: str, strict: bool) -> tuple[bool, Any]:
    """Try to read `value` as `typ`: strict = exact type only, else lenient CLI-style coercion."""
    if typ in ("int", "float"):
        if isinstance(value, int if typ == "int" else float) and not isinstance(value, bool):
            return True, value
        f = None if strict else _to_float(value)
        if typ == "int":
            return (True, int(f)) if f is not None and f.is_integer() else (False, value)
        return (f is not None), (value if f is None else f)
    if typ == "bool":
        if isinstance(value, bool) or strict:
            return isinstance(value, bool), value
        low = str(value).strip().lower() if isinstance(value, (str, int)) else None
        return (True, low in _TRUE) if low in _TRUE + _FALSE else (False, value)
    if typ == "str":
        if isinstance(value, str):
            return True, value
        return (True, str(value)) if not strict and _to_float(value) is not None else (False, value)
    if typ == "dict":
        return isinstance(value, dict), value
    if not isinstance(value, list if strict else (list, tuple)):  # list, list[int], list[str]
        return False, value
    if typ == "list":
        return True, list(value)
    items = [_coerce(v, typ[5:-1], strict) for v in value]
    return all(ok for ok, _ in items), [v for _, v in items]


def _check_cond(x: float, cond: tuple[str, float, float]) -> bool:
    """True when number x satisfies one condition tuple."""
    op, a, b = cond
    return {"range": lambda: a <= x <= b, "==": lambda: x == a, ">=": lambda: x >= a, ">": lambda: x > a,
            "<=": lambda: x <= a, "<": lambda: x < a}[op]()


def _qualifies(value: Any, spec: KeySpec) -> tuple[bool, Any]:
    """Check ranges (on numbers, element-wise on lists) and choices (on strs); return (ok, canonical value)."""
    nums = [v for v in (value if isinstance(value, list) else [value])
            if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if any(isinstance(v, float) and not math.isfinite(v) for v in nums) and spec.conds:
        return False, value  # NaN and inf satisfy no meaningful range
    if not all(any(_check_cond(x, c) for c in ors) for x in nums for ors in spec.conds):
        return False, value
    if spec.choices and isinstance(value, str):
        match = [c for c in spec.choices if c.lower() == value.strip().lower()]
        return (True, match[0]) if match else (False, value)
    return True, value


def _validate(key: str, value: Any, spec: KeySpec, source: str) -> Any:
    """Return the checked (and leniently coerced) value, or raise UserError naming key, value and expectation."""
    none_str = isinstance(value, str) and (value.strip().lower() in _NONE_STRINGS
                                           or (not value.strip() and "str" not in spec.types))
    if value is None or (spec.optional and none_str):
        if spec.optional:
            return None
    else:
        for strict in (True, False):
            for typ in spec.types:
                ok, v = _coerce(value, typ, strict)
                if ok:
                    ok, v = _qualifies(v, spec)
                    if ok:
                        return v
    raise UserError(f"invalid setting {key}={value!r}{source}: '{key}' must be {spec.expected()} "
                    f"(default.yaml annotation {spec.annotation}: {spec.meaning})")


def _check_keys(d: dict, schema: dict, source: str) -> None:
    """Raise UserError for keys that are not settings, naming the closest known keys."""
    for k in d:
        if k not in schema:
            close = difflib.get_close_matches(str(k), list(schema), n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise UserError(f"'{k}'{source} is not a valid setting{hint} "
                            f"(all settings and their defaults: 'yolo cfg', or {DEFAULT_CFG_PATH})")


def get_cfg(cfg: str | Path | dict | SimpleNamespace = DEFAULT_CFG_PATH,
            overrides: dict | None = None) -> IterableSimpleNamespace:
    """Merge defaults <- cfg <- file named by 'cfg' key <- overrides, validate every value, return a namespace.

    Unknown keys and values of the wrong type or range raise UserError naming the key, the value and
    what is expected (from the default.yaml annotation). Deprecated keys set to a non-default value warn.
    """
    defaults, schema = load_default_cfg(), load_cfg_schema()
    is_default = isinstance(cfg, (str, Path)) and Path(cfg).resolve() == Path(DEFAULT_CFG_PATH).resolve()
    base = {} if is_default else cfg2dict(cfg)
    overrides = cfg2dict(overrides)
    _check_keys(base, schema, f" (in {cfg})" if isinstance(cfg, (str, Path)) else "")
    _check_keys(overrides, schema, "")
    layers = [base, overrides]
    cfg_file = overrides.get("cfg", base.get("cfg"))
    if isinstance(cfg_file, (str, Path)) and str(cfg_file).strip().lower() not in ("", *_NONE_STRINGS):
        from ultralytics.utils.checks import check_yaml

        file_dict = cfg2dict(check_yaml(cfg_file))
        _check_keys(file_dict, schema, f" (in {cfg_file})")
        layers.insert(1, file_dict)
    merged = dict(defaults)
    for layer in layers:
        merged.update(layer)
    out = {}
    for k, v in merged.items():
        where = " (from the overrides)" if k in overrides else ""
        out[k] = _validate(k, v, schema[k], where)
        if schema[k].deprecated and out[k] != defaults[k]:
            LOGGER.warning(f"WARNING: '{k}' is deprecated: {schema[k].meaning}")
    return IterableSimpleNamespace(**out)


def check_imgsz(imgsz: int | list | tuple, stride: int = 32, min_dim: int = 1, max_dim: int = 2,
                floor: int = 0) -> int | list[int]:
    """Round an image size up to a multiple of `stride` (warning naming old and new value).

    Returns an int for an int input when min_dim == 1, else a list of ints ([s, s] for an int when min_dim == 2).
    """
    stride = max(int(stride), 1)
    given = imgsz
    if isinstance(imgsz, (int, float)) and not isinstance(imgsz, bool):
        sizes = [imgsz]
    elif isinstance(imgsz, (list, tuple)):
        sizes = list(imgsz)
    else:
        raise UserError(f"imgsz={imgsz!r} must be an int or a list of 1 or 2 ints, e.g. imgsz=640 or imgsz=[480, 640]")
    if not sizes or len(sizes) > max_dim or not all(
            isinstance(s, (int, float)) and not isinstance(s, bool) and float(s).is_integer() and s > 0 for s in sizes):
        raise UserError(f"imgsz={imgsz!r} must be a positive int or a list of 1 to {max_dim} positive ints")
    new = [max(math.ceil(int(s) / stride) * stride, floor) for s in sizes]
    if new != [int(s) for s in sizes]:
        shown = new if len(new) > 1 else new[0]
        LOGGER.warning(f"WARNING: imgsz={given} must be a multiple of max stride {stride}, updating to {shown}")
    if isinstance(given, (int, float)) and min_dim == 1:
        return new[0]
    return new * 2 if min_dim == 2 and len(new) == 1 else new


def parse_key_value_args(argv: list[str]) -> dict:
    """Parse ['epochs=3', 'imgsz=[640, 480]', "device=''", 'name=my run'] into a dict of typed values.

    Values go through yaml.safe_load ('True' -> True, '0.01' -> 0.01, '[640, 480]' -> list); 'None' -> None;
    `device` stays a string ('0' -> '0'). A token without '=' or with an empty key is a UserError naming it.
    """
    out = {}
    for token in argv:
        if "=" not in token:
            raise UserError(f"argument {token!r} is not key=value (e.g. epochs=3); "
                            f"quote values with spaces: name='my run'")
        key, value = token.split("=", 1)
        key, value = key.strip(), value.strip()
        if key.startswith("-"):
            LOGGER.warning(f"WARNING: '{key}' should be written without leading dashes: '{key.lstrip('-')}={value}'")
            key = key.lstrip("-")
        if not re.fullmatch(r"[A-Za-z_]\w*", key):
            raise UserError(f"argument {token!r} has no valid key before '='")
        out[key] = _parse_value(key, value)
    return out


def _parse_value(key: str, value: str) -> Any:
    """Read one CLI value: YAML scalars/lists, 'None' -> None, raw string when YAML fails or gives a mapping."""
    unquoted = value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value
    if value == "" or (value == unquoted and unquoted.lower() in _NONE_STRINGS):
        return None
    if key == "device":
        return unquoted
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return unquoted
    return unquoted if isinstance(parsed, dict) else parsed


def command_settings(overrides: dict, mode: str) -> IterableSimpleNamespace:
    """The validated settings of `yolo <mode> key=value ...` (defaults <- overrides <- mode); a model is required."""
    args = get_cfg(overrides={**overrides, "mode": mode})
    if not args.model:
        raise UserError(f"'yolo {mode}' needs a model, e.g. model=yolov10n.yaml or model=path/to/best.pt")
    return args
