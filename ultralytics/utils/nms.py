"""Non-maximum suppression for the one-to-many head (`nms=True`), as Ultralytics 8.4 scores YOLOv10 by default.

YOLOv10's one-to-one head needs no NMS (`nms=False`, the default here and in the YOLOv10 paper). With
`nms=True` the one-to-many head is decoded and its boxes go through class-aware NMS: torchvision's kernel when
torchvision imports, else `greedy_nms`, a vectorised implementation of the same greedy rule (a box is dropped
when its IoU with a kept, higher-scored box is > iou).
"""

from __future__ import annotations

import torch


try:  # torchvision's compiled NMS, when a build that matches torch is installed
    from torchvision.ops import nms as _torchvision_nms

    _torchvision_nms(torch.zeros(1, 4), torch.zeros(1), 0.5)
except Exception:  # not installed, or a build that does not load against this torch
    _torchvision_nms = None

__all__ = ("greedy_nms", "nms", "non_max_suppression", "TORCHVISION_NMS")
TORCHVISION_NMS = _torchvision_nms is not None
MAX_NMS = 30000  # at most this many candidates (highest scores first) enter NMS per image


def greedy_nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float, max_keep: int | None = None,
               block: int = 512) -> torch.Tensor:
    """Greedy NMS: boxes (N, 4) xyxy, scores (N,) -> indices (K,) of the kept boxes, by descending score.

    Vectorised by blocks of the score-sorted boxes: a block is first cut against every box kept so far, then
    solved inside itself as a fixed point (the keep flags of boxes 0..t are final after t rounds; a few rounds
    suffice in practice). Stops once max_keep boxes are kept: later boxes cannot change the first max_keep.
    """
    order = scores.argsort(descending=True, stable=True)
    b = boxes[order].float()
    kept: list[torch.Tensor] = []
    kept_boxes = b[:0]
    for s in range(0, len(b), block):
        blk = b[s:s + block]
        alive = torch.ones(len(blk), dtype=torch.bool, device=b.device)
        if len(kept_boxes):
            alive &= ~(_iou(blk, kept_boxes) > iou).any(1)
        sup = (_iou(blk, blk) > iou).triu_(1)  # sup[j, i]: j (higher score) would suppress i
        keep = alive
        while True:
            new = alive & ~(sup & keep[:, None]).any(0)
            if torch.equal(new, keep):
                break
            keep = new
        idx = keep.nonzero().view(-1) + s
        kept.append(idx)
        kept_boxes = torch.cat((kept_boxes, b[idx]))
        if max_keep is not None and len(kept_boxes) >= max_keep:
            break
    keep_idx = torch.cat(kept) if kept else torch.zeros(0, dtype=torch.long, device=b.device)
    return order[keep_idx[:max_keep] if max_keep is not None else keep_idx]


def _iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact pairwise IoU (no epsilon, as torchvision computes it): a (N, 4), b (M, 4) -> (N, M)."""
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(2)
    area_a = (a[:, 2:] - a[:, :2]).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).prod(1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float, max_keep: int | None = None,
        use_torchvision: bool = True) -> torch.Tensor:
    """Indices of the boxes kept by greedy NMS, by descending score (torchvision's kernel when available)."""
    if use_torchvision and _torchvision_nms is not None:
        keep = _torchvision_nms(boxes.float(), scores.float(), float(iou))
        return keep[:max_keep] if max_keep is not None else keep
    return greedy_nms(boxes, scores, iou, max_keep)


def non_max_suppression(preds: torch.Tensor, conf: float = 0.25, iou: float = 0.7, max_det: int = 300,
                        multi_label: bool = False, classes=None, max_nms: int = MAX_NMS) -> list[torch.Tensor]:
    """Class-aware NMS of decoded one-to-many predictions.

    preds: (B, A, 4 + nc) xyxy boxes (input pixels) and class scores (the head's decode()).
    Candidates have a class score > conf: every (box, class) pair with multi_label=True (validation), the box's
    best class otherwise (prediction); classes: optional list of class ids to keep. At most max_nms candidates
    (highest scores) enter NMS; boxes of different classes never suppress each other.
    Returns per image a (n, 6) tensor x1, y1, x2, y2, score, class with n <= max_det, by descending score.
    """
    out = []
    for x in preds:
        boxes, scores = x[:, :4].float(), x[:, 4:].float()
        if multi_label:
            i, j = (scores > conf).nonzero(as_tuple=True)
            box, score, cls = boxes[i], scores[i, j], j
        else:
            score, cls = scores.max(1)
            keep = score > conf
            box, score, cls = boxes[keep], score[keep], cls[keep]
        if classes is not None:
            keep = (cls[:, None] == torch.as_tensor(classes, device=cls.device).view(1, -1)).any(1)
            box, score, cls = box[keep], score[keep], cls[keep]
        if len(score) > max_nms:
            top = score.topk(max_nms).indices
            box, score, cls = box[top], score[top], cls[top]
        offset = cls[:, None].float() * (box.max() - box.min() + 1 if len(box) else 1)  # classes apart
        k = nms(box + offset, score, iou, max_keep=max_det)
        out.append(torch.cat((box[k], score[k, None], cls[k, None].float()), 1))
    return out
