"""Matching detections to ground truth exactly as pycocotools' COCOeval does, per IoU threshold and area range.

The rule (COCOeval.evaluateImg, iouType 'bbox'), for one image and one class at one IoU threshold t:
detections are taken in descending score (a stable sort); each takes, among the ground truths not yet
taken at t, the one of highest IoU >= t (on equal IoU the later ground truth, as pycocotools' loop does).
Ground truths outside the area range being scored are "ignored": a detection prefers a non-ignored ground
truth and falls back on an ignored one; a detection matched to an ignored ground truth is ignored (neither
TP nor FP), and so is an unmatched detection whose own box area is outside the range.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ("AREA_RANGES", "match_by_score", "match_predictions", "match_by_area", "box_area")

# COCO's area ranges in original-image pixels^2 (both ends inclusive, as COCOeval tests them)
AREA_RANGES = {"all": (0.0, 1e10), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e10)}


def _np(x) -> np.ndarray:
    """x (tensor, ndarray or sequence) as a numpy array on the CPU."""
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def box_area(xyxy) -> np.ndarray:
    """Areas of xyxy boxes (n, 4) -> (n,) float64 (0 for degenerate boxes)."""
    b = _np(xyxy).astype(np.float64).reshape(-1, 4)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


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

    pred_classes: (N,) class ids; true_classes: (M,); iou: (M, N); iouv: (T,) thresholds; conf: (N,) scores.
    Returns (N, T) bool: a torch tensor on pred_classes' device if pred_classes is a tensor, else an ndarray.
    """
    device = pred_classes.device if isinstance(pred_classes, torch.Tensor) else None
    pc, tc, thr = _np(pred_classes).reshape(-1), _np(true_classes).reshape(-1), _np(iouv).astype(np.float64).reshape(-1)
    iou_np = _np(iou).astype(np.float64).reshape(len(tc), len(pc))
    valid = (tc[:, None] == pc[None, :])[..., None] & (iou_np[..., None] >= thr)
    correct = match_by_score(iou_np, valid, _np(conf).reshape(-1)) >= 0
    return torch.from_numpy(correct).to(device) if device is not None else correct


def match_by_area(det_boxes, det_conf, det_cls, gt_boxes, gt_cls, iouv, ranges=AREA_RANGES) -> dict:
    """COCO matching of one image for each area range (boxes in original-image pixels, xyxy).

    det_boxes (N, 4), det_conf (N,), det_cls (N,); gt_boxes (M, 4), gt_cls (M,); iouv (T,).
    Returns {range name: (tp (N, T) bool, ignored (N, T) bool, gt_in_range (M,) bool)}.
    """
    from ultralytics.utils.ops import box_iou

    db, gb = _np(det_boxes).astype(np.float64).reshape(-1, 4), _np(gt_boxes).astype(np.float64).reshape(-1, 4)
    dc, gc = _np(det_cls).reshape(-1), _np(gt_cls).reshape(-1)
    thr = _np(iouv).astype(np.float64).reshape(-1)
    n, m = len(db), len(gb)
    iou = box_iou(torch.from_numpy(gb), torch.from_numpy(db)).double().numpy() if n and m else np.zeros((m, n))
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
