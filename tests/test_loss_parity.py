"""Both YOLOv10 loss recipes equal Ultralytics 8.4.190's values on a crowded batch with tiny boxes.

tests/data/yolov10-loss-case.pt (see tests/data/README.md) holds fixed head outputs of both branches, a batch
of 4 images with 40 overlapping objects (every third one under 16 px a side) and the losses 8.4.190 computed
from them: E2EDetectLoss (our 'classic') and E2ELoss (our 'scheduled') at epochs 0, 5 and 9 of 10, and each
branch alone. Any difference in the assigner (the tiny-box widening, the rule for anchors several gts pick,
top-k, the normalisation) or in the box, DFL or class loss moves these values by far more than 1e-5.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ultralytics.utils.loss import o2m_weight, v10DetectLoss

CASE = Path(__file__).parent / "data" / "yolov10-loss-case.pt"
REL = 1e-5  # the acceptance tolerance, relative, float32 on the CPU


@pytest.fixture(scope="module")
def case():
    return torch.load(CASE, weights_only=True)


def head_feats(case: dict, branch: str) -> list[torch.Tensor]:
    """The fixture's (B, 64, A) DFL logits and (B, nc, A) class logits -> the per-level maps (B, 64 + nc, H, W).

    Levels P3, P4, P5 are concatenated along A, each row-major (y, then x): the layout this tree's Detect head
    flattens its maps in, so the criterion gets the same numbers at the same anchors as 8.4 did.
    """
    out, start = [], 0
    for h, w in case["feat_shapes"]:
        x = torch.cat([case[branch][k][:, :, start : start + h * w] for k in ("boxes", "scores")], 1)
        out.append(x.reshape(x.shape[0], -1, h, w))
        start += h * w
    assert start == case[branch]["boxes"].shape[-1]
    return out


def run_case(case: dict, recipe: str, epoch: int | None = None):
    """-> {name: (total, [box, cls, dfl])} for the recipe (at `epoch`) and for each of its branches alone."""
    head = SimpleNamespace(nc=case["nc"], reg_max=case["reg_max"], stride=torch.tensor(case["strides"]))
    loss = v10DetectLoss(head, {**case["hyp"], "v10_loss": recipe, "epochs": case["epochs"]})
    if epoch is not None:
        loss.set_epoch(epoch)
    preds = {k: head_feats(case, k) for k in ("one2many", "one2one")}
    total, items = loss(preds, case["batch"])
    bs = len(preds["one2many"][0])
    name = recipe if epoch is None else f"{recipe}/epoch{epoch}"
    out = {name: (float(total), items.tolist())}
    for row, branch in enumerate(("one2many", "one2one")):  # a branch's total is its gained items' sum x B
        branch_items = loss.last_items_per_branch[row]
        out[f"{recipe}/{branch}"] = (float(branch_items.sum() * bs), branch_items.tolist())
    return out


def test_fixture_holds_the_crowded_tiny_batch(case):
    boxes = case["batch"]["bboxes"] * case["imgsz"]
    assert torch.bincount(case["batch"]["batch_idx"].long()).tolist() == [4, 8, 12, 16]
    assert int((boxes[:, 2:] < case["strides"][1]).any(1).sum()) >= 10  # widened by the rule under test
    assert sorted(case["expected"]) == sorted(
        ["classic", "classic/one2many", "classic/one2one", "scheduled/one2many", "scheduled/one2one"]
        + [f"scheduled/epoch{e}" for e in (0, 5, 9)]
    )


@pytest.mark.parametrize("recipe,epoch", [("classic", None), ("scheduled", 0), ("scheduled", 5), ("scheduled", 9)])
def test_loss_equals_ultralytics_84(case, recipe, epoch):
    got = run_case(case, recipe, epoch)
    for name, (total, items) in got.items():
        want = case["expected"][name]
        assert total == pytest.approx(want["total"], rel=REL), name
        assert items == pytest.approx([want["box"], want["cls"], want["dfl"]], rel=REL), name
        if "o2m_weight" in want:  # the schedule's weight at that epoch is 8.4's too
            assert o2m_weight(epoch, case["epochs"]) == pytest.approx(want["o2m_weight"], rel=1e-12)
