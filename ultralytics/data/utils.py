"""Dataset helpers: resolve a data YAML, find image files, map images to label files."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import yaml

from ultralytics.data.image_io import IMG_FORMATS, ImageReadError, imread, is_image_file  # noqa: F401 (re-export)
from ultralytics.data.labels import verify_image_label  # noqa: F401 (re-export)
from ultralytics.utils import REPO_ROOT, ROOT, UserError

DATASETS_DIR = REPO_ROOT / "datasets"
CFG_DATASETS_DIR = ROOT / "cfg" / "datasets"
SPLITS = ("train", "val", "test")
_GLOB_CHARS = set("*?[")


def img2label_paths(img_paths: list[str]) -> list[str]:
    """Label file of each image: the last '/images/' in the path becomes '/labels/', the suffix '.txt'."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return [os.path.splitext(sb.join(p.rsplit(sa, 1)))[0] + ".txt" for p in img_paths]


def _is_glob(p: str) -> bool:
    """True when the string contains glob wildcards."""
    return bool(_GLOB_CHARS & set(p))


def _list_file_entries(list_file: Path) -> list[str]:
    """Image paths listed one per line in a .txt file; relative lines are taken relative to the file's folder."""
    try:
        text = list_file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"image list file {list_file} could not be read: {e}") from None
    base, out = list_file.parent, []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(os.path.abspath(line if os.path.isabs(line) else base / line))
    return out


def get_img_files(img_path: str | Path | list) -> list[str]:
    """Image files from a folder (recursive), a glob, a .txt list of paths, an image path, or a list of those.

    Returns sorted absolute paths. Files named in a list file are kept even when absent (reported later).
    Raises UserError naming the path when it does not exist or holds no images.
    """
    files: list[str] = []
    for p in img_path if isinstance(img_path, (list, tuple)) else [img_path]:
        s = str(p)
        if _is_glob(s):
            found = [os.path.abspath(f) for f in glob.glob(s, recursive=True) if os.path.isfile(f)]
        elif os.path.isdir(s):
            found = [os.path.join(r, f) for r, _, fs in os.walk(os.path.abspath(s)) for f in fs]
        elif os.path.isfile(s) and s.lower().endswith(".txt"):
            found = _list_file_entries(Path(s))
        elif os.path.isfile(s):
            found = [os.path.abspath(s)]
        else:
            raise UserError(f"image source {s} does not exist (expected a folder, a glob, a .txt list or an image)")
        found = [f for f in found if is_image_file(f)]
        if not found:
            raise UserError(f"no images found in {s} (formats: {', '.join(sorted(IMG_FORMATS))})")
        files += found
    return sorted(set(files))


def _load_yaml(path: Path) -> dict:
    """Read a YAML mapping or raise a UserError naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            d = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise UserError(f"data YAML {path} is not valid YAML: {e}") from None
    if not isinstance(d, dict):
        raise UserError(f"data YAML {path} must be a mapping of keys (path, train, val, names), got {type(d).__name__}")
    return d


def _find_yaml(data: str | Path) -> Path:
    """Locate a data YAML: as given (absolute or relative to cwd), else by name in ultralytics/cfg/datasets."""
    p = Path(data)
    if p.is_file():
        return p.resolve()
    tried = [str(p.resolve())]
    if len(p.parts) == 1:  # a bare name: look among the shipped dataset YAMLs
        for cand in (CFG_DATASETS_DIR / p.name, CFG_DATASETS_DIR / f"{p.name}.yaml"):
            if cand.is_file():
                return cand
            tried.append(str(cand))
    raise UserError(f"data YAML '{data}' not found; looked at: {', '.join(tried)}")


def _parse_names(d: dict, where: str) -> dict[int, str]:
    """names (list or {int: str}) and/or nc -> {0: name0, ...}; UserError on a missing or inconsistent key."""
    names, nc = d.get("names"), d.get("nc")
    if names is None and nc is None:
        raise UserError(f"{where}: key 'names' (or 'nc') is missing; add e.g. names: {{0: person, 1: car}}")
    if names is None:
        if not isinstance(nc, int) or nc < 1:
            raise UserError(f"{where}: key 'nc' must be a positive integer, got {nc!r}")
        return {i: f"class{i}" for i in range(nc)}
    if isinstance(names, (list, tuple)):
        out = {i: str(n) for i, n in enumerate(names)}
    elif isinstance(names, dict):
        try:
            out = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise UserError(f"{where}: key 'names' must map integer class ids to names, got keys {list(names)}")
    else:
        raise UserError(f"{where}: key 'names' must be a list or a mapping, got {type(names).__name__}")
    if sorted(out) != list(range(len(out))) or not out:
        raise UserError(f"{where}: key 'names' must have class ids 0..n-1 without gaps, got {sorted(out)}")
    if nc is not None and nc != len(out):
        raise UserError(f"{where}: key 'nc' is {nc} but 'names' has {len(out)} entries")
    return out


def _resolve_root(path_value, yaml_dir: Path | None) -> Path:
    """Dataset root: absolute as is; relative -> the YAML's folder if it exists there, else REPO_ROOT/datasets."""
    p = Path(path_value)
    if p.is_absolute():
        return p
    if yaml_dir is not None and (yaml_dir / p).is_dir():
        return (yaml_dir / p).resolve()
    if yaml_dir is None and p.is_dir():  # a dict given directly: relative to the working directory
        return p.resolve()
    return (DATASETS_DIR / p).resolve()


def _ensure_builtin(d: dict, root: Path, where: str) -> None:
    """Generate the built-in dataset named by the YAML key 'builtin' at `root` if it is absent or stale."""
    from ultralytics.data.builtin import GENERATORS, ensure_builtin_dataset

    name, args = d["builtin"], d.get("builtin_args") or {}
    if name not in GENERATORS:
        raise UserError(f"{where}: key 'builtin' is {name!r}; known built-in datasets: {sorted(GENERATORS)}")
    if not isinstance(args, dict) or set(args) - {"n_train", "n_val", "seed"}:
        raise UserError(f"{where}: key 'builtin_args' may only set n_train, n_val, seed; got {args!r}")
    ensure_builtin_dataset(root.parent, name=root.name, generator=name, **args)


def _resolve_split(value, root: Path, key: str, where: str) -> str | list[str]:
    """A split entry (str or list) -> absolute path(s), checking each exists."""
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for v in items:
        p = Path(str(v))
        p = p if p.is_absolute() else root / p
        s = str(p)
        if not (glob.glob(s, recursive=True) if _is_glob(s) else p.exists()):
            raise UserError(f"{where}: '{key}' path {s} does not exist (dataset root 'path' is {root})")
        out.append(s)
    return out if isinstance(value, (list, tuple)) else out[0]


def check_det_dataset(data: str | Path | dict) -> dict:
    """Resolve a detection data YAML (file path, bare name of a shipped YAML, or an already-loaded dict).

    Returns the YAML's keys with: 'path' (absolute str), 'train', 'val', optional 'test' (absolute str or
    list), 'names' {int: str}, 'nc' int, 'yaml_file' (str or ''). Generates the built-in dataset on first
    use. Raises UserError naming the file, the key and the path for anything missing.
    """
    if isinstance(data, dict):
        d, yaml_file = dict(data), str(data.get("yaml_file") or "")
        yaml_dir = Path(yaml_file).parent if yaml_file else None
    else:
        yf = _find_yaml(data)
        d, yaml_file, yaml_dir = _load_yaml(yf), str(yf), yf.parent
    where = f"data YAML {yaml_file}" if yaml_file else "data dict"
    d["names"] = _parse_names(d, where)
    d["nc"] = len(d["names"])
    for key in ("train", "val"):
        if not d.get(key):
            raise UserError(f"{where}: key '{key}' is missing (give the {key} images folder, relative to 'path')")
    root = _resolve_root(d.get("path") or (yaml_dir or "."), yaml_dir)
    if d.get("builtin"):
        _ensure_builtin(d, root, where)
    if not root.is_dir():
        raise UserError(f"{where}: dataset root 'path' {root} does not exist")
    d["path"] = str(root)
    for key in SPLITS:
        if d.get(key):
            d[key] = _resolve_split(d[key], root, key, where)
        else:
            d.pop(key, None)
    d["yaml_file"] = yaml_file
    return d
