"""The neutral form every reader returns and the writer consumes: images with pixel boxes and class names.

A reader turns its source format into a `Source`: one `Item` per image (the image path, the size the
annotation claims, boxes in pixels as the tool wrote them, an optional split the source fixes) plus the
problems it met (malformed files, unknown ids) and counts for the report (crowd, difficult).
Readers never write files; the writer never parses a format.
"""

from __future__ import annotations

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


@dataclass
class Source:
    """What a reader found: items, problem rows (file, problem, detail), class order if the source fixes one."""

    fmt: str
    items: list[Item] = field(default_factory=list)
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    names: list[str] | None = None  # class order the source defines (COCO ids, YOLO classes.txt)
    counts: Counter = field(default_factory=Counter)  # crowd, difficult, ... for the report

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
            if cand.is_file():
                return cand
        if not is_image_file(name.name):
            for suf in IMAGE_SUFFIXES:
                cand = folder / f"{name.name}{suf}"
                if cand.is_file():
                    return cand
    return None
