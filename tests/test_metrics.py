"""Detection metrics on hand-built cases with known AP, and agreement with pycocotools COCOeval."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

from ultralytics.utils import UserError
from ultralytics.utils.matching import IOU_THRESHOLDS, match_by_area, match_by_score
from ultralytics.utils.metrics import (
    ConfusionMatrix,
    DetMetrics,
    Metric,
    ap_per_class,
    compute_ap,
    match_predictions,
)
from ultralytics.utils.ops import box_iou

IOUV = IOU_THRESHOLDS
HALF = 51 / 101  # 101-pt AP when recall tops out at 0.5 with precision 1: thresholds 0.00..0.50 -> 51 of 101


def evaluate(tp, conf, pred_cls, target_cls, names=None):
    """Run DetMetrics on per-prediction tp flags: tp (n,) or (n, 10) bool."""
    tp = np.asarray(tp, dtype=bool)
    tp = np.repeat(tp[:, None], 10, 1) if tp.ndim == 1 else tp
    m = DetMetrics(names=names or {0: "a", 1: "b"})
    m.process(tp.reshape(-1, 10), np.asarray(conf, float), np.asarray(pred_cls), np.asarray(target_cls))
    return m


# ---------------------------------------------------------------- compute_ap


def test_compute_ap_known_curves():
    assert compute_ap([1.0], [1.0])[0] == pytest.approx(1.0)
    assert compute_ap([0.5], [1.0])[0] == pytest.approx(HALF)  # not 0.75 as linear interpolation would give
    # FP first, then two TPs (2 gts): precision 0, 1/2, 2/3 at recall 0, .5, 1 -> envelope 2/3 everywhere
    ap, mpre, mrec = compute_ap([0.0, 0.5, 1.0], [0.0, 0.5, 2 / 3])
    assert ap == pytest.approx(2 / 3)
    assert np.allclose(mrec, [0, 0, 0.5, 1, 1]) and np.all(np.diff(mpre) <= 0)  # sentinels, envelope
    # TP, FP, TP with 2 gts: precision 1 up to recall .5 (51 pts), 2/3 for recall .51..1 (50 pts)
    assert compute_ap([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3])[0] == pytest.approx((51 + 50 * 2 / 3) / 101)


# ---------------------------------------------------------------- ap_per_class / DetMetrics


def test_perfect_predictions_ap_one():
    m = evaluate([1, 1, 1], [0.9, 0.8, 0.7], [0, 0, 1], [0, 0, 1])
    assert m.box.map50 == pytest.approx(1.0) and m.box.map == pytest.approx(1.0)
    assert m.box.mp == pytest.approx(1.0) and m.box.mr == pytest.approx(1.0)
    assert m.fitness == pytest.approx(1.0)


def test_one_missed_gt_of_two():
    m = evaluate([1], [0.9], [0], [0, 0])
    assert m.box.map50 == pytest.approx(HALF) and m.box.map == pytest.approx(HALF)
    assert m.box.mr == pytest.approx(0.5) and m.box.mp == pytest.approx(1.0)


def test_extra_false_positive_low_and_high_conf():
    low = evaluate([1, 1, 0], [0.9, 0.8, 0.5], [0, 0, 0], [0, 0])
    assert low.box.map50 == pytest.approx(1.0) and low.box.map == pytest.approx(1.0)
    high = evaluate([0, 1, 1], [0.95, 0.9, 0.8], [0, 0, 0], [0, 0])
    assert high.box.map50 == pytest.approx(2 / 3) and high.box.map == pytest.approx(2 / 3)


def test_two_classes_mean():
    m = evaluate([1, 1, 1], [0.9, 0.8, 0.7], [0, 0, 1], [0, 0, 1, 1])  # class 0 perfect, class 1 one of two
    assert np.allclose(m.box.ap50, [1.0, HALF])
    assert m.box.map50 == pytest.approx((1 + HALF) / 2)
    assert list(m.ap_class_index) == [0, 1]
    assert m.class_result(1) == pytest.approx((1.0, 0.5, HALF, HALF))


def test_precision_recall_at_max_f1():
    # 2 gts; TP .9, FP .8, TP .7, FP .3: F1 peaks at 0.8 (P 2/3, R 1) for thresholds in (0.3, 0.7]
    tp, fp, p, r, f1, *_ = ap_per_class(np.array([[1], [0], [1], [0]], bool), np.array([0.9, 0.8, 0.7, 0.3]),
                                        np.zeros(4), np.zeros(2))
    assert p[0] == pytest.approx(2 / 3) and r[0] == pytest.approx(1.0) and f1[0] == pytest.approx(0.8)
    assert tp[0] == 2 and fp[0] == 1
    tp, fp, p, *_ = ap_per_class(np.zeros((2, 10), bool), np.array([0.9, 0.4]), np.zeros(2), np.zeros(1))
    assert tp[0] == 0 and fp[0] == 2 and p[0] == 0  # counted, not derived from P (undefined at P = 0)


def test_duplicate_prediction_is_false_positive():
    gt = torch.tensor([[0.0, 0.0, 100.0, 100.0]])
    preds = torch.tensor([[0.0, 0.0, 100.0, 100.0], [0.0, 0.0, 95.0, 100.0]])  # second: IoU 0.95, lower conf
    tp = match_predictions(torch.tensor([0, 0]), torch.tensor([0]), box_iou(gt, preds), IOUV, torch.tensor([.9, .8]))
    assert tp[:, 0].tolist() == [True, False]
    m = evaluate(tp.numpy(), [0.9, 0.8], [0, 0], [0])
    assert m.box.map == pytest.approx(1.0)
    m = evaluate(tp.numpy(), [0.8, 0.9], [0, 0], [0])  # duplicate ranked first: AP = 1/2 (P 1/2 at R 1)
    assert m.box.map50 == pytest.approx(0.5)


def test_empty_predictions_and_empty_ground_truth():
    m = evaluate(np.zeros((0, 10), bool), np.zeros(0), np.zeros(0), [0, 0, 1])
    assert m.box.all_ap.shape == (2, 10) and m.box.map == 0.0 and m.box.map50 == 0.0 and m.box.mp == 0.0
    m = evaluate([1, 0], [0.9, 0.8], [0, 1], [])
    assert len(m.ap_class_index) == 0 and m.box.map == 0.0 and m.fitness == 0.0
    assert np.allclose(m.maps, [0.0, 0.0])


def test_predictions_of_class_without_gt_are_ignored():
    a = evaluate([1, 1], [0.9, 0.8], [0, 0], [0, 0])
    b = evaluate([1, 1, 0], [0.9, 0.8, 0.99], [0, 0, 1], [0, 0])  # class 1 has no gt (COCO ignores it)
    assert b.box.map == a.box.map == pytest.approx(1.0) and list(b.ap_class_index) == [0]


def test_iou_threshold_sweep():
    gt = torch.tensor([[0.0, 0.0, 100.0, 100.0]])
    pred = torch.tensor([[0.0, 0.0, 72.0, 100.0]])  # IoU 0.72: a TP at 0.50, 0.55, 0.60, 0.65, 0.70 only
    tp = match_predictions(torch.tensor([0]), torch.tensor([0]), box_iou(gt, pred), IOUV, torch.tensor([0.9]))
    assert tp[0].tolist() == [True] * 5 + [False] * 5
    m = evaluate(tp.numpy(), [0.9], [0], [0])
    assert m.box.map50 == pytest.approx(1.0) and m.box.map == pytest.approx(0.5)
    assert m.box.map75 == pytest.approx(0.0)


def test_metric_api():
    m = evaluate([1, 1, 1], [0.9, 0.8, 0.7], [0, 0, 2], [0, 0, 2, 2], names={0: "a", 1: "b", 2: "c", 3: "d"})
    assert m.keys == ["metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)"]
    assert list(m.results_dict) == m.keys + ["fitness"]
    assert m.results_dict["metrics/mAP50-95(B)"] == pytest.approx((1 + HALF) / 2)
    assert m.fitness == pytest.approx(0.1 * m.box.map50 + 0.9 * m.box.map)
    assert m.maps.shape == (4,) and m.maps[2] == pytest.approx(HALF) and m.maps[1] == pytest.approx(m.box.map)
    assert set(m.speed) == {"preprocess", "inference", "loss", "postprocess"}
    assert len(m.curves) == len(m.curves_results) == 4
    assert all(r[1].shape == (2, 1000) for r in m.curves_results)
    assert Metric().mean_results() == [0.0, 0.0, 0.0, 0.0]


# ---------------------------------------------------------------- matching


def test_match_predictions_score_order_and_class():
    iou = torch.tensor([[0.90, 0.85, 0.95],  # gt0 (class 0) vs preds A, B, C (C is class 1)
                        [0.00, 0.60, 0.00]], dtype=torch.float64)  # gt1; float64 as COCO's IoU (0.90 in float32
    # is 0.89999998, below the threshold 0.8999999999999999)
    conf = torch.tensor([0.9, 0.8, 0.7])
    tp = match_predictions(torch.tensor([0, 0, 1]), torch.tensor([0, 0]), iou, IOUV, conf)
    assert isinstance(tp, torch.Tensor) and tp.dtype == torch.bool and tp.shape == (3, 10)
    assert tp[0].tolist() == [True] * 9 + [False]  # A (first by score) takes gt0; C (other class) never matches
    assert tp[1].tolist() == [True, True, True] + [False] * 7  # B falls back to gt1 at IoU 0.60
    assert not tp[2].any()
    out = match_predictions(np.array([0, 0, 1]), np.array([0, 0]), iou.numpy(), IOUV, conf.numpy())
    assert isinstance(out, np.ndarray) and (out == tp.numpy()).all()


def test_match_predictions_coco_order_not_iou_order():
    iou = torch.tensor([[0.60, 0.90]], dtype=torch.float64)  # pred A conf .9 IoU .6, pred B conf .5 IoU .9, one gt
    by_score = match_predictions(torch.tensor([0, 0]), torch.tensor([0]), iou, IOUV, torch.tensor([0.9, 0.5]))
    assert by_score[0].tolist() == [True] * 3 + [False] * 7  # A first, while its IoU clears t
    assert by_score[1].tolist() == [False] * 3 + [True] * 6 + [False]  # then B gets the gt
    assert match_predictions(torch.zeros(0), torch.zeros(2), torch.zeros(2, 0), IOUV, torch.zeros(0)).shape == (0, 10)
    assert not match_predictions(torch.zeros(3), torch.zeros(0), torch.zeros(0, 3), IOUV, torch.ones(3)).any()


def _evaluate_img_loop(iou, valid, conf, gt_ignore):
    """COCOeval.evaluateImg's matching written as its plain loop over sorted detections and ground truths."""
    m, n, t = valid.shape
    g_order = np.argsort(gt_ignore, kind="stable")  # non-ignored ground truths first
    match = np.full((n, t), -1)
    for ti in range(t):
        used = set()
        for d in np.argsort(-conf, kind="stable"):
            best, best_iou = -1, None
            for g in g_order:
                if g in used or not valid[g, d, ti]:
                    continue
                if best > -1 and not gt_ignore[best] and gt_ignore[g]:
                    break
                if best_iou is not None and iou[g, d] < best_iou:
                    continue
                best, best_iou = g, iou[g, d]
            if best > -1:
                used.add(best)
                match[d, ti] = best
    return match


def test_match_by_score_equals_the_plain_loop_with_ties_and_ignores():
    rng = np.random.default_rng(0)
    for _ in range(300):
        m, n = int(rng.integers(1, 7)), int(rng.integers(1, 9))  # 3 thresholds below
        iou = rng.choice([0.55, 0.7, 0.9], size=(m, n))  # many exact ties
        valid = iou[..., None] >= np.array([0.5, 0.6, 0.8])
        valid &= rng.random((m, n, 1)) < 0.8  # some pairs of other classes
        conf = rng.choice([0.3, 0.6, 0.9], size=n)  # tied scores keep their order
        ig = rng.random(m) < 0.3
        assert (match_by_score(iou, valid, conf, ig) == _evaluate_img_loop(iou, valid, conf, ig)).all()


def test_match_by_area_ignores_as_cocoeval():
    gt = np.array([[0, 0, 20, 20], [100, 100, 200, 200]], float)  # areas 400 (small) and 10000 (large)
    det = np.array([[0, 0, 20, 20], [100, 100, 200, 200], [300, 300, 350, 350]], float)  # last: unmatched, medium
    out = match_by_area(det, [0.9, 0.8, 0.7], [0, 0, 0], gt, [0, 0], IOUV)
    tp, ig, gt_in = out["small"]
    assert gt_in.tolist() == [True, False]
    assert tp[:, 0].tolist() == [True, False, False]
    assert ig[:, 0].tolist() == [False, True, True]  # matched to an ignored gt; unmatched and out of range
    tp, ig, _ = out["medium"]
    assert not tp.any() and ig[:, 0].tolist() == [True, True, False]  # the unmatched medium box is a FP
    tp, ig, _ = out["all"]
    assert tp[:, 0].tolist() == [True, True, False] and not ig.any()


# ---------------------------------------------------------------- confusion matrix


def test_confusion_matrix_counts():
    cm = ConfusionMatrix(nc=3, conf=0.25, iou_thres=0.45)
    gt = torch.tensor([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], dtype=torch.float32)
    det = torch.tensor([[0, 0, 10, 10, 0.9, 0],  # right class -> (0, 0)
                        [20, 20, 30, 31, 0.8, 2],  # matches the class-1 gt with class 2 -> (2, 1)
                        [60, 60, 70, 70, 0.7, 1],  # no gt -> (1, background)
                        [40, 40, 50, 50, 0.1, 2]])  # below conf: ignored, so the class-2 gt is missed
    cm.process_batch(det, gt, torch.tensor([0, 1, 2]))
    expect = np.zeros((4, 4), int)
    expect[0, 0] = expect[2, 1] = expect[1, 3] = expect[3, 2] = 1
    assert (cm.matrix == expect).all()
    cm.process_batch(None, gt[:1], torch.tensor([0]))  # no detections: missed
    cm.process_batch(det[:1], torch.zeros((0, 4)), torch.zeros(0))  # no gt: false positive
    assert cm.matrix[3, 0] == 1 and cm.matrix[0, 3] == 1
    tp, fp = cm.tp_fp()
    assert tp.tolist() == [1, 0, 0] and fp.tolist() == [1, 1, 1]
    with pytest.raises(UserError, match="class id 5"):
        cm.process_batch(torch.tensor([[0, 0, 10, 10, 0.9, 5]]), gt, torch.tensor([0, 1, 2]))


# ---------------------------------------------------------------- pycocotools agreement


def _random_case(seed: int = 0, n_img: int = 40, nc: int = 4, duplicates: bool = True, max_gt: int = 8,
                 jitter: float = 6.0):
    """Random images: gts, jittered predictions (some of the wrong class), near-duplicates and random FPs."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n_img):
        m = int(rng.integers(0, max_gt + 1))
        xy = rng.uniform(0, 400, (m, 2))
        gt = np.concatenate((xy, xy + rng.uniform(10, 200, (m, 2))), 1)
        gc = rng.integers(0, nc - 1, m)  # class nc-1 never has gt: only predictions
        keep = rng.random(m) < 0.85
        pred = gt[keep] + rng.normal(0, jitter, (int(keep.sum()), 4))
        pc = np.where(rng.random(len(pred)) < 0.1, rng.integers(0, nc, len(pred)), gc[keep])
        dup = pred[: int(rng.integers(0, 3)) if duplicates else 0]
        dup = dup + rng.normal(0, 4, dup.shape)  # near-duplicates of the first predictions
        k = int(rng.integers(0, 6))
        fxy = rng.uniform(0, 400, (k, 2))
        fp = np.concatenate((fxy, fxy + rng.uniform(10, 200, (k, 2))), 1)
        boxes = np.concatenate((pred, dup, fp))
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        cls = np.concatenate((pc, pc[: len(dup)], rng.integers(0, nc, k)))
        conf = rng.uniform(0.01, 1, len(boxes))
        images.append((gt, gc, boxes, cls, conf))
    return images


def _ours(images):
    """(mAP50-95, mAP50, APs, APm, APl) from match_by_area + DetMetrics, as the validator computes them."""
    stats = {r: [] for r in ("all", "small", "medium", "large")}
    for gt, gc, boxes, cls, conf in images:
        for r, (tp, ig, gt_in) in match_by_area(boxes, conf, cls, gt, gc, IOUV).items():
            stats[r].append((tp, ig, gc[gt_in], conf, cls, gc))
    cat = {r: [np.concatenate(x) for x in zip(*v)] for r, v in stats.items()}
    tp, _, _, conf, cls, gc = cat["all"]
    m = DetMetrics()
    m.process(tp, conf, cls, gc, sizes={r: tuple(cat[r][:3]) for r in ("small", "medium", "large")})
    return m.box.map, m.box.map50, m.box.map_small, m.box.map_medium, m.box.map_large


def _coco(images):
    """mAP50-95 and mAP50 from pycocotools (or faster-coco-eval) COCOeval."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        try:
            from faster_coco_eval import COCO, COCOeval_faster as COCOeval
        except ImportError:
            pytest.skip("neither pycocotools nor faster-coco-eval is installed")
    xywh = lambda b: [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]  # noqa: E731
    gt = {"images": [{"id": i, "width": 640, "height": 640} for i in range(len(images))],
          "categories": [{"id": c} for c in range(4)], "annotations": []}
    dt = []
    for i, (g, gc, boxes, cls, conf) in enumerate(images):
        for b, c in zip(g, gc):
            w, h = b[2] - b[0], b[3] - b[1]
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i, "category_id": int(c),
                                      "bbox": xywh(b), "area": float(w * h), "iscrowd": 0})
        dt += [{"image_id": i, "category_id": int(c), "bbox": xywh(b), "score": float(s)}
               for b, c, s in zip(boxes, cls, conf)]
        assert len(boxes) <= 100  # COCOeval keeps 100 detections per image
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(dt), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return tuple(float(v) for v in (ev.stats[0], ev.stats[1], ev.stats[3], ev.stats[4], ev.stats[5]))


def test_agreement_with_cocoeval_overall_and_per_size():
    images = _random_case()
    coco = _coco(images)
    assert 0.2 < coco[0] < 0.9 and min(coco[2:]) >= 0  # a non-trivial case, with objects of every size
    assert _ours(images) == coco  # COCO's matching, ignore rules and summary mean: the same numbers, to the last bit


def test_agreement_with_cocoeval_crowded():
    images = _random_case(seed=3, duplicates=False, max_gt=40, jitter=12.0)
    assert _ours(images) == _coco(images)


def test_size_ap_is_minus_one_without_objects_of_that_size():
    gt = np.array([[0, 0, 20, 20]], float)
    out = match_by_area(gt, [0.9], [0], gt, [0], IOUV)
    m = DetMetrics()
    m.process(out["all"][0], [0.9], [0], [0], sizes={r: (out[r][0], out[r][1], np.zeros(int(out[r][2].sum())))
                                                     for r in ("small", "medium", "large")})
    assert m.box.map_small == pytest.approx(1.0) and m.box.map_medium == -1.0 and m.box.map_large == -1.0


def test_metric_keys_follow_the_metrics_dict():
    """One entry in METRICS (here through a subclass) is one more key and one more results_dict value."""

    class WithMap75(DetMetrics):
        METRICS = {**DetMetrics.METRICS, "metrics/mAP75(B)": lambda box: box.map75}

    assert WithMap75.keys == DetMetrics.keys + ["metrics/mAP75(B)"]  # on the class, as Ultralytics has it
    m = WithMap75(names={0: "a"})
    m.process(np.array([[True] * 6 + [False] * 4]), np.array([0.9]), np.array([0]), np.array([0]))
    assert list(m.results_dict) == m.keys + ["fitness"]
    assert m.results_dict["metrics/mAP75(B)"] == pytest.approx(m.box.map75) == pytest.approx(1.0)
    assert m.results_dict["metrics/mAP50-95(B)"] == pytest.approx(0.6)
