"""Tests of the anchors, box coding, task-aligned assigner and the v8 / v10 detection losses."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from ultralytics.utils import UserError
from ultralytics.utils.loss import BboxLoss, DFLoss, o2m_weight, v8DetectionLoss, v10DetectLoss
from ultralytics.utils.ops import bbox_iou, box_iou
from ultralytics.utils.tal import TaskAlignedAssigner, bbox2dist, dist2bbox, enlarge_small_boxes, make_anchors

STRIDES = torch.tensor([8.0, 16.0, 32.0])
HYP = SimpleNamespace(box=7.5, cls=0.5, dfl=1.5, v10_loss="classic", epochs=10)


def head(nc: int = 2):
    """A stand-in for the Detect head: only the attributes the loss reads."""
    return SimpleNamespace(nc=nc, reg_max=16, stride=STRIDES.clone())


def random_preds(bs: int, nc: int, imgsz: int, seed: int = 0, requires_grad: bool = False):
    """Random raw outputs {'one2many': [...], 'one2one': [...]} of shape (B, 64 + nc, imgsz/s, imgsz/s)."""
    g = torch.Generator().manual_seed(seed)
    return {
        k: [
            torch.randn(bs, 64 + nc, imgsz // s, imgsz // s, generator=g).requires_grad_(requires_grad)
            for s in (8, 16, 32)
        ]
        for k in ("one2many", "one2one")
    }


def empty_batch():
    return {"batch_idx": torch.zeros(0), "cls": torch.zeros(0, 1), "bboxes": torch.zeros(0, 4)}


# ---------------------------------------------------------------- anchors and box coding


def test_make_anchors_two_levels():
    feats = [torch.zeros(1, 1, 2, 3), torch.zeros(1, 1, 1, 2)]
    points, strides = make_anchors(feats, torch.tensor([8.0, 16.0]))
    expected = [[0.5, 0.5], [1.5, 0.5], [2.5, 0.5], [0.5, 1.5], [1.5, 1.5], [2.5, 1.5], [0.5, 0.5], [1.5, 0.5]]
    assert points.tolist() == expected
    assert strides.squeeze(1).tolist() == [8.0] * 6 + [16.0] * 2
    assert make_anchors(feats, torch.tensor([8.0, 16.0]), offset=0.0)[0][4].tolist() == [1.0, 1.0]


def test_dist2bbox_values_and_bbox2dist_round_trip():
    anchor = torch.tensor([[5.0, 5.0]])
    ltrb = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert dist2bbox(ltrb, anchor, xywh=False).tolist() == [[4.0, 3.0, 8.0, 9.0]]
    assert dist2bbox(ltrb, anchor, xywh=True).tolist() == [[6.0, 6.0, 4.0, 6.0]]
    g = torch.Generator().manual_seed(1)
    anchors = torch.rand(50, 2, generator=g) * 20
    dist = torch.rand(50, 4, generator=g) * 14.9
    back = bbox2dist(anchors, dist2bbox(dist, anchors, xywh=False), 15)
    assert torch.allclose(back, dist, atol=1e-5)
    # clamping to [0, reg_max - 0.01]
    clamped = bbox2dist(anchor, torch.tensor([[6.0, -20.0, 4.0, 30.0]]), 15)
    assert torch.allclose(clamped, torch.tensor([[0.0, 14.99, 0.0, 14.99]]))


# ---------------------------------------------------------------- assigner


def hand_case():
    """Two gts on a row of 7 anchors; anchor 2 (x=6) lies in both boxes and overlaps gt 0 more."""
    anc = torch.tensor([[2.0, 5.0], [4.0, 5.0], [6.0, 5.0], [8.0, 5.0], [12.0, 5.0], [15.0, 5.0], [30.0, 5.0]])
    gt_bboxes = torch.tensor([[[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 20.0, 10.0], [0.0, 0.0, 30.0, 10.0]]])
    gt_labels = torch.tensor([[[0.0], [1.0], [1.0]]])
    mask_gt = torch.tensor([[[True], [True], [False]]])  # slot 2 is padding (even with a box in it)
    pd_bboxes = torch.tensor([[
        [0.0, 0.0, 10.0, 10.0],  # a0 == gt0
        [1.0, 0.0, 10.0, 10.0],  # a1 IoU 0.9 with gt0
        [3.0, 0.0, 13.0, 10.0],  # a2 IoU 0.54 gt0, 0.47 gt1
        [0.0, 0.0, 8.0, 10.0],  # a3 IoU 0.8 gt0, but a tiny score
        [6.0, 0.0, 20.0, 10.0],  # a4 IoU 0.93 gt1
        [8.0, 0.0, 20.0, 10.0],  # a5 IoU 0.8 gt1
        [25.0, 0.0, 35.0, 10.0],  # a6 outside every gt
    ]])
    score = torch.tensor([0.5, 0.5, 0.5, 0.001, 0.5, 0.5, 0.9])
    pd_scores = score.view(1, 7, 1).expand(1, 7, 2).clone()
    return pd_scores, pd_bboxes, anc, gt_labels, gt_bboxes, mask_gt


def ciou(a, b):
    return float(bbox_iou(torch.tensor(a), torch.tensor(b), xywh=False, CIoU=True))


def test_assigner_hand_case_topk1():
    labels, boxes, scores, fg, gt_idx = TaskAlignedAssigner(topk=1, num_classes=2)(*hand_case())
    assert fg[0].tolist() == [True, False, False, False, True, False, False]
    assert gt_idx[0, fg[0]].tolist() == [0, 1]
    assert labels[0].tolist() == [0, 2, 2, 2, 1, 2, 2]  # background = num_classes
    assert boxes[0, 4].tolist() == [5.0, 0.0, 20.0, 10.0]
    # the best anchor of each gt gets that gt's best CIoU (1 for gt0; CIoU(a4, gt1) for gt1)
    assert scores[0, 0].tolist() == pytest.approx([1.0, 0.0], abs=1e-5)
    assert scores[0, 4].tolist() == pytest.approx([0.0, ciou([6.0, 0, 20, 10], [5.0, 0, 20, 10])], abs=1e-5)
    assert scores[0, ~fg[0]].abs().sum() == 0


def test_assigner_hand_case_topk3_conflict_goes_to_higher_iou():
    labels, boxes, scores, fg, gt_idx = TaskAlignedAssigner(topk=3, num_classes=2)(*hand_case())
    # gt0 picks a0, a1, a2 (a3's score is tiny); gt1 picks a4, a5, a2; a2 keeps gt0 (CIoU 0.505 > 0.418)
    assert fg[0].tolist() == [True, True, True, False, True, True, False]
    assert gt_idx[0, fg[0]].tolist() == [0, 0, 0, 1, 1]
    assert labels[0].tolist() == [0, 0, 0, 2, 1, 1, 2]
    assert ciou([3.0, 0, 13, 10], [0.0, 0, 10, 10]) == pytest.approx(0.5048, abs=1e-3)
    assert ciou([3.0, 0, 13, 10], [5.0, 0, 20, 10]) == pytest.approx(0.418, abs=2e-3)
    # normalisation: score(a1) = metric(a1) / metric(a0) * 1 = CIoU(a1, gt0) ** 6 (equal class scores)
    assert float(scores[0, 1, 0]) == pytest.approx(ciou([1.0, 0, 10, 10], [0.0, 0, 10, 10]) ** 6, rel=1e-4)
    assert float(scores[0, 0, 0]) == pytest.approx(1.0, abs=1e-5)
    assert scores[0, :, 1].tolist()[:4] == [0.0, 0.0, 0.0, 0.0]


def test_shared_anchor_goes_to_best_candidate_even_if_it_did_not_pick_it():
    """Three gts, three anchors on a row, top-1: gt0 and gt1 both pick a1; gt2 picks a0 but holds a1 too."""
    anc = torch.tensor([[5.0, 5.0], [15.0, 5.0], [25.0, 5.0]])
    gt_bboxes = torch.tensor([[[0.0, 0, 20, 10], [10.0, 0, 30, 10], [0.0, 0, 30, 10]]])
    gt_labels = torch.tensor([[[0.0], [0.0], [1.0]]])
    pd_bboxes = torch.tensor([[[0.0, 0, 30, 10], [2.0, 0, 28, 10], [22.0, 0, 28, 10]]])
    pd_scores = torch.tensor([[[0.01, 0.9], [0.9, 0.01], [0.5, 0.5]]])
    # CIoU of a1's box: 0.6145 with gt0 and gt1 (the two that picked it), 0.8667 with gt2 (which picked a0,
    # metric 0.9**0.5 * 1**6 = 0.949 > a1's 0.01**0.5 * 0.8667**6 = 0.042)
    assert [round(ciou([2.0, 0, 28, 10], box), 4) for box in gt_bboxes[0].tolist()] == [0.6145, 0.6145, 0.8667]
    labels, boxes, scores, fg, gt_idx = TaskAlignedAssigner(topk=1, num_classes=2)(
        pd_scores, pd_bboxes, anc, gt_labels, gt_bboxes, torch.ones(1, 3, 1).bool()
    )
    assert fg[0].tolist() == [True, True, False]
    assert gt_idx[0].tolist() == [2, 2, 0]  # a1 goes to gt2, not to gt0 or gt1 (the claimers-only rule)
    assert labels[0].tolist() == [1, 1, 2] and boxes[0, 1].tolist() == [0.0, 0.0, 30.0, 10.0]
    # gt2 holds a0 (metric 0.949, CIoU 1) and a1: a1's target is metric(a1) / metric(a0) * 1
    expected = 0.01**0.5 * ciou([2.0, 0, 28, 10], [0.0, 0, 30, 10]) ** 6 / 0.9**0.5
    assert scores[0].flatten().tolist() == pytest.approx([0.0, 1.0, 0.0, expected, 0.0, 0.0], abs=1e-5)


def test_assigner_no_gt_and_all_padding():
    pd_scores, pd_bboxes, anc, *_ = hand_case()
    empty = (torch.zeros(1, 0, 1), torch.zeros(1, 0, 4), torch.zeros(1, 0, 1, dtype=torch.bool))
    labels, boxes, scores, fg, gt_idx = TaskAlignedAssigner(topk=3, num_classes=2)(pd_scores, pd_bboxes, anc, *empty)
    assert labels.tolist() == [[2] * 7] and not fg.any() and scores.abs().sum() == 0 and boxes.shape == (1, 7, 4)
    assert gt_idx.tolist() == [[0] * 7]
    _, _, _, gtl, gtb, _ = hand_case()
    out = TaskAlignedAssigner(topk=3, num_classes=2)(pd_scores, pd_bboxes, anc, gtl, gtb, torch.zeros(1, 3, 1).bool())
    assert not out[3].any() and out[2].abs().sum() == 0


def reference_assign(pd_scores, pd_bboxes, anc, gt_labels, gt_bboxes, mask_gt, topk, nc, alpha=0.5, beta=6.0,
                     topk2=None, min_side=0.0):
    """A loop-by-loop reading of the task-aligned assignment, for comparison (topk2, min_side: 8.4's options)."""
    bs, na, _ = pd_scores.shape
    nm = gt_bboxes.shape[1]
    metric, ov = torch.zeros(bs, nm, na), torch.zeros(bs, nm, na)
    claims = [[[] for _ in range(na)] for _ in range(bs)]
    for b in range(bs):
        for m in range(nm):
            if not mask_gt[b, m, 0]:
                continue
            x1, y1, x2, y2 = gt_bboxes[b, m].tolist()
            if x2 - x1 < min_side:
                x1, x2 = (x1 + x2 - min_side) / 2, (x1 + x2 + min_side) / 2
            if y2 - y1 < min_side:
                y1, y2 = (y1 + y2 - min_side) / 2, (y1 + y2 + min_side) / 2
            cands = []
            for a in range(na):
                ax, ay = anc[a].tolist()
                if min(ax - x1, ay - y1, x2 - ax, y2 - ay) > 1e-9:
                    ov[b, m, a] = max(float(bbox_iou(gt_bboxes[b, m], pd_bboxes[b, a], xywh=False, CIoU=True)), 0.0)
                    score = float(pd_scores[b, a, int(gt_labels[b, m, 0])])
                    metric[b, m, a] = score**alpha * float(ov[b, m, a]) ** beta
                    cands.append(a)
            for a in sorted(cands, key=lambda a: -float(metric[b, m, a]))[:topk]:
                claims[b][a].append(m)
    fg = torch.zeros(bs, na, dtype=torch.bool)
    idx = torch.zeros(bs, na, dtype=torch.long)
    for b in range(bs):
        for a in range(na):
            if len(claims[b][a]) == 1:
                fg[b, a], idx[b, a] = True, claims[b][a][0]
            elif claims[b][a]:  # several claimers: the highest IoU over ALL gts (0 for non-candidates), first of ties
                fg[b, a] = True
                idx[b, a] = max(range(nm), key=lambda m: float(ov[b, m, a]))
    if topk2 is not None:  # each gt keeps its topk2 best anchors among those it won
        for b in range(bs):
            for m in range(nm):
                mine = [a for a in range(na) if fg[b, a] and idx[b, a] == m]
                for a in sorted(mine, key=lambda a: -float(metric[b, m, a]))[topk2:]:
                    fg[b, a], idx[b, a] = False, 0
    scores = torch.zeros(bs, na, nc)
    for b in range(bs):
        for m in range(nm):
            mine = [a for a in range(na) if fg[b, a] and idx[b, a] == m]
            if not mine:
                continue
            best_metric = max(float(metric[b, m, a]) for a in mine)
            best_ov = max(float(ov[b, m, a]) for a in mine)
            for a in mine:
                scores[b, a, int(gt_labels[b, m, 0])] = float(metric[b, m, a]) * best_ov / (best_metric + 1e-9)
    return fg, idx, scores


@pytest.mark.parametrize("topk", [1, 3, 10])
def test_assigner_matches_loop_reference_on_random_cases(topk):
    g = torch.Generator().manual_seed(topk)
    feats = [torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 4, 4)]
    anc, st = make_anchors(feats, torch.tensor([8.0, 16.0]))
    anc = anc * st  # pixels in a 64 x 64 image
    bs, nm, nc, na = 3, 4, 3, anc.shape[0]
    xy = torch.rand(bs, nm, 2, generator=g) * 30
    gt_bboxes = torch.cat((xy, xy + 12 + torch.rand(bs, nm, 2, generator=g) * 22), -1)
    gt_labels = torch.randint(0, nc, (bs, nm, 1), generator=g).float()
    mask_gt = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool).unsqueeze(-1)
    # predicted boxes: centred near each anchor, 14-30 px wide, so CIoU with the gts holding them is > 0
    wh = 14 + torch.rand(bs, na, 2, generator=g) * 16
    ctr = anc + (torch.rand(bs, na, 2, generator=g) - 0.5) * 4
    pd_bboxes = torch.cat((ctr - wh / 2, ctr + wh / 2), -1)
    pd_scores = 0.05 + 0.9 * torch.rand(bs, na, nc, generator=g)
    args = (pd_scores, pd_bboxes, anc, gt_labels, gt_bboxes, mask_gt)
    _, _, scores, fg, idx = TaskAlignedAssigner(topk=topk, num_classes=nc)(*args)
    ref_fg, ref_idx, ref_scores = reference_assign(*args, topk=topk, nc=nc)
    assert fg.sum() >= 6
    assert torch.equal(fg, ref_fg)
    assert torch.equal(idx[fg], ref_idx[fg])
    assert torch.allclose(scores, ref_scores, atol=1e-5)


# ---------------------------------------------------------------- DFL and box loss


def test_dfl_value_and_minimum():
    p = torch.full((16,), 1e-9)
    p[3], p[4] = 0.7, 0.3
    logits = p.log().view(1, 16)
    target = torch.tensor([[3.3]])
    dfl = DFLoss(16)
    best = float(dfl(logits, target))
    assert best == pytest.approx(-(0.7 * math.log(0.7) + 0.3 * math.log(0.3)), abs=1e-5)  # 0.6109
    assert float(dfl(torch.zeros(1, 16), target)) == pytest.approx(math.log(16), abs=1e-5)  # uniform
    g = torch.Generator().manual_seed(0)
    for _ in range(20):  # any other logits are worse
        assert float(dfl(logits + 0.3 * torch.randn(1, 16, generator=g), target)) > best
    # four sides are averaged: sides with targets 3.3 and exact 5.0 (one-hot at bin 5 gives ~0)
    four = torch.cat((logits, logits, torch.full((2, 16), -30.0)))
    four[2:, 5] = 30.0
    assert float(dfl(four, torch.tensor([[3.3, 3.3, 5.0, 5.0]]))) == pytest.approx(best / 2, abs=1e-5)


def test_bbox_loss_zero_for_perfect_prediction():
    anchors = torch.tensor([[4.5, 4.5], [10.5, 2.5]])
    ltrb = torch.tensor([[[2.0, 3.0, 4.0, 5.0], [1.0, 1.0, 7.0, 2.0]]])  # integer distances: DFL can reach 0
    target = dist2bbox(ltrb, anchors, xywh=False)
    pred_dist = torch.full((1, 2, 4, 16), -30.0)
    pred_dist.scatter_(3, ltrb.long().unsqueeze(-1), 30.0)
    pred_dist = pred_dist.view(1, 2, 64)
    scores = torch.tensor([[[0.8, 0.0], [0.0, 0.6]]])
    fg = torch.tensor([[True, True]])
    loss_iou, loss_dfl = BboxLoss(16)(pred_dist, target.clone(), anchors, target, scores, scores.sum(), fg)
    assert float(loss_iou) == pytest.approx(0.0, abs=1e-6) and float(loss_dfl) == pytest.approx(0.0, abs=1e-6)
    shifted = target + torch.tensor([1.0, 0.0, 1.0, 0.0])  # shifted by one unit: CIoU < 1
    loss_iou, _ = BboxLoss(16)(pred_dist, shifted, anchors, target, scores, scores.sum(), fg)
    w = torch.tensor([0.8, 0.6])
    expected = ((1 - bbox_iou(shifted[0], target[0], xywh=False, CIoU=True).squeeze(1)) * w).sum() / w.sum()
    assert float(loss_iou) == pytest.approx(float(expected), rel=1e-6) and float(loss_iou) > 0.05


# ---------------------------------------------------------------- v8 / v10 losses


def test_build_targets_pads_unsorted_batch():
    loss = v8DetectionLoss(head(3), HYP)
    feats = random_preds(3, 3, 64)["one2many"]
    batch = {
        "batch_idx": torch.tensor([2.0, 0.0, 2.0]),
        "cls": torch.tensor([[1.0], [2.0], [0.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.5, 0.25], [0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.25, 0.25]]),
    }
    t = loss.build_targets(batch, feats)
    assert t.shape == (3, 2, 5)
    assert t[0].tolist() == [[2.0, 0.0, 0.0, 32.0, 32.0], [0.0] * 5]
    assert t[1].abs().sum() == 0
    assert t[2].tolist() == [[1.0, 16.0, 24.0, 48.0, 40.0], [0.0, 40.0, 40.0, 56.0, 56.0]]


def test_bad_config_and_bad_labels_are_clear_errors():
    with pytest.raises(UserError, match="'dfl'"):
        v10DetectLoss(head(), {"box": 7.5, "cls": 0.5, "v10_loss": "classic"})
    loss = v10DetectLoss(head(2), {"box": 7.5, "cls": 0.5, "dfl": 1.5, "v10_loss": "classic"})  # a mapping too
    batch = {"batch_idx": torch.zeros(1), "cls": torch.tensor([[5.0]]), "bboxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]])}
    with pytest.raises(UserError, match="nc=2"):
        loss(random_preds(1, 2, 64), batch)


def test_v10_loss_zero_boxes_is_finite_and_pushes_scores_down():
    preds = random_preds(2, 3, 64, requires_grad=True)
    loss = v10DetectLoss(head(3), HYP)
    total, items = loss(preds, empty_batch())
    assert torch.isfinite(total) and items[0] == 0 and items[2] == 0
    # cls = BCE(x, 0).sum() / 1 per branch, times gain 0.5, times batch size 2
    expected = sum(
        torch.nn.functional.softplus(torch.cat([p[:, 64:].flatten() for p in preds[k]])).sum() for k in preds
    ).detach() * 0.5
    assert float(items[1]) == pytest.approx(float(expected), rel=1e-5)
    assert float(total.detach()) == pytest.approx(2 * float(expected), rel=1e-5)
    total.backward()
    for p in preds["one2many"] + preds["one2one"]:
        assert (p.grad[:, 64:] > 0).all() and p.grad[:, :64].abs().sum() == 0


def test_v10_total_is_sum_of_branches():
    preds = random_preds(2, 3, 64, seed=3)
    batch = {
        "batch_idx": torch.tensor([0.0, 0.0, 1.0]),
        "cls": torch.tensor([[0.0], [2.0], [1.0]]),
        "bboxes": torch.tensor([[0.4, 0.4, 0.5, 0.6], [0.7, 0.3, 0.3, 0.3], [0.5, 0.5, 0.8, 0.8]]),
    }
    loss = v10DetectLoss(head(3), HYP)
    total, items = loss(preds, batch)
    m, o = v8DetectionLoss(head(3), HYP, tal_topk=10), v8DetectionLoss(head(3), HYP, tal_topk=1)
    m.assigner.min_side = o.assigner.min_side = 16.0  # classic widens tiny gts too (as 8.4's E2EDetectLoss)
    t_m, i_m = m(preds["one2many"], batch)
    t_o, i_o = o(preds["one2one"], batch)
    assert torch.allclose(total, t_m + t_o) and torch.allclose(items, i_m + i_o)
    assert torch.allclose(loss.last_items_per_branch, torch.stack((i_m, i_o)))
    assert float(total) == pytest.approx(float(items.sum()) * 2, rel=1e-6)
    assert (items > 0).all() and not items.requires_grad
    # the (inference, raw) tuple some heads return in eval mode gives the same loss
    assert torch.allclose(loss((torch.zeros(2, 300, 6), preds), batch)[0], total)


def dense_branch_items(loss: v8DetectionLoss, feats, batch):
    """The textbook (all-anchor, dense) formulation of one branch, to check the compact one against."""
    bs, no = feats[0].shape[:2]
    pred = torch.cat([f.view(bs, no, -1) for f in feats], 2).permute(0, 2, 1)
    distri, scores = pred[..., :64], pred[..., 64:]
    anc, st = make_anchors(feats, STRIDES)
    gl, gb = loss.build_targets(batch, feats).split((1, 4), 2)
    pb = loss.bbox_decode(anc, distri)  # (B, A, 4)
    mask_gt = gb.sum(-1, keepdim=True) > 0
    _, tb, ts, fg, _ = loss.assigner(scores.detach().sigmoid(), pb.detach() * st, anc * st, gl, gb, mask_gt)
    tss = ts.sum().clamp(min=1)
    cls = torch.nn.functional.binary_cross_entropy_with_logits(scores, ts, reduction="sum") / tss
    box, dfl = BboxLoss(16)(distri, pb, anc, tb / st, ts, tss, fg)
    return torch.stack((box * HYP.box, cls * HYP.cls, dfl * HYP.dfl))


@pytest.mark.parametrize("topk", [1, 10])
def test_compact_branch_equals_dense_formulation(topk):
    feats = random_preds(3, 4, 96, seed=topk, requires_grad=True)["one2many"]
    g = torch.Generator().manual_seed(5)
    xy, wh = 0.2 + 0.6 * torch.rand(7, 2, generator=g), 0.1 + 0.4 * torch.rand(7, 2, generator=g)
    batch = {
        "batch_idx": torch.tensor([2.0, 0, 0, 2, 0, 2, 2]),
        "cls": torch.randint(0, 4, (7, 1), generator=g).float(),
        "bboxes": torch.cat((xy, wh), 1),
    }
    loss = v8DetectionLoss(head(4), HYP, tal_topk=topk)
    total, items = loss(feats, batch)
    dense = dense_branch_items(loss, feats, batch)
    assert torch.allclose(items, dense.detach(), rtol=1e-5) and (items > 0).all()
    grads = torch.autograd.grad(total, feats)
    dense_grads = torch.autograd.grad(dense.sum() * 3, feats)
    for a, b in zip(grads, dense_grads):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)


def test_tiny_optimisation_fits_one_box():
    torch.manual_seed(0)
    preds = {
        k: [(0.01 * torch.randn(1, 66, 64 // s, 64 // s)).requires_grad_() for s in (8, 16, 32)]
        for k in ("one2many", "one2one")
    }
    gt = torch.tensor([[16.0, 12.0, 48.0, 44.0]])
    batch = {
        "batch_idx": torch.zeros(1), "cls": torch.tensor([[1.0]]), "bboxes": torch.tensor([[0.5, 28 / 64, 0.5, 0.5]])
    }
    loss = v10DetectLoss(head(2), HYP)
    opt = torch.optim.Adam([p for v in preds.values() for p in v], lr=0.1)
    first = None
    for _ in range(100):
        total, _ = loss(preds, batch)
        first = float(total.detach()) if first is None else first
        opt.zero_grad()
        total.backward()
        opt.step()
    last = float(loss(preds, batch)[0].detach())
    assert last < first / 10
    with torch.no_grad():  # decode the one-to-one branch: its top-scoring box must be the gt
        o2o = loss.one2one
        feats = preds["one2one"]
        raw = torch.cat([f.view(1, 66, -1) for f in feats], 2).permute(0, 2, 1)
        anc, st = make_anchors(feats, STRIDES)
        boxes = o2o.bbox_decode(anc, raw[..., :64].contiguous())[0] * st
        score, cls = raw[0, :, 64:].sigmoid().max(1)
        best = score.argmax()
        assert int(cls[best]) == 1 and float(score[best]) > 0.5
        assert float(box_iou(boxes[best : best + 1], gt)) > 0.9


# ---------------------------------------------------------------- the scheduled recipe (Ultralytics 8.4)


def test_enlarge_small_boxes_and_candidates_of_a_tiny_gt():
    boxes = torch.tensor([[10.0, 10.0, 14.0, 30.0], [0.0, 0.0, 40.0, 40.0]])
    assert enlarge_small_boxes(boxes, 16).tolist() == [[4.0, 10.0, 20.0, 30.0], [0.0, 0.0, 40.0, 40.0]]
    # a 4x4 gt centred at (15, 15) between the stride-8 anchor centres 12 and 20: no candidate at all,
    # widened to 16x16 ([7, 23]) it holds the four anchors (12|20, 12|20)
    anc = make_anchors([torch.zeros(1, 1, 4, 4)], torch.tensor([8.0]))[0] * 8  # centres 4, 12, 20, 28
    gt = torch.tensor([[[13.0, 13.0, 17.0, 17.0]]])
    assert not TaskAlignedAssigner(topk=10)(torch.rand(1, 16, 1), torch.zeros(1, 16, 4), anc, torch.zeros(1, 1, 1),
                                            gt, torch.ones(1, 1, 1).bool())[3].any()
    inside = TaskAlignedAssigner(topk=10, min_side=16).select_candidates_in_gts(anc, gt)[0, 0]
    assert anc[inside].tolist() == [[12.0, 12.0], [20.0, 12.0], [12.0, 20.0], [20.0, 20.0]]
    # sides >= min_side are left as they are
    big = torch.tensor([[[0.0, 0.0, 17.0, 16.0]]])
    assert torch.equal(TaskAlignedAssigner(min_side=16).select_candidates_in_gts(anc, big),
                       TaskAlignedAssigner().select_candidates_in_gts(anc, big))


def topk2_case():
    """hand_case with a4, a5 almost unscored: gt1's best anchor by metric is then a2, which gt0 also wants."""
    pd_scores, pd_bboxes, anc, gt_labels, gt_bboxes, mask_gt = hand_case()
    pd_scores[0, 4:6] = 1e-6
    return pd_scores, pd_bboxes, anc, gt_labels, gt_bboxes, mask_gt


def test_top1_alone_vs_top3_then_conflicts_then_top1():
    case = topk2_case()
    # metrics (score**0.5 * CIoU**6): gt1: a2 0.707*0.418**6 = 0.0038 > a4 0.001*0.93**6; gt0: a0 0.707 > a1 > a2
    # plain top-1: gt0 takes a0, gt1 takes a2 (nobody else claims it)
    _, _, _, fg, gt_idx = TaskAlignedAssigner(topk=1, num_classes=2)(*case)
    assert fg[0].tolist() == [True, False, True, False, False, False, False] and gt_idx[0, 2] == 1
    # top-3: gt0 claims a0, a1, a2; gt1 claims a2, a4, a5; a2 goes to gt0 (CIoU 0.505 > 0.418); then the top-1
    # per gt among what it holds: gt0 keeps a0, gt1 keeps a4 (CIoU 0.93 beats a5's 0.8 at equal scores)
    labels, boxes, scores, fg, gt_idx = TaskAlignedAssigner(topk=3, num_classes=2, topk2=1)(*case)
    assert fg[0].tolist() == [True, False, False, False, True, False, False]
    assert gt_idx[0, fg[0]].tolist() == [0, 1] and labels[0].tolist() == [0, 2, 2, 2, 1, 2, 2]
    # one anchor per gt: its target score is its own CIoU with the gt
    assert float(scores[0, 4, 1]) == pytest.approx(ciou([6.0, 0, 20, 10], [5.0, 0, 20, 10]), abs=1e-5)
    assert float(scores[0, 0, 0]) == pytest.approx(1.0, abs=1e-5) and scores[0, ~fg[0]].abs().sum() == 0
    # topk2 >= topk changes nothing
    plain = TaskAlignedAssigner(topk=3, num_classes=2)(*case)
    same = TaskAlignedAssigner(topk=3, num_classes=2, topk2=3)(*case)
    assert all(torch.equal(a, b) for a, b in zip(plain, same))


@pytest.mark.parametrize("topk,topk2,min_side", [(7, 1, 16.0), (10, None, 16.0), (7, 2, 0.0)])
def test_assigner_84_options_match_loop_reference(topk, topk2, min_side):
    g = torch.Generator().manual_seed(topk + (topk2 or 0))
    feats = [torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 4, 4)]
    anc, st = make_anchors(feats, torch.tensor([8.0, 16.0]))
    anc = anc * st
    bs, nm, nc, na = 3, 5, 3, anc.shape[0]
    xy = torch.rand(bs, nm, 2, generator=g) * 50
    gt_bboxes = torch.cat((xy, xy + 3 + torch.rand(bs, nm, 2, generator=g) * 24), -1)  # 3-27 px: many tiny ones
    gt_labels = torch.randint(0, nc, (bs, nm, 1), generator=g).float()
    mask_gt = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], dtype=torch.bool).unsqueeze(-1)
    wh = 6 + torch.rand(bs, na, 2, generator=g) * 16
    ctr = anc + (torch.rand(bs, na, 2, generator=g) - 0.5) * 4
    pd_bboxes = torch.cat((ctr - wh / 2, ctr + wh / 2), -1)
    pd_scores = 0.05 + 0.9 * torch.rand(bs, na, nc, generator=g)
    args = (pd_scores, pd_bboxes, anc, gt_labels, gt_bboxes, mask_gt)
    _, _, scores, fg, idx = TaskAlignedAssigner(topk=topk, num_classes=nc, topk2=topk2, min_side=min_side)(*args)
    ref_fg, ref_idx, ref_scores = reference_assign(*args, topk=topk, nc=nc, topk2=topk2, min_side=min_side)
    # widened tiny gts have candidates whose CIoU is <= 0 (metric 0): which of those fill the top-k is a tie
    # that top-k breaks its own way; they get target score 0 and weigh nothing in the loss. Compare the rest.
    eff, ref_eff = fg & (scores.amax(-1) > 0), ref_fg & (ref_scores.amax(-1) > 0)
    assert eff.sum() >= 6
    assert torch.equal(eff, ref_eff)
    assert torch.equal(idx[eff], ref_idx[eff])
    assert torch.allclose(scores, ref_scores, atol=1e-5)
    if topk2 is not None:  # at most topk2 anchors per gt
        for b in range(bs):
            assert torch.bincount(idx[b][fg[b]], minlength=nm).max() <= topk2


def test_o2m_weight_schedule():
    assert [round(o2m_weight(e, 10), 6) for e in (0, 3, 9, 12)] == [0.8, round(0.1 + 0.7 * 6 / 9, 6), 0.1, 0.1]
    assert [o2m_weight(e, 2) for e in (0, 1)] == [0.8, pytest.approx(0.1)]
    assert o2m_weight(0, 1) == 0.8  # a one-epoch run trains at the first epoch's weight
    assert [round(o2m_weight(e, 15), 4) for e in range(0, 15, 7)] == [0.8, 0.45, 0.1]


def scheduled_hyp(epochs: int = 11):
    return SimpleNamespace(box=7.5, cls=0.5, dfl=1.5, v10_loss="scheduled", epochs=epochs)


def test_scheduled_total_weights_branches_and_logs_one2one():
    preds = random_preds(2, 3, 64, seed=3)
    batch = {
        "batch_idx": torch.tensor([0.0, 0.0, 1.0, 1.0]),
        "cls": torch.tensor([[0.0], [2.0], [1.0], [1.0]]),
        "bboxes": torch.tensor([[0.4, 0.4, 0.5, 0.6], [0.7, 0.3, 0.3, 0.3], [0.5, 0.5, 0.8, 0.8],
                                [0.2, 0.2, 0.08, 0.1]]),  # the last one is 5 x 6 px: widened to 16 px
    }
    loss = v10DetectLoss(head(3), scheduled_hyp(11))
    assert loss.weights == (0.8, pytest.approx(0.2))
    m = v8DetectionLoss(head(3), HYP, tal_topk=10)
    o = v8DetectionLoss(head(3), HYP, tal_topk=7)
    m.assigner.min_side = o.assigner.min_side = 16.0
    o.assigner.topk2 = 1
    t_m, i_m = m(preds["one2many"], batch)
    t_o, i_o = o(preds["one2one"], batch)
    for epoch, w in ((0, 0.8), (5, 0.45), (10, 0.1)):
        loss.set_epoch(epoch)
        total, items = loss(preds, batch)
        assert loss.o2m == pytest.approx(w)
        assert float(total) == pytest.approx(float(w * t_m + (1 - w) * t_o), rel=1e-5)
        assert torch.allclose(items, i_o) and torch.allclose(loss.last_items_per_branch, torch.stack((i_m, i_o)))
    # stateless: the weight depends on the epoch number only, whatever came before
    loss.set_epoch(9)
    loss.set_epoch(5)
    fresh = v10DetectLoss(head(3), scheduled_hyp(11))
    fresh.set_epoch(5)
    assert loss.o2m == fresh.o2m
    # classic shares the one-to-many branch (top-10, tiny gt widened) and differs in the one-to-one (top-1)
    classic = v10DetectLoss(head(3), HYP)
    classic(preds, batch)
    assert torch.equal(classic.last_items_per_branch[0], loss.last_items_per_branch[0])
    assert not torch.allclose(classic.last_items_per_branch[1], loss.last_items_per_branch[1])
    classic.set_epoch(7)  # classic ignores the epoch
    assert classic.weights == (1.0, 1.0) and torch.allclose(classic(preds, batch)[0], classic(preds, batch)[0])


def test_recipe_setting_is_checked():
    for bad in ("cosine", None, 3):
        with pytest.raises(UserError, match=r"'v10_loss'.*classic/scheduled"):
            v10DetectLoss(head(), SimpleNamespace(box=7.5, cls=0.5, dfl=1.5, v10_loss=bad, epochs=3))
    with pytest.raises(UserError, match="'epochs'"):
        v10DetectLoss(head(), {"box": 7.5, "cls": 0.5, "dfl": 1.5, "v10_loss": "scheduled"})
    assert v10DetectLoss(head(), {**vars(scheduled_hyp()), "v10_loss": "Scheduled"}).recipe == "scheduled"
    from ultralytics.cfg import get_cfg

    assert get_cfg().v10_loss in ("classic", "scheduled")
    with pytest.raises(UserError, match=r"v10_loss='cosine'.*one of classic/scheduled"):
        get_cfg(overrides={"v10_loss": "cosine"})
