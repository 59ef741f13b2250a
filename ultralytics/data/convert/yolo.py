"""YOLO reader: images with YOLO txt labels (in a parallel labels/ folder or beside each image) and class names.

The names come from `names=`, else the first classes.txt, else the `names` of a data.yaml in the source
(Roboflow's YOLO export). The boxes are turned back into pixels with the image size from the file header,
so the writer applies the same checks as for the other formats. Folders named train/val/valid/test in the
image path fix the split. Images are read only inside the source folder (see safety.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from ultralytics.data.convert.check import inspect_image
from ultralytics.data.convert.common import (Box, Item, NotRegularFile, Source, finite, outside, read_regular,
                                          walk)
from ultralytics.data.convert.safety import confine
from ultralytics.data.image_io import ImageReadError, is_image_file
from ultralytics.data.labels import parse_label_bytes
from ultralytics.data.utils import img2label_paths
from ultralytics.utils import UserError

FIELDS = ("class", "x_centre", "y_centre", "width", "height")


def _yaml_names(f: Path) -> list[str] | None:
    """`names` of a data.yaml (list or {id: name}), or None when it has none or cannot be read."""
    try:
        d = yaml.safe_load(read_regular(f).decode("utf-8-sig"))
    except (OSError, ValueError, RecursionError, yaml.YAMLError):
        return None
    names = d.get("names") if isinstance(d, dict) else None
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    return [str(n) for n in names] if isinstance(names, list) and names else None


def read_classes(root: Path) -> list[str] | None:
    """Names from the first classes.txt under root (one a line), else from a data.yaml's names, or None."""
    files = walk(root)
    for f in files:
        if f.name == "classes.txt":
            return [ln.strip() for ln in read_regular(f).decode("utf-8-sig").splitlines() if ln.strip()]
    for f in files:
        if f.name in ("data.yaml", "data.yml") and _yaml_names(f):
            return _yaml_names(f)
    return None


def _split_of(path: Path, root: Path) -> str | None:
    """'train' / 'val' / 'test' when one of the folders between root and the image is named so."""
    for part in path.relative_to(root).parts[:-1]:
        if part.lower() in ("train", "val", "valid", "test"):
            return "val" if part.lower() == "valid" else part.lower()
    return None


def _bad_field(line: bytes) -> str:
    """'column 2 (x_centre) 'nan'' for the first field of a label row that is not a finite number."""
    parts = line.decode("utf-8", "replace").split()
    for j, p in enumerate(parts):
        try:
            finite(p, "")
        except ValueError:
            name = FIELDS[j] if len(parts) == 5 else ("class" if j == 0 else f"{'xy'[(j - 1) % 2]}{(j + 1) // 2}")
            return f"column {j + 1} ({name}) {p!r} is not a finite number"
    return "not a number"


def read_yolo(root: str | Path, names: list[str] | None = None, max_bytes: int = 1 << 62) -> Source:
    """Read a YOLO folder -> Source; names from `names=`, classes.txt or data.yaml (else a UserError)."""
    root = Path(root)
    names = list(names) if names else read_classes(root)
    if not names:
        raise UserError(f"YOLO source {root}: no classes.txt (or data.yaml with names) found; "
                        f"give the class names with names=[...]")
    src = Source("yolo", names=names)
    real_root = [Path(os.path.realpath(root))]
    ims = [p for p in walk(root) if is_image_file(p.name)]
    for im, lb in zip(ims, img2label_paths([str(p) for p in ims])):
        lb = Path(lb) if os.path.lexists(lb) else im.with_suffix(".txt")
        item = Item(image=im, split=_split_of(im, root), source=str(lb))
        src.items.append(item)
        if not os.path.lexists(lb):
            continue
        if outside(lb, root):
            src.problem(lb, "outside_source", f"a link to {os.path.realpath(lb)}, outside {root}; not read")
            continue
        try:
            w, h, _ = inspect_image(confine(im, real_root, max_bytes), max_bytes=max_bytes)
            raw = read_regular(lb)
        except ImageReadError:  # the writer reports the image; without its size no box can be placed
            continue
        except NotRegularFile as e:
            src.problem(lb, "not_regular_file", str(e))
            continue
        cls, xywh, dropped = parse_label_bytes(raw, len(names))
        lines = raw.removeprefix(b"\xef\xbb\xbf").splitlines()
        for row, reason in dropped:
            if reason == "non_numeric":
                src.problem(lb, "bad_number", f"row {row}: {_bad_field(lines[row - 1])}")
            else:
                src.problem(lb, f"label_{reason}", f"row {row}")
        for c, (x, y, bw, bh) in zip(cls, xywh.tolist()):
            item.boxes.append(Box(names[int(c)], (x - bw / 2) * w, (y - bh / 2) * h, (x + bw / 2) * w,
                                  (y + bh / 2) * h))
    return src
