"""YOLO reader: images with YOLO txt labels (in a parallel labels/ folder or beside each image) and classes.txt.

The boxes are turned back into pixels with the image size from the file header, so the writer applies the
same checks as for the other formats. Folders named train/val/test in the image path fix the split.
"""

from __future__ import annotations

import os
from pathlib import Path

from ultralytics.data.convert.common import Box, Item, Source
from ultralytics.data.convert.check import inspect_image
from ultralytics.data.image_io import ImageReadError, is_image_file
from ultralytics.data.labels import parse_label_bytes
from ultralytics.data.utils import img2label_paths
from ultralytics.utils import UserError


def read_classes(root: Path) -> list[str] | None:
    """Names from the first classes.txt found under root (one a line), or None."""
    for r, _, fs in sorted(os.walk(root)):
        if "classes.txt" in fs:
            return [ln.strip() for ln in (Path(r) / "classes.txt").read_text(encoding="utf-8-sig").splitlines()
                    if ln.strip()]
    return None


def _split_of(path: Path, root: Path) -> str | None:
    """'train' / 'val' / 'test' when one of the folders between root and the image is named so."""
    for part in path.relative_to(root).parts[:-1]:
        if part.lower() in ("train", "val", "valid", "test"):
            return "val" if part.lower() == "valid" else part.lower()
    return None


def read_yolo(root: str | Path, names: list[str] | None = None) -> Source:
    """Read a YOLO folder -> Source; names from `names=` or classes.txt (else a UserError)."""
    root = Path(root)
    names = list(names) if names else read_classes(root)
    if not names:
        raise UserError(f"YOLO source {root}: no classes.txt found; give the class names with names=[...]")
    src = Source("yolo", names=names)
    ims = sorted(Path(r) / f for r, _, fs in os.walk(root) for f in fs if is_image_file(f))
    for im, lb in zip(ims, img2label_paths([str(p) for p in ims])):
        lb = Path(lb) if Path(lb).is_file() else im.with_suffix(".txt")
        item = Item(image=im, split=_split_of(im, root), source=str(lb))
        src.items.append(item)
        if not lb.is_file():
            continue
        try:
            w, h, _ = inspect_image(im)
        except ImageReadError:  # the writer reports the image; without its size no box can be placed
            continue
        cls, xywh, dropped = parse_label_bytes(lb.read_bytes(), len(names))
        for row, reason in dropped:
            src.problem(lb, f"label_{reason}", f"row {row}")
        for c, (x, y, bw, bh) in zip(cls, xywh.tolist()):
            item.boxes.append(Box(names[int(c)], (x - bw / 2) * w, (y - bh / 2) * h, (x + bw / 2) * w,
                                  (y + bh / 2) * h))
    return src
