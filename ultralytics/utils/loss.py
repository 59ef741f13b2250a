"""Detection losses: DFL, CIoU box loss, the YOLOv8 task-aligned loss and the YOLOv10 dual-assignment loss.

The loss is an object separate from the model and from the assigner (DETR style). It needs only
what the Detect head tells it (`nc`, `reg_max`, `stride`) and the gains `box`, `cls`, `dfl` from the
merged config; it builds its own anchors from the prediction shapes.

Shapes: B images, A anchors over all levels, R = reg_max bins (16), nc classes, M gt slots per image.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ultralytics.utils import UserError
from ultralytics.utils.ops import bbox_iou, xywh2xyxy
from ultralytics.utils.tal import TaskAlignedAssigner, bbox2dist, dist2bbox, make_anchors


def _hyp_value(hyp, key: str) -> float:
    """Read a loss gain from the config namespace or mapping; a missing key is a clear error."""
    value = hyp.get(key) if isinstance(hyp, Mapping) else getattr(hyp, key, None)
    if value is None:
        raise UserError(f"loss gain '{key}' is missing from the training config (cfg/default.yaml key '{key}')")
    return float(value)


def _normaliser(target_scores_sum: torch.Tensor) -> torch.Tensor:
    """The loss normaliser: the batch's target-score sum, at least 1.

    Under DDP (a process group of several ranks, while training with gradients) the sum is all-reduced and
    shared out: each rank divides by max(global sum, 1) / world size, so that the gradients DDP averages
    (with the trainer's loss x world size) equal those of one process holding the whole global batch.
    Validation (no gradients, rank 0 alone) keeps its own sum.
    """
    import torch.distributed as dist

    if torch.is_grad_enabled() and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        total = target_scores_sum.detach().clone()
        dist.all_reduce(total)
        return total.clamp(min=1.0) / dist.get_world_size()
    return target_scores_sum.clamp(min=1.0)


class DFLoss(nn.Module):
    """Distribution focal loss: cross-entropy on the two integer bins around each target distance."""

    def __init__(self, reg_max: int = 16):
        """reg_max: number of bins (distances 0 .. reg_max - 1)."""
        super().__init__()
        self.reg_max = reg_max

    def forward(self, pred_dist: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """pred_dist (N * 4, R) logits, target (N, 4) distances -> (N, 1) loss, mean over the 4 sides.

        For a target t between bins l = floor(t) and l + 1: (l + 1 - t) * CE(l) + (t - l) * CE(l + 1).
        """
        target = target.clamp(0, self.reg_max - 1 - 0.01)
        tl = target.long()  # left bin
        wl = tl + 1 - target  # weight of the left bin
        wr = 1 - wl
        logp = F.log_softmax(pred_dist.float(), dim=-1)  # (N * 4, R)
        idx = tl.view(-1, 1)
        nll = -logp.gather(1, torch.cat((idx, idx + 1), 1))  # (N * 4, 2)
        loss = nll[:, 0].view(tl.shape) * wl + nll[:, 1].view(tl.shape) * wr  # (N, 4)
        return loss.mean(-1, keepdim=True)


class BboxLoss(nn.Module):
    """CIoU loss and DFL on the foreground anchors, each weighted by the anchor's target score."""

    def __init__(self, reg_max: int = 16):
        """reg_max: number of DFL bins per box side."""
        super().__init__()
        self.reg_max = reg_max
        self.dfl_loss = DFLoss(reg_max) if reg_max > 1 else None

    def forward(self, pred_dist, pred_bboxes, anchor_points, target_bboxes, target_scores, target_scores_sum, fg_mask):
        """Box losses, in grid units of each anchor's level.

        pred_dist (B, A, 4 * R) logits; pred_bboxes (B, A, 4) xyxy; anchor_points (A, 2);
        target_bboxes (B, A, 4) xyxy; target_scores (B, A, nc); target_scores_sum: scalar >= 1;
        fg_mask (B, A) bool -> (loss_iou, loss_dfl) scalars. Zero (but in the graph) when no foreground.
        """
        weight = target_scores.sum(-1)[fg_mask].unsqueeze(-1)  # (F, 1)
        iou = bbox_iou(pred_bboxes[fg_mask], target_bboxes[fg_mask], xywh=False, CIoU=True)  # (F, 1)
        loss_iou = ((1.0 - iou) * weight).sum() / target_scores_sum
        if self.dfl_loss is None:
            return loss_iou, pred_dist.sum() * 0.0
        anchors = anchor_points.unsqueeze(0).expand(fg_mask.shape[0], -1, -1)[fg_mask]  # (F, 2)
        target_ltrb = bbox2dist(anchors, target_bboxes[fg_mask], self.reg_max - 1)  # (F, 4)
        dfl = self.dfl_loss(pred_dist[fg_mask].view(-1, self.reg_max), target_ltrb)  # (F, 1)
        loss_dfl = (dfl * weight).sum() / target_scores_sum
        return loss_iou, loss_dfl


class v8DetectionLoss:
    """YOLOv8 detection loss: task-aligned assignment, BCE class loss, CIoU + DFL box loss.

    head_info: object with `.nc`, `.reg_max`, `.stride` (L,) (the Detect head); hyp: config with `.box`,
    `.cls`, `.dfl` gains (namespace or mapping). The device follows the predictions.
    """

    def __init__(self, head_info, hyp, tal_topk: int = 10):
        """Read head geometry and gains; build the assigner (alpha 0.5, beta 6.0) and the box loss."""
        self.nc = int(head_info.nc)
        self.reg_max = int(head_info.reg_max)
        self.no = self.nc + 4 * self.reg_max
        self.stride = torch.as_tensor(head_info.stride, dtype=torch.float32).flatten()
        self.gains = {k: _hyp_value(hyp, k) for k in ("box", "cls", "dfl")}
        self.assigner = TaskAlignedAssigner(topk=tal_topk, num_classes=self.nc, alpha=0.5, beta=6.0)
        self.bbox_loss = BboxLoss(self.reg_max)

    def __call__(self, preds, batch: dict):
        """preds: list of L tensors (B, 4R + nc, H_i, W_i); batch: dict with batch_idx, cls, bboxes.

        Returns (loss_total scalar = (box*g_box + cls*g_cls + dfl*g_dfl) * B, loss_items (3,) detached
        [box, cls, dfl] with the gains applied).
        """
        feats = self._check_feats(preds)
        return self.branch_loss(feats, self.prepare(batch, feats))

    def _check_feats(self, preds) -> list[torch.Tensor]:
        """Accept the raw list, or a (inference, raw) tuple as some heads return in eval; check channels."""
        if isinstance(preds, tuple) and len(preds) == 2 and not isinstance(preds[0], torch.Tensor | None):
            preds = preds[1]
        feats = list(preds)
        if len(feats) != len(self.stride):
            raise ValueError(
                f"loss expects {len(self.stride)} feature maps (strides {self.stride.tolist()}), got {len(feats)}"
            )
        for i, f in enumerate(feats):
            if f.dim() != 4 or f.shape[1] != self.no:
                raise ValueError(
                    f"loss: prediction level {i} has shape {tuple(f.shape)}, expected (B, {self.no}, H, W)"
                )
        return feats

    def build_targets(self, batch: dict, feats: list[torch.Tensor]) -> torch.Tensor:
        """Batch labels -> padded targets (B, M_max, 5) as (cls, x1, y1, x2, y2) in input pixels.

        The input size is feature size * stride of the first level; bboxes are normalised xywh.
        """
        bs, device = feats[0].shape[0], feats[0].device
        h, w = feats[0].shape[2] * self.stride[0].item(), feats[0].shape[3] * self.stride[0].item()
        batch_idx = batch["batch_idx"].to(device).view(-1).long()
        n = batch_idx.numel()
        if n == 0:
            return torch.zeros((bs, 0, 5), device=device)
        if int(batch_idx.min()) < 0 or int(batch_idx.max()) >= bs:
            raise ValueError(f"loss: batch['batch_idx'] has values outside [0, {bs}) for a batch of {bs} images")
        cls = batch["cls"].to(device).view(-1, 1).float()
        bad = (cls < 0) | (cls >= self.nc)
        if bad.any():
            raise UserError(
                f"a label has class id {int(cls[bad][0])} but the model has nc={self.nc} (ids 0..{self.nc - 1}): "
                "check 'nc'/'names' in the data YAML against the labels"
            )
        boxes = xywh2xyxy(batch["bboxes"].to(device).view(-1, 4).float())
        boxes = boxes * torch.tensor([w, h, w, h], device=device)
        counts = torch.bincount(batch_idx, minlength=bs)
        order = torch.argsort(batch_idx, stable=True)
        bi = batch_idx[order]
        rank = torch.arange(n, device=device) - (counts.cumsum(0) - counts)[bi]  # slot within its image
        out = torch.zeros((bs, int(counts.max()), 5), device=device)
        out[bi, rank] = torch.cat((cls, boxes), 1)[order]
        return out

    def prepare(self, batch: dict, feats: list[torch.Tensor]) -> dict:
        """Everything that depends on the labels and the feature sizes only (shared by the v10 branches).

        Returns a dict: gt_labels (B, M, 1), gt_bboxes (B, M, 4) pixels xyxy, mask_gt (B, M, 1),
        anchor_points (A, 2) grid units, stride_tensor (A, 1), mask_in (B, M, A) candidate pairs,
        cand_b, cand_a (K,): the (image, anchor) pairs inside at least one gt, ordered by anchor,
        level_starts: L + 1 anchor offsets of the levels, level_bounds: L + 1 offsets into cand_* of the levels.
        """
        targets = self.build_targets(batch, feats)
        anchor_points, stride_tensor = make_anchors(feats, self.stride.to(feats[0].device), 0.5)
        gt_labels, gt_bboxes = targets.split((1, 4), 2)  # (B, M, 1), (B, M, 4)
        mask_gt = (gt_bboxes[..., 2:] > gt_bboxes[..., :2]).all(-1, keepdim=True)  # padding rows are all 0
        mask_in = self.assigner.select_candidates_in_gts(anchor_points * stride_tensor, gt_bboxes) & mask_gt
        cand_a, cand_b = mask_in.any(1).t().nonzero(as_tuple=True)  # sorted by anchor, so level by level
        level_starts = torch.tensor([0] + [f.shape[2] * f.shape[3] for f in feats], device=cand_a.device).cumsum(0)
        level_bounds = torch.searchsorted(cand_a, level_starts).tolist()
        return dict(
            gt_labels=gt_labels, gt_bboxes=gt_bboxes, mask_gt=mask_gt, anchor_points=anchor_points,
            stride_tensor=stride_tensor, mask_in=mask_in, cand_b=cand_b, cand_a=cand_a,
            level_starts=level_starts.tolist(), level_bounds=level_bounds,
        )

    def bbox_decode(self, anchor_points: torch.Tensor, pred_dist: torch.Tensor) -> torch.Tensor:
        """anchor_points (..., 2), pred_dist (..., 4R) logits -> xyxy boxes (..., 4) in grid units.

        Each side is the expectation of a softmax over the R bins (what the DFL conv of the head computes).
        """
        proj = torch.arange(self.reg_max, dtype=pred_dist.dtype, device=pred_dist.device)
        dist = pred_dist.unflatten(-1, (4, self.reg_max)).softmax(-1).matmul(proj)  # (..., 4)
        return dist2bbox(dist, anchor_points, xywh=False)

    def branch_loss(self, feats: list[torch.Tensor], prep: dict):
        """Loss of one head branch: feats list of (B, 4R + nc, H, W), prep from `prepare` -> (total, items (3,)).

        Box logits are read (and softmax-decoded) only at the K anchors lying inside some gt: the assigner
        looks at nothing else and the foreground is a subset of them. They are handled as a compact batch.
        """
        bs, nr = feats[0].shape[0], 4 * self.reg_max
        flat = [f.flatten(2) for f in feats]  # views (B, 4R + nc, H*W)
        pred_scores = torch.cat([f[:, nr:] for f in flat], 2).transpose(1, 2)  # (B, A, nc) view
        cand_b, cand_a, starts, bounds = prep["cand_b"], prep["cand_a"], prep["level_starts"], prep["level_bounds"]
        pred_dist = torch.cat(  # (K, 4R): box logits of the candidate anchors, level by level
            [f[cand_b[lo:hi], :nr, cand_a[lo:hi] - s] for f, s, lo, hi in zip(flat, starts, bounds[:-1], bounds[1:])]
        )
        anchors = prep["anchor_points"][cand_a]  # (K, 2)
        strides = prep["stride_tensor"][cand_a]  # (K, 1)
        pred_bboxes = self.bbox_decode(anchors, pred_dist)  # (K, 4) grid units

        gt_bboxes = prep["gt_bboxes"]
        pd_bboxes = torch.zeros((bs, pred_scores.shape[1], 4), dtype=gt_bboxes.dtype, device=gt_bboxes.device)
        pd_bboxes[cand_b, cand_a] = (pred_bboxes.detach() * strides).to(gt_bboxes.dtype)  # pixels, 0 elsewhere
        _, target_bboxes, target_scores, fg_mask, _ = self.assigner(
            pred_scores.detach().sigmoid(),
            pd_bboxes,
            prep["anchor_points"] * prep["stride_tensor"],
            prep["gt_labels"],
            gt_bboxes,
            prep["mask_gt"],
            mask_in=prep["mask_in"],
        )
        target_scores_sum = _normaliser(target_scores.sum())

        loss_cls = F.binary_cross_entropy_with_logits(pred_scores, target_scores.to(pred_scores.dtype), reduction="sum")
        loss_cls = loss_cls / target_scores_sum
        loss_box, loss_dfl = self.bbox_loss(  # the K candidates as one compact "image"
            pred_dist.unsqueeze(0),
            pred_bboxes.unsqueeze(0),
            anchors,
            (target_bboxes[cand_b, cand_a] / strides).unsqueeze(0),
            target_scores[cand_b, cand_a].unsqueeze(0),
            target_scores_sum,
            fg_mask[cand_b, cand_a].unsqueeze(0),
        )
        items = torch.stack(
            (loss_box * self.gains["box"], loss_cls * self.gains["cls"], loss_dfl * self.gains["dfl"])
        )
        return items.sum() * bs, items.detach()


RECIPES = ("classic", "scheduled")  # the values of the setting v10_loss
O2M_START, O2M_END = 0.8, 0.1  # one-to-many weight of the scheduled recipe at the first / last epoch


def o2m_weight(epoch: int, epochs: int) -> float:
    """One-to-many weight of the scheduled recipe in 0-based epoch `epoch` of `epochs`.

    w = max(1 - u / (E - 1), 0) * (0.8 - 0.1) + 0.1 with u = epoch (epochs done) and E = epochs: 0.8 in the
    first epoch, falling linearly to 0.1 in the last. A one-epoch run (E = 1) trains its only epoch at 0.8,
    the value of the first epoch (E - 1 is taken as 1). A function of the epoch alone, so resume recomputes it.
    """
    frac = max(1.0 - epoch / max(epochs - 1, 1), 0.0)
    return frac * (O2M_START - O2M_END) + O2M_END


class v10DetectLoss:
    """YOLOv10 consistent dual assignment: a one-to-many and a one-to-one branch loss, in one of two recipes.

    The recipe is the setting `v10_loss` (cfg/default.yaml):
    - 'classic' (the YOLOv10 paper's weighting, Ultralytics 8.1-8.3): total = L_o2m + L_o2o; o2m top-10,
      o2o top-1. The returned items are the SUM of both branches' [box, cls, dfl].
    - 'scheduled' (Ultralytics 8.4): total = w * L_o2m + (1 - w) * L_o2o with w = `o2m_weight(epoch, epochs)`
      (0.8 -> 0.1, set by `set_epoch`); the o2m assigner is top-10, the o2o one takes the top-7 per gt,
      resolves shared anchors by IoU, then keeps the top-1 per gt. The returned items are the one-to-one
      branch's.
    'classic' equals Ultralytics 8.4's E2EDetectLoss, 'scheduled' its E2ELoss: in both, all assigners widen
    gt sides shorter than the middle stride (16 px) for the candidate test, and give an anchor claimed by
    several gts to the candidate gt of highest IoU (tests/test_loss_parity.py checks recorded 8.4 values).
    Both use TAL alpha 0.5, beta 6.0 and the same gains, so results.csv keeps Ultralytics' three loss
    columns. The per-branch (unweighted) items of the last call are kept in `last_items_per_branch` (2, 3):
    row 0 one-to-many, row 1 one-to-one.
    """

    def __init__(self, head_info, hyp):
        """head_info: Detect head (`.nc`, `.reg_max`, `.stride`); hyp: config with `.box`, `.cls`, `.dfl`,
        `.v10_loss` and (for 'scheduled') `.epochs`."""
        self.recipe = _recipe(hyp)
        self.one2many = v8DetectionLoss(head_info, hyp, tal_topk=10)
        if self.recipe == "classic":
            self.one2one = v8DetectionLoss(head_info, hyp, tal_topk=1)
            self.epochs = None
        else:
            self.epochs = int(_hyp_value(hyp, "epochs"))
            self.one2one = v8DetectionLoss(head_info, hyp, tal_topk=7)
            self.one2one.assigner.topk2 = 1
        strides = self.one2many.stride
        min_side = float(strides[len(strides) // 2])  # the middle stride: 16 for P3-P5, in both recipes (8.4)
        for branch in (self.one2many, self.one2one):
            branch.assigner.min_side = min_side
        self.epoch = 0
        self.o2m = 1.0 if self.recipe == "classic" else o2m_weight(0, self.epochs)
        self.last_items_per_branch: torch.Tensor | None = None

    def set_epoch(self, epoch: int) -> None:
        """Set the branch weights for 0-based `epoch` (scheduled: o2m = o2m_weight(epoch, epochs); classic: no-op)."""
        self.epoch = int(epoch)
        if self.recipe == "scheduled":
            self.o2m = o2m_weight(self.epoch, self.epochs)

    @property
    def weights(self) -> tuple[float, float]:
        """(one-to-many weight, one-to-one weight) of the current epoch: (1, 1) classic, (w, 1 - w) scheduled."""
        return (1.0, 1.0) if self.recipe == "classic" else (self.o2m, 1.0 - self.o2m)

    def __call__(self, preds, batch: dict):
        """preds: {'one2many': [p3, p4, p5], 'one2one': [p3, p4, p5]} (or (inference, that dict)).

        Returns (total scalar, items (3,) detached): classic = (sum of both branch totals, sum of both items);
        scheduled = (w * o2m total + (1 - w) * o2o total, the o2o items).
        """
        if isinstance(preds, tuple | list) and len(preds) == 2 and isinstance(preds[1], Mapping):
            preds = preds[1]
        if not isinstance(preds, Mapping) or not {"one2many", "one2one"} <= set(preds):
            raise ValueError("v10DetectLoss expects a dict with 'one2many' and 'one2one' prediction lists")
        feats_m = self.one2many._check_feats(preds["one2many"])
        feats_o = self.one2one._check_feats(preds["one2one"])
        if [f.shape for f in feats_m] != [f.shape for f in feats_o]:
            raise ValueError("v10DetectLoss: 'one2many' and 'one2one' predictions differ in shape")
        prep = self.one2many.prepare(batch, feats_m)  # labels, anchors, candidates: same for both branches
        total_m, items_m = self.one2many.branch_loss(feats_m, prep)
        total_o, items_o = self.one2one.branch_loss(feats_o, prep)
        self.last_items_per_branch = torch.stack((items_m, items_o))
        if self.recipe == "classic":
            return total_m + total_o, items_m + items_o
        w_m, w_o = self.weights
        return total_m * w_m + total_o * w_o, items_o


def _recipe(hyp) -> str:
    """The setting v10_loss, checked: one of RECIPES (case-insensitive); anything else is a clear error."""
    value = hyp.get("v10_loss") if isinstance(hyp, Mapping) else getattr(hyp, "v10_loss", None)
    name = str(value).strip().lower() if value is not None else None
    if name not in RECIPES:
        raise UserError(f"setting 'v10_loss' is {value!r}; allowed values: {'/'.join(RECIPES)} "
                        "(cfg/default.yaml key 'v10_loss', the YOLOv10 dual-assignment loss recipe)")
    return name
