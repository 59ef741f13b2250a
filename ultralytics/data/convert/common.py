"""The neutral form every reader returns and the writer consumes: images with pixel boxes and class names.

A reader turns its source format into a `Source`: one `Item` per image (the image path, the size the
annotation claims, boxes in pixels as the tool wrote them, an optional split the source fixes) plus the
problems it met (malformed files, unknown ids) and counts for the report (crowd, difficult).
Readers never write files; the writer never parses a format.
"""

from __future__ import annotations

import math
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ultralytics.data.image_io import is_image_file

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".JPG", ".JPEG", ".PNG")


@dataclass
class Box:
    """One object: class name and corners in pixels (x1 <= x2, y1 <= y2 expected; the writer checks)."""

    name: str
    x1: float
    y1: float
    x2: float
    y2: float
    difficult: bool = False


@dataclass
class Item:
    """One image of the source. size: (w, h) the annotation claims, or None; split: train/val/test or None."""

    image: Path
    boxes: list[Box] = field(default_factory=list)
    size: tuple[int, int] | None = None
    split: str | None = None
    source: str = ""  # the annotation file, for problem rows
    data: bytes | None = None  # the image's bytes when the annotation embeds them (LabelMe imageData)


@dataclass
class Source:
    """What a reader found: items, problem rows (file, problem, detail), class order if the source fixes one."""

    fmt: str
    items: list[Item] = field(default_factory=list)
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    names: list[str] | None = None  # class order the source defines (COCO ids, YOLO classes.txt)
    counts: Counter = field(default_factory=Counter)  # crowd, difficult, ... for the report
    roots: list[Path] = field(default_factory=list)  # real folders images may be read from (read_source sets them)
    origin: list[str] = field(default_factory=list)  # source= as given, for the manifest

    def problem(self, file, problem: str, detail: str = "") -> None:
        """Record one problem row."""
        self.problems.append((str(file), problem, detail))


def split_from_name(name: str) -> str | None:
    """'instances_train2017.json' -> 'train'; 'val', 'valid', 'test' likewise; None when none is named."""
    low = name.lower()
    for key, split in (("train", "train"), ("val", "val"), ("test", "test")):
        if key in low:
            return split
    return None


def find_image(stem_or_name: str, folders: list[Path]) -> Path | None:
    """The first existing image among folders/<name> (name as given, then its base name, then stem + suffixes)."""
    name = Path(stem_or_name.replace("\\", "/"))
    for folder in folders:
        for cand in (folder / name, folder / name.name):
            if _present(cand):
                return cand
        if not is_image_file(name.name):
            for suf in IMAGE_SUFFIXES:
                cand = folder / f"{name.name}{suf}"
                if _present(cand):
                    return cand
    return None


def _present(p: Path) -> bool:
    """An entry that is there and not a folder (a FIFO or device counts: the writer refuses it by name)."""
    return os.path.lexists(p) and not p.is_dir()


class BadNumber(ValueError):
    """A coordinate or size that is not a finite number; str() names the field and the value."""


def finite(value, what: str) -> float:
    """float(value) when it is a finite number; BadNumber naming `what` otherwise (NaN, inf, text, None)."""
    try:
        v = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise BadNumber(f"{what}={value!r} is not a number") from None
    if isinstance(value, bool) or not math.isfinite(v):
        raise BadNumber(f"{what}={value!r} is not a finite number")
    return v


def is_ignored(name: str) -> bool:
    """README*, *.md and licence files: documentation an export carries, never annotations."""
    low = name.lower()
    return low.startswith(("readme", "license", "licence", "copying")) or low.endswith(".md")


def outside(path: Path, root: Path) -> bool:
    """True when path, symlinks followed, leads out of root (an annotation file that is not the source's)."""
    real, top = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([real, top]) != top


def walk(root: Path):
    """Every file under root as a Path, sorted, skipping hidden folders (.git, .dvc, temporary outputs)."""
    out = []
    for r, ds, fs in os.walk(root):
        ds[:] = [d for d in ds if not d.startswith(".")]
        out += [Path(r) / f for f in fs]
    return sorted(out)


class NotRegularFile(OSError):
    """An annotation path that is a FIFO, device, socket or folder: refused without opening it."""


def read_regular(path: Path) -> bytes:
    """The bytes of a regular file; NotRegularFile (nothing opened) for a FIFO, device or folder."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFile(f"{path} is not a regular file (FIFO, device or folder); not opened")
    with open(path, "rb") as f:
        return f.read()
