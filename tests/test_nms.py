"""NMS for the one-to-many head (nms=True): the vectorised greedy NMS, class-aware NMS, and the head/val/predict switch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import UserError
from ultralytics.utils.nms import TORCHVISION_NMS, greedy_nms, nms, non_max_suppression


def reference_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Textbook greedy NMS, one box at a time: the definition both implementations must follow."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    kept: list[int] = []
    for i in order:  # keep box i unless a kept (higher-scored) box overlaps it by more than iou
        k = boxes[kept]
        inter = np.prod(np.clip(np.minimum(boxes[i, 2:], k[:, 2:]) - np.maximum(boxes[i, :2], k[:, :2]), 0, None), 1)
        union = np.prod(boxes[i, 2:] - boxes[i, :2]) + np.prod(k[:, 2:] - k[:, :2], 1) - inter
        if not (inter / union > iou).any():
            kept.append(i)
    return kept


def random_boxes(rng, n: int, clustered: bool = True):
    centres = rng.uniform(0, 200, (max(n // 8, 1), 2)) if clustered else rng.uniform(0, 200, (n, 2))
    xy = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 6, (n, 2))
    wh = rng.uniform(8, 60, (n, 2))
    boxes = np.concatenate((xy - wh / 2, xy + wh / 2), 1)
    return torch.tensor(boxes, dtype=torch.float32), torch.tensor(rng.permutation(n) / n + 0.001, dtype=torch.float32)


@pytest.mark.parametrize("seed", range(6))
def test_greedy_nms_keeps_the_same_boxes_as_the_definition_and_torchvision(seed):
    rng = np.random.default_rng(seed)
    boxes, scores = random_boxes(rng, int(rng.integers(1, 700)), clustered=seed % 2 == 0)
    for iou in (0.3, 0.5, 0.7):
        expect = reference_nms(boxes.double().numpy(), scores.numpy(), iou)
        ours = greedy_nms(boxes, scores, iou, block=int(rng.integers(16, 300))).tolist()  # several blocks
        assert ours == expect
        assert greedy_nms(boxes, scores, iou, max_keep=7).tolist() == expect[:7]
        assert nms(boxes, scores, iou).tolist() == expect  # torchvision's kernel where it loads, else ours
        if TORCHVISION_NMS:
            assert nms(boxes, scores, iou).tolist() == ours


def test_class_aware_nms_multi_label_and_max_det():
    # three candidates over 2 classes: boxes A and B overlap (IoU 0.81); C is apart
    boxes = torch.tensor([[0, 0, 100, 100], [0, 0, 90, 90], [300, 300, 340, 340]], dtype=torch.float32)
    scores = torch.tensor([[0.9, 0.0], [0.8, 0.7], [0.0, 0.6]])
    preds = torch.cat((boxes, scores), 1)[None]  # (1, 3, 4 + 2)
    out = non_max_suppression(preds, conf=0.25, iou=0.7, multi_label=True)[0]
    # class 0: A suppresses B; class 1: B (0.7) and C (0.6) both stay; a box of class 1 is never cut by class 0
    assert out[:, 4].tolist() == pytest.approx([0.9, 0.7, 0.6]) and out[:, 5].tolist() == [0, 1, 1]
    assert out[1, :4].tolist() == [0, 0, 90, 90]
    best = non_max_suppression(preds, conf=0.25, iou=0.7, multi_label=False)[0]  # each box's best class only
    assert best[:, 5].tolist() == [0, 1] and best[:, 4].tolist() == pytest.approx([0.9, 0.6])
    assert len(non_max_suppression(preds, conf=0.25, iou=0.7, max_det=2, multi_label=True)[0]) == 2
    assert non_max_suppression(preds, conf=0.95)[0].shape == (0, 6)
    assert non_max_suppression(preds, conf=0.25, classes=[1], multi_label=True)[0][:, 5].tolist() == [1, 1]


def test_head_decodes_the_branch_nms_asks_for():
    m = DetectionModel("yolov10n.yaml", nc=3, verbose=False).eval()
    x = torch.rand(1, 3, 64, 64)
    head = m.model[-1]
    assert m(x).shape == (1, min(300, 84), 6)  # one-to-one top-k (84 anchors at 64 px)
    head.nms = True
    y = m(x)
    assert y.shape == (1, 84, 4 + 3)  # decoded one-to-many maps for NMS
    _, raw = m(x, raw=True)
    assert torch.allclose(y, head.decode(raw["one2many"]))
    fused = m.fuse(verbose=False)  # with nms set, fusing keeps the one-to-many branch
    assert fused.model[-1].cv2 is not None and torch.allclose(fused(x), y, atol=1e-4)


def test_bad_nms_and_iou_settings_are_clear_errors():
    with pytest.raises(UserError, match="nms='maybe'.*bool"):
        get_cfg(overrides={"nms": "maybe"})
    for bad in (0, 1.5, -0.1):
        with pytest.raises(UserError, match=r"iou=.*> 0 and <= 1"):
            get_cfg(overrides={"iou": bad})
    assert get_cfg(overrides={"iou": 1}).iou == 1.0 and get_cfg(overrides={"nms": "true"}).nms is True
