"""Slice geometry shared by tiling at conversion, sliced prediction and sliced validation.

One definition of where the windows over a large image lie, so that a tile written for training and a
slice cut at inference are the same rectangle. The positions follow SAHI's `get_slice_bboxes`: windows of
`slice` pixels step by `slice - int(overlap * slice)`, and a window that would cross the right or bottom
border is moved back so that it ends on the border (it then overlaps its neighbour more than the others do).
An image no larger than the slice along an axis is one window along that axis; it is never upscaled.

Merging of the predictions cut by the window seams (`merge_detections`: SAHI 0.12's GREEDYNMM and NMS, with
IOS or IOU) is below; the functions here are pure and know nothing of models.
"""

from __future__ import annotations

import numpy as np

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


# --- merging the predictions of overlapping windows ------------------------------------------------------------------
MERGE_METHODS = ("nmm", "nms")
MERGE_METRICS = ("ios", "iou")


def check_merge(method: str, metric: str, threshold: float) -> tuple[str, str, float]:
    """(method, metric, threshold) lower-cased and checked, or a UserError naming the setting."""
    method, metric = str(method).lower(), str(metric).lower()
    if method not in MERGE_METHODS:
        raise UserError(f"merge={method!r} is not one of {'/'.join(MERGE_METHODS)} (greedy non-maximum merging or NMS)")
    if metric not in MERGE_METRICS:
        raise UserError(f"merge_metric={metric!r} is not one of {'/'.join(MERGE_METRICS)} "
                        "(intersection over the smaller area, or over the union)")
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise UserError(f"merge_threshold={threshold!r} is not a number in [0, 1]") from None
    if not 0.0 <= t <= 1.0:
        raise UserError(f"merge_threshold={threshold!r} is outside [0, 1]")
    return method, metric, t


def box_overlap(box, boxes, metric: str = "ios"):
    """Overlap of one xyxy box (4,) with each of `boxes` (n, 4): intersection over the union (iou) or over the
    smaller of the two areas (ios). numpy float64 (n,)."""
    box, boxes = np.asarray(box, np.float64), np.asarray(boxes, np.float64).reshape(-1, 4)
    w = (np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])).clip(min=0)
    h = (np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])).clip(min=0)
    inter = w * h
    a = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    den = np.minimum(areas, a) if metric == "ios" else areas + a - inter
    return inter / np.maximum(den, 1e-12)


def _greedy_groups(boxes, scores, metric: str, threshold: float, suppress_only: bool):
    """SAHI 0.12's greedy loop over one class: [(kept index, [matched indices, best score first])].

    The best remaining box is kept; the remaining boxes whose overlap with it is >= threshold are its matches
    and leave the pool; repeat on the rest. Ties in score: the later index counts as the better box (SAHI
    takes the last element of an ascending sort).
    """
    order = np.argsort(scores, kind="stable")
    groups = []
    while len(order):
        idx, order = order[-1], order[:-1]
        if not len(order):
            groups.append((int(idx), []))
            break
        hit = box_overlap(boxes[idx], boxes[order], metric) >= threshold
        groups.append((int(idx), [] if suppress_only else order[hit][::-1].tolist()))
        rest = order[~hit]
        order = rest[np.argsort(scores[rest], kind="stable")]
    return groups


def merge_detections(det, method: str = "nmm", metric: str = "ios", threshold: float = 0.5):
    """Merge the detections of overlapping windows, class by class; returns (m, 6) by descending score.

    det: (n, 6) x1, y1, x2, y2, score, class in full-image pixels (numpy or torch; the result has det's type).
    method='nms': the kept boxes of greedy suppression (a box is dropped when its overlap with a better box of
    its class is >= threshold). method='nmm' (greedy non-maximum merging, SAHI's GREEDYNMM): each kept box
    absorbs its matches in turn, best first, while the overlap of the (growing) merged box with the match is
    >= threshold; the merged box is the enclosing box of both, with the higher score. As in SAHI 0.12, a match
    whose overlap with the merged box has fallen below the threshold is neither merged nor kept.
    metric: 'ios' (intersection over the smaller area) or 'iou'.
    """
    method, metric, threshold = check_merge(method, metric, threshold)
    is_torch = hasattr(det, "detach")
    a = (det.detach().cpu().numpy() if is_torch else np.asarray(det)).astype(np.float64).reshape(-1, 6)
    out = []
    for c in np.unique(a[:, 5]):
        idx = np.flatnonzero(a[:, 5] == c)
        sub = a[idx]
        for keep, matches in _greedy_groups(sub[:, :4], sub[:, 4], metric, threshold, method == "nms"):
            box = sub[keep].copy()
            for m in matches:
                if box_overlap(box[:4], sub[m, :4], metric)[0] >= threshold:
                    box[:2] = np.minimum(box[:2], sub[m, :2])
                    box[2:4] = np.maximum(box[2:4], sub[m, 2:4])
                    box[4] = max(box[4], sub[m, 4])
            out.append(box)
    res = np.stack(out) if out else np.zeros((0, 6))
    res = res[np.argsort(-res[:, 4], kind="stable")]
    if is_torch:
        import torch

        return torch.as_tensor(res, dtype=det.dtype if det.is_floating_point() else torch.float32)
    return res.astype(np.asarray(det).dtype if np.asarray(det).dtype.kind == "f" else np.float64)
