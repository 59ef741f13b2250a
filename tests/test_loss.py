"""Tests of the v8 / v10 detection losses: DFL and box loss, targets, the branch sum and the scheduled recipe."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from ultralytics.utils import UserError
from ultralytics.utils.loss import BboxLoss, DFLoss, o2m_weight, v8DetectionLoss, v10DetectLoss
from ultralytics.utils.ops import bbox_iou, box_iou
from ultralytics.utils.tal import dist2bbox, make_anchors

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
