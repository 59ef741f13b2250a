"""Task-aligned assignment (TOOD / YOLOv8 / YOLOv10): anchors, box <-> distance coding, the assigner.

Shapes used below: B images, A anchors (sum of H*W over the levels), M gt slots per image (padded),
nc classes. Boxes are xyxy unless stated otherwise.
"""

from __future__ import annotations

import torch
from torch import nn

from ultralytics.utils.ops import bbox_iou


def make_anchors(feats: list[torch.Tensor], strides: torch.Tensor, offset: float = 0.5):
    """Anchor centres of every feature level, in grid units of that level.

    feats: list of (B, C, H_i, W_i); strides: (L,) -> anchor_points (A, 2) as (x + offset, y + offset),
    stride_tensor (A, 1). Level by level, row-major within a level (y outer, x inner), A = sum H_i * W_i.
    """
    assert feats, "make_anchors needs at least one feature map"
    dtype, device = feats[0].dtype, feats[0].device
    points, stride_list = [], []
    for feat, stride in zip(feats, strides):
        h, w = feat.shape[-2:]
        sx = torch.arange(w, device=device, dtype=dtype) + offset
        sy = torch.arange(h, device=device, dtype=dtype) + offset
        yy, xx = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((xx, yy), -1).view(-1, 2))
        stride_list.append(torch.full((h * w, 1), float(stride), dtype=dtype, device=device))
    return torch.cat(points), torch.cat(stride_list)


def dist2bbox(distance: torch.Tensor, anchor_points: torch.Tensor, xywh: bool = True, dim: int = -1) -> torch.Tensor:
    """Distances (..., 4) as (l, t, r, b) from anchor points (..., 2) -> boxes (..., 4), xywh or xyxy."""
    lt, rb = distance.chunk(2, dim)
    x1y1 = anchor_points - lt
    x2y2 = anchor_points + rb
    if xywh:
        return torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), dim)
    return torch.cat((x1y1, x2y2), dim)


def bbox2dist(anchor_points: torch.Tensor, bbox: torch.Tensor, reg_max: float) -> torch.Tensor:
    """xyxy boxes (..., 4) seen from anchor points (..., 2) -> (l, t, r, b) clamped to [0, reg_max - 0.01]."""
    x1y1, x2y2 = bbox.chunk(2, -1)
    return torch.cat((anchor_points - x1y1, x2y2 - anchor_points), -1).clamp_(0, reg_max - 0.01)


class TaskAlignedAssigner(nn.Module):
    """Assign gts to anchors by the alignment metric score**alpha * CIoU**beta (top-k per gt, centre inside gt).

    Rules worth knowing (as Ultralytics 8.4 and every version since v8):
    - An anchor picked by several gts goes to the gt whose box has the highest CIoU with the anchor's
      predicted box among ALL gts whose candidate box holds the anchor centre, not only among those that
      picked it (the winner may be a gt that did not pick it). Ties go to the lowest gt slot (argmax).
    - Background anchors get target_labels == num_classes and target_gt_idx == 0.

    Two options, both off by default here (v10DetectLoss sets them):
    - topk2: after the conflicts are resolved, each gt keeps only its topk2 best anchors by metric among
      those it still holds (8.4's scheduled one-to-one branch: topk 7, topk2 1).
    - min_side: a gt side shorter than min_side (pixels) is widened to min_side about the box centre for the
      "anchor centre inside the gt" test only (8.4 uses the middle stride, 16, in both of its YOLOv10
      losses), so tiny objects get candidates.
    """

    def __init__(self, topk: int = 10, num_classes: int = 80, alpha: float = 0.5, beta: float = 6.0, eps: float = 1e-9,
                 topk2: int | None = None, min_side: float = 0.0):
        """topk: candidates kept per gt; alpha, beta: exponents of score and IoU in the metric; topk2: anchors
        kept per gt after conflict resolution (None = no second cut); min_side: candidate-test box side floor."""
        super().__init__()
        self.topk = topk
        self.num_classes = num_classes
        self.alpha = alpha
        self.beta = beta
        self.eps = eps
        self.topk2 = topk2
        self.min_side = float(min_side)

    @torch.no_grad()
    def forward(
        self,
        pd_scores: torch.Tensor,
        pd_bboxes: torch.Tensor,
        anc_points: torch.Tensor,
        gt_labels: torch.Tensor,
        gt_bboxes: torch.Tensor,
        mask_gt: torch.Tensor,
        mask_in: torch.Tensor | None = None,
    ):
        """Assign targets.

        pd_scores (B, A, nc) sigmoid scores; pd_bboxes (B, A, 4) xyxy; anc_points (A, 2) in the same units;
        gt_labels (B, M, 1); gt_bboxes (B, M, 4) xyxy; mask_gt (B, M, 1) true for real (non-padding) gts;
        mask_in: optional precomputed candidates (B, M, A) bool (select_candidates_in_gts & mask_gt), so a
        caller with two heads on the same anchors computes it once. pd_bboxes is read at candidates only.
        Returns target_labels (B, A) long, target_bboxes (B, A, 4), target_scores (B, A, nc),
        fg_mask (B, A) bool, target_gt_idx (B, A) long.
        """
        bs, n_anchors, nc = pd_scores.shape
        n_max = gt_bboxes.shape[1]
        device = pd_scores.device
        if n_max == 0:
            return (
                torch.full((bs, n_anchors), self.num_classes, dtype=torch.long, device=device),
                torch.zeros((bs, n_anchors, 4), dtype=gt_bboxes.dtype, device=device),
                torch.zeros_like(pd_scores),
                torch.zeros((bs, n_anchors), dtype=torch.bool, device=device),
                torch.zeros((bs, n_anchors), dtype=torch.long, device=device),
            )
        if mask_in is None:
            mask_in = self.select_candidates_in_gts(anc_points, gt_bboxes) & mask_gt.bool()  # (B, M, A)
        labels = gt_labels.long().view(bs, n_max)
        align_metric, overlaps = self.get_box_metrics(pd_scores, pd_bboxes, labels, gt_bboxes, mask_in)
        mask_pos = self.select_topk_candidates(align_metric, mask_in)  # (B, M, A) bool
        target_gt_idx, fg_mask = self.select_highest_overlaps(mask_pos, overlaps)
        if self.topk2 is not None and self.topk2 < self.topk:
            target_gt_idx, fg_mask = self.select_topk2(target_gt_idx, fg_mask, align_metric, self.topk2)

        # sparse over the foreground anchors: (b, a) pairs and the gt each one keeps
        fb, fa = fg_mask.nonzero(as_tuple=True)
        fm = target_gt_idx[fb, fa]
        fg_labels = labels[fb, fm]
        flat_gt = fb * n_max + fm
        fg_metric = align_metric[fb, fm, fa]
        fg_overlap = overlaps[fb, fm, fa]
        # normalise: a gt's best anchor gets that gt's best IoU, its other anchors scale by their metric
        pos_align = torch.zeros(bs * n_max, dtype=fg_metric.dtype, device=device)
        pos_align.scatter_reduce_(0, flat_gt, fg_metric, "amax", include_self=True)
        pos_overlap = torch.zeros(bs * n_max, dtype=fg_overlap.dtype, device=device)
        pos_overlap.scatter_reduce_(0, flat_gt, fg_overlap, "amax", include_self=True)
        norm = fg_metric * pos_overlap[flat_gt] / (pos_align[flat_gt] + self.eps)

        target_scores = torch.zeros_like(pd_scores, memory_format=torch.contiguous_format)
        target_scores[fb, fa, fg_labels] = norm.to(target_scores.dtype)
        target_labels = torch.full((bs, n_anchors), self.num_classes, dtype=torch.long, device=device)
        target_labels[fb, fa] = fg_labels
        batch_ind = torch.arange(bs, device=device).unsqueeze(1)
        target_bboxes = gt_bboxes[batch_ind, target_gt_idx]  # (B, A, 4); background rows hold gt 0
        return target_labels, target_bboxes, target_scores, fg_mask, target_gt_idx

    def select_candidates_in_gts(self, anc_points: torch.Tensor, gt_bboxes: torch.Tensor) -> torch.Tensor:
        """anc_points (A, 2), gt_bboxes (B, M, 4) -> (B, M, A) bool: anchor centre strictly inside the gt.

        With min_side > 0 the test uses the gt widened to at least min_side per side (`enlarge_small_boxes`).
        """
        ax = anc_points[:, 0].view(1, 1, -1).to(gt_bboxes.dtype)
        ay = anc_points[:, 1].view(1, 1, -1).to(gt_bboxes.dtype)
        if self.min_side > 0:
            gt_bboxes = enlarge_small_boxes(gt_bboxes, self.min_side)
        x1, y1, x2, y2 = gt_bboxes.unsqueeze(-1).unbind(2)  # each (B, M, 1)
        inside = (ax > x1 + self.eps) & (ax < x2 - self.eps)
        inside &= ay > y1 + self.eps
        inside &= ay < y2 - self.eps
        return inside

    def get_box_metrics(self, pd_scores, pd_bboxes, labels, gt_bboxes, mask_in):
        """Alignment metric and CIoU (clamped at 0), computed at candidate pairs only.

        pd_scores (B, A, nc), pd_bboxes (B, A, 4), labels (B, M) long, gt_bboxes (B, M, 4),
        mask_in (B, M, A) -> align_metric, overlaps: (B, M, A), zero outside the candidates.
        """
        b, m, a = mask_in.nonzero(as_tuple=True)  # K candidate pairs
        ciou = bbox_iou(gt_bboxes[b, m].to(pd_bboxes.dtype), pd_bboxes[b, a], xywh=False, CIoU=True)
        ov = ciou.squeeze(-1).clamp_(0)
        metric = pd_scores[b, a, labels[b, m]].to(ov.dtype).pow(self.alpha) * ov.pow(self.beta)
        overlaps = torch.zeros(mask_in.shape, dtype=ov.dtype, device=ov.device)
        align_metric = torch.zeros(mask_in.shape, dtype=ov.dtype, device=ov.device)
        overlaps[b, m, a] = ov
        align_metric[b, m, a] = metric
        return align_metric, overlaps

    def select_topk_candidates(self, align_metric: torch.Tensor, mask_in: torch.Tensor) -> torch.Tensor:
        """Keep the top-k anchors by metric per gt, among its candidates: (B, M, A) -> (B, M, A) bool."""
        k = min(self.topk, align_metric.shape[-1])
        idx = align_metric.topk(k, dim=-1, largest=True).indices  # (B, M, k)
        mask_topk = torch.zeros_like(mask_in).scatter_(-1, idx, True)
        return mask_topk & mask_in

    @staticmethod
    def select_highest_overlaps(mask_pos: torch.Tensor, overlaps: torch.Tensor):
        """Resolve anchors claimed by several gts: the gt of highest IoU among all candidates takes the anchor.

        mask_pos, overlaps (B, M, A) -> target_gt_idx (B, A) long (0 for background), fg_mask (B, A) bool.
        overlaps is zero outside the candidate pairs, so the argmax over all M runs over the gts whose box
        holds the anchor centre, claimers or not (Ultralytics' rule). An anchor claimed once keeps its claimer.
        """
        n_claims = mask_pos.sum(1)  # (B, A)
        fg_mask = n_claims > 0
        # max(1).indices is the first maximum, as argmax, and several times faster than argmax on the CPU
        claimer = mask_pos.byte().max(1).indices  # the only claimer where there is one
        best = torch.where(n_claims > 1, overlaps.max(1).indices, claimer)  # several: best IoU over all candidates
        return best.masked_fill_(~fg_mask, 0), fg_mask

    @staticmethod
    def select_topk2(target_gt_idx: torch.Tensor, fg_mask: torch.Tensor, align_metric: torch.Tensor, k: int):
        """Second cut after conflict resolution: each gt keeps its k anchors of highest metric among those it holds.

        target_gt_idx (B, A) long, fg_mask (B, A) bool, align_metric (B, M, A) -> (target_gt_idx, fg_mask).
        An anchor a gt holds always ranks above one it does not hold, even at metric 0.
        """
        held = torch.zeros_like(align_metric, dtype=torch.bool)  # (B, M, A): gt m holds anchor a
        held.scatter_(1, target_gt_idx.unsqueeze(1), fg_mask.unsqueeze(1))
        k = min(k, align_metric.shape[-1])
        idx = align_metric.masked_fill(~held, -1.0).topk(k, dim=-1).indices  # (B, M, k)
        keep = torch.zeros_like(held).scatter_(-1, idx, True) & held
        fg = keep.any(1)
        return target_gt_idx.masked_fill(~fg, 0), fg


def enlarge_small_boxes(boxes: torch.Tensor, min_side: float) -> torch.Tensor:
    """xyxy boxes (..., 4) -> boxes whose sides shorter than min_side are widened to min_side about the centre."""
    ctr = (boxes[..., :2] + boxes[..., 2:]) / 2
    half = ((boxes[..., 2:] - boxes[..., :2]).clamp(min=min_side)) / 2
    return torch.cat((ctr - half, ctr + half), -1)
