"""Prediction sources: paths, folders, globs, lists, arrays -> (name, BGR image) pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from ultralytics.data.image_io import ImageReadError, imread
from ultralytics.data.utils import get_img_files
from ultralytics.utils import LOGGER, UserError


class ImageSource:
    """Iterable over (name, im0) with im0 a BGR uint8 (H, W, 3) array; unreadable files are skipped with a warning."""

    def __init__(self, items: list, strict: bool):
        """items: image paths (str) or (name, ndarray) pairs; strict: a single unreadable file raises."""
        self.items, self.strict = items, strict

    def __len__(self) -> int:
        """Number of entries (before skipping unreadable files)."""
        return len(self.items)

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        """Yield (name or path, BGR image)."""
        for it in self.items:
            if isinstance(it, tuple):
                yield it
                continue
            try:
                yield it, imread(it)
            except ImageReadError as e:
                if self.strict:
                    raise
                LOGGER.warning(f"WARNING ⚠️ skipping {e}")


def _as_bgr(a: np.ndarray, name: str) -> np.ndarray:
    """Check an array image: (H, W, 3) or (H, W) uint8 (BGR) -> (H, W, 3) uint8."""
    if not isinstance(a, np.ndarray) or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        shape = getattr(a, "shape", None)
        raise UserError(f"source {name}: expected a BGR image array (H, W, 3), got {type(a).__name__} {shape}")
    if a.dtype != np.uint8:
        raise UserError(f"source {name}: expected dtype uint8, got {a.dtype}")
    if a.ndim == 2 or a.shape[2] == 1:
        a = np.repeat(a.reshape(a.shape[0], a.shape[1], 1), 3, axis=2)
    elif a.shape[2] == 4:
        a = a[..., :3]
    return np.ascontiguousarray(a)


def load_inference_source(source) -> ImageSource:
    """Source of images for prediction -> iterable of (name, im0 BGR ndarray).

    source: an image path, a folder, a glob, a .txt list of paths, a list of paths, a BGR ndarray
    (H, W, 3), a PIL image, or a list of arrays / PIL images. A path that does not exist raises a
    UserError naming it; unreadable images among many are skipped with a warning naming them.
    """
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        Image = None
    single = not isinstance(source, (list, tuple))
    items, paths = [], []
    for k, s in enumerate([source] if single else source):
        if isinstance(s, np.ndarray):
            items.append((f"image{k}.jpg", _as_bgr(s, f"image{k}")))
        elif Image is not None and isinstance(s, Image.Image):
            rgb = np.asarray(s.convert("RGB"))
            items.append((getattr(s, "filename", "") or f"image{k}.jpg", np.ascontiguousarray(rgb[..., ::-1])))
        elif isinstance(s, (str, Path)):
            files = get_img_files(str(s))  # raises UserError naming a path that does not exist
            items += files
            paths += files
        else:
            raise UserError(f"unsupported prediction source {type(s).__name__}: give paths, folders, globs or arrays")
    strict = single and len(items) == 1 and len(paths) == 1 and Path(str(source)).is_file()
    return ImageSource(items, strict=strict)
