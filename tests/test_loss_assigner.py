"""Tests of the anchors, box coding and the task-aligned assigner (with the options of the scheduled recipe)."""

from __future__ import annotations

import pytest
import torch

from ultralytics.utils.ops import bbox_iou
from ultralytics.utils.tal import TaskAlignedAssigner, bbox2dist, dist2bbox, enlarge_small_boxes, make_anchors

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


# ---------------------------------------------------------------- assigner options of the scheduled recipe (8.4)


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

