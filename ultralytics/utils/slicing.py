"""Slice geometry shared by tiling at conversion, sliced prediction and sliced validation.

One definition of where the windows over a large image lie, so that a tile written for training and a
slice cut at inference are the same rectangle. The positions follow SAHI's `get_slice_bboxes`: windows of
`slice` pixels step by `slice - int(overlap * slice)`, and a window that would cross the right or bottom
border is moved back so that it ends on the border (it then overlaps its neighbour more than the others do).
An image no larger than the slice along an axis is one window along that axis; it is never upscaled.

Merging of the predictions cut by the window seams lives beside this file (added by the sliced-inference
work); the functions here are pure and know nothing of models.
"""

from __future__ import annotations

from ultralytics.utils import UserError


def check_overlap(overlap: float, name: str = "overlap") -> float:
    """Return `overlap` as a float in [0, 0.9), or raise a UserError naming the setting."""
    try:
        v = float(overlap)
    except (TypeError, ValueError):
        raise UserError(f"{name}={overlap!r} is not a number; use a fraction in [0, 0.9), e.g. {name}=0.2") from None
    if not 0.0 <= v < 0.9:
        raise UserError(f"{name}={overlap!r} is outside [0, 0.9): the share of a window that its neighbour covers")
    return v


def check_slice_size(size: int, name: str = "slice", stride: int = 32) -> int:
    """Return `size` as an int >= 32 and a multiple of `stride`, or raise a UserError naming the setting."""
    if isinstance(size, bool) or not isinstance(size, (int, float)) or int(size) != size:
        raise UserError(f"{name}={size!r} is not a whole number of pixels, e.g. {name}=640")
    size = int(size)
    if size < 32 or size % stride:
        raise UserError(f"{name}={size} must be at least 32 and a multiple of the model stride {stride} "
                        f"(e.g. {name}={max(32, (size // stride or 1) * stride)})")
    return size


def slice_positions(height: int, width: int, slice_h: int, slice_w: int | None = None,
                    overlap_h: float = 0.2, overlap_w: float | None = None) -> list[tuple[int, int, int, int]]:
    """The windows (x1, y1, x2, y2) over an image of `height` x `width` pixels, row by row, as SAHI places them.

    Step along x is `slice_w - int(overlap_w * slice_w)` (likewise y); the last window of a row or column is
    moved back to end at the border. Windows are clipped at 0, so an image smaller than the slice is one window
    of the image's own size.
    """
    slice_w = slice_h if slice_w is None else slice_w
    overlap_w = overlap_h if overlap_w is None else overlap_w
    if height <= 0 or width <= 0:
        raise UserError(f"cannot slice an image of {width}x{height} pixels")
    y_overlap, x_overlap = int(overlap_h * slice_h), int(overlap_w * slice_w)
    out: list[tuple[int, int, int, int]] = []
    y1 = y2 = 0
    while y2 < height:
        x1 = x2 = 0
        y2 = y1 + slice_h
        while x2 < width:
            x2 = x1 + slice_w
            if y2 > height or x2 > width:  # past a border: move the window back so it ends on it
                bx2, by2 = min(width, x2), min(height, y2)
                out.append((max(0, bx2 - slice_w), max(0, by2 - slice_h), bx2, by2))
            else:
                out.append((x1, y1, x2, y2))
            x1 = x2 - x_overlap
        y1 = y2 - y_overlap
    return out
