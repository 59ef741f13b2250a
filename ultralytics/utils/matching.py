"""Matching detections to ground truth exactly as pycocotools' COCOeval does, per IoU threshold and area range.

The rule (COCOeval.evaluateImg, iouType 'bbox'), for one image and one class at one IoU threshold t:
detections are taken in descending score (a stable sort); each takes, among the ground truths not yet
taken at t, the one of highest IoU >= t (on equal IoU the later ground truth, as pycocotools' loop does).
Ground truths outside the area range being scored are "ignored": a detection prefers a non-ignored ground
truth and falls back on an ignored one; a detection matched to an ignored ground truth is ignored (neither
TP nor FP), and so is an unmatched detection whose own box area is outside the range.

The numbers are COCOeval's to the last bit: IoU in float64 without eps (`coco_box_iou`), thresholds
`np.linspace(.5, .95, 10)` in float64 (`IOU_THRESHOLDS`; note that its 0.9 is 0.8999999999999999), each capped
at 1 - 1e-10, and a pair taken when IoU >= threshold. Float32 IoU with an eps, or float32 thresholds, decide an
IoU that lies exactly on a threshold differently in about a fifth of such cases (tests/test_scoring_edges.py).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ("AREA_RANGES", "IOU_THRESHOLDS", "coco_box_iou", "match_by_score", "match_predictions", "match_by_area",
           "box_area")

# COCO's area ranges in original-image pixels^2 (both ends inclusive, as COCOeval tests them)
AREA_RANGES = {"all": (0.0, 1e10), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e10)}
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # COCOeval's iouThrs, float64 values exactly as it makes them


def _np(x) -> np.ndarray:
    """x (tensor, ndarray or sequence) as a numpy array on the CPU."""
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def box_area(xyxy) -> np.ndarray:
    """Areas of xyxy boxes (n, 4) -> (n,) float64 (0 for degenerate boxes)."""
    b = _np(xyxy).astype(np.float64).reshape(-1, 4)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def coco_box_iou(gt_xyxy, det_xyxy) -> np.ndarray:
    """IoU as pycocotools computes it for boxes: (M, 4) and (N, 4) xyxy -> (M, N) float64.

    COCO holds boxes as x, y, w, h; its intersection is min(x + w) - max(x) (likewise in y), the IoU is 0 when
    either side of the intersection is <= 0 (so a zero-area box matches nothing), else i / (area_d + area_g - i)
    with area = w * h, all in float64 and without an eps. Boxes are converted to x, y, w, h first (w = x2 - x1)
    so that the arithmetic is the same as on the x, y, w, h that a COCO JSON holds.
    """
    g, d = _np(gt_xyxy).astype(np.float64).reshape(-1, 4), _np(det_xyxy).astype(np.float64).reshape(-1, 4)
    gw, gh, dw, dh = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1], d[:, 2] - d[:, 0], d[:, 3] - d[:, 1]
    iw = np.minimum((d[:, 0] + dw)[None], (g[:, 0] + gw)[:, None]) - np.maximum(d[None, :, 0], g[:, None, 0])
    ih = np.minimum((d[:, 1] + dh)[None], (g[:, 1] + gh)[:, None]) - np.maximum(d[None, :, 1], g[:, None, 1])
    pos = (iw > 0) & (ih > 0)
    inter = np.where(pos, iw * ih, 0.0)
    union = (dw * dh)[None] + (gw * gh)[:, None] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=pos)


def _thresholds(iouv) -> np.ndarray:
    """IoU thresholds (T,) as float64, each capped at 1 - 1e-10 as COCOeval does."""
    return np.minimum(_np(iouv).astype(np.float64).reshape(-1), 1 - 1e-10)


def match_by_score(iou: np.ndarray, valid: np.ndarray, conf: np.ndarray, gt_ignore: np.ndarray | None = None):
    """Score-ordered greedy matching (COCOeval's loop), for T thresholds at once.

    iou: (M, N) IoU of each ground truth with each detection; valid: (M, N, T) bool, the pairs allowed at each
    threshold (same class and IoU >= t for COCO); conf: (N,) scores; gt_ignore: optional (M,) bool.
    Returns (N, T) int: the index of the ground truth each detection took at each threshold, -1 for none.
    """
    m, n, t = valid.shape
    match = np.full((n, t), -1, dtype=np.int64)
    if not (m and n):
        return match
    ig = np.zeros(m, dtype=bool) if gt_ignore is None else np.asarray(gt_ignore, dtype=bool).reshape(m)
    used = np.zeros((m, t), dtype=bool)
    cols = np.arange(t)
    order = np.argsort(-np.asarray(conf, dtype=np.float64).reshape(n), kind="stable")
    has_cand = valid.any((0, 2))
    for j in order[has_cand[order]]:
        cand = valid[:, j, :] & ~used  # (M, T)
        regular = cand & ~ig[:, None]
        cand = np.where(regular.any(0, keepdims=True), regular, cand)  # non-ignored ground truths first
        score = np.where(cand, iou[:, j, None], -np.inf)
        g = m - 1 - score[::-1].argmax(0)  # (T,) best ground truth, the last one on equal IoU
        ok = cand[g, cols]
        match[j, ok] = g[ok]
        used[g[ok], cols[ok]] = True
    return match


def match_predictions(pred_classes, true_classes, iou, iouv, conf):
    """COCO true positives of each detection at each IoU threshold (no area range: nothing ignored).

    pred_classes: (N,) class ids; true_classes: (M,); iou: (M, N) (coco_box_iou for COCO's values); iouv: (T,)
    thresholds (IOU_THRESHOLDS for COCO's); conf: (N,) scores.
    Returns (N, T) bool: a torch tensor on pred_classes' device if pred_classes is a tensor, else an ndarray.
    """
    device = pred_classes.device if isinstance(pred_classes, torch.Tensor) else None
    pc, tc, thr = _np(pred_classes).reshape(-1), _np(true_classes).reshape(-1), _thresholds(iouv)
    iou_np = _np(iou).astype(np.float64).reshape(len(tc), len(pc))
    valid = (tc[:, None] == pc[None, :])[..., None] & (iou_np[..., None] >= thr)
    correct = match_by_score(iou_np, valid, _np(conf).reshape(-1)) >= 0
    return torch.from_numpy(correct).to(device) if device is not None else correct


def match_by_area(det_boxes, det_conf, det_cls, gt_boxes, gt_cls, iouv, ranges=AREA_RANGES) -> dict:
    """COCO matching of one image for each area range (boxes in original-image pixels, xyxy).

    det_boxes (N, 4), det_conf (N,), det_cls (N,); gt_boxes (M, 4), gt_cls (M,); iouv (T,) (IOU_THRESHOLDS).
    Returns {range name: (tp (N, T) bool, ignored (N, T) bool, gt_in_range (M,) bool)}.
    """
    db, gb = _np(det_boxes).astype(np.float64).reshape(-1, 4), _np(gt_boxes).astype(np.float64).reshape(-1, 4)
    dc, gc = _np(det_cls).reshape(-1), _np(gt_cls).reshape(-1)
    thr = _thresholds(iouv)
    n, m = len(db), len(gb)
    iou = coco_box_iou(gb, db)
    valid = (gc[:, None] == dc[None, :])[..., None] & (iou[..., None] >= thr)  # (M, N, T)
    det_area, gt_area = box_area(db), box_area(gb)
    out = {}
    for name, (lo, hi) in ranges.items():
        gt_ig = (gt_area < lo) | (gt_area > hi)
        match = match_by_score(iou, valid, det_conf if n else np.zeros(0), gt_ig)
        matched = match >= 0
        to_ignored = matched & (gt_ig[np.maximum(match, 0)] if m else False)
        out_of_range = ((det_area < lo) | (det_area > hi))[:, None]
        out[name] = (matched & ~to_ignored, to_ignored | (~matched & out_of_range), ~gt_ig)
    return out
