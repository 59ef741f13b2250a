"""Scoring at the edges, each case compared with pycocotools' COCOeval on the same detections.

- IoU exactly on a threshold: integer boxes whose IoU is exactly 0.50, 0.55, ..., 0.95 (as a fraction) are
  decided as COCOeval decides them (float64 IoU without eps, thresholds np.linspace(.5, .95, 10)). Float32 IoU
  and thresholds, as this tree used before, decided 19 of these 102 cases differently.
- Equal scores in different images (fp16-quantised scores) rank by image id, as COCOeval's stable sort over its
  per-image lists does, whatever order the images are added in.
- The validator gives the same metrics, to the last bit, whatever the loader's order, batch size or rect.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from test_val import Oracle

from ultralytics.cfg import get_cfg
from ultralytics.data import build_dataloader, build_yolo_dataset, check_det_dataset
from ultralytics.engine.coco_eval import coco_image_ids
from ultralytics.models.yolo.detect import DetectionValidator
from ultralytics.utils.match_stats import MatchStats
from ultralytics.utils.matching import IOU_THRESHOLDS, coco_box_iou, match_by_area
from ultralytics.utils.metrics import DetMetrics
from ultralytics.utils.ops import box_iou

pytest.importorskip("pycocotools")


def cocoeval(images: list[tuple], nc: int):
    """COCOeval (bbox, evaluated and accumulated) of images [(image_id, gt xyxy (m, 4), gt cls (m,), det xyxy
    (n, 4), det cls (n,), det scores (n,))], boxes handed over as x, y, x2 - x, y2 - y in float64."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(b):
        return [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]

    gt = {"images": [{"id": im[0]} for im in images], "categories": [{"id": c} for c in range(nc)], "annotations": []}
    dt = []
    for iid, gb, gc, db, dc, ds in images:
        for b, c in zip(gb, gc):
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": iid, "category_id": int(c),
                                      "bbox": xywh(b), "area": xywh(b)[2] * xywh(b)[3], "iscrowd": 0})
        dt += [{"image_id": iid, "category_id": int(c), "bbox": xywh(b), "score": float(s)}
               for b, c, s in zip(db, dc, ds)]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(dt), "bbox")
        ev.params.maxDets = [1, 10, 100]
        ev.evaluate()
        ev.accumulate()
    return ev


def coco_figures(ev) -> dict:
    """mAP50-95, mAP50, mAP75, APs/m/l and per-class AP50-95 from COCOeval's precision, as its summary means."""
    prec = ev.eval["precision"][..., -1]  # (T, R, K, A) at the largest maxDets

    def mean(s):
        s = s[s > -1]
        return float(np.mean(s)) if s.size else -1.0

    k = [c for c in range(prec.shape[2]) if (prec[:, :, c, 0] > -1).any()]
    return {"map": mean(prec[:, :, :, 0]), "map50": mean(prec[0, :, :, 0]), "map75": mean(prec[5, :, :, 0]),
            "small": mean(prec[..., 1]), "medium": mean(prec[..., 2]), "large": mean(prec[..., 3]),
            "per_class": [mean(prec[:, :, c, 0]) for c in k]}


def our_figures(stats: MatchStats, key=None) -> dict:
    """The same figures from MatchStats (rows in `key` order, COCO image-id order by default) and DetMetrics."""
    a = stats.arrays(coco_image_ids(stats.images) if key is None else key)
    m = DetMetrics()
    m.process(a["tp"], a["conf"], a["pred_cls"], a["target_cls"],
              sizes={r: (a[f"tp_{r}"], a[f"ig_{r}"], a[f"target_cls_{r}"]) for r in ("small", "medium", "large")})
    b = m.box
    return {"map": b.map, "map50": b.map50, "map75": b.map75, "small": b.map_small, "medium": b.map_medium,
            "large": b.map_large, "per_class": b.ap.tolist()}


# ---------------------------------------------------------------- IoU exactly on a threshold


def threshold_cases(seed: int = 0) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """[(k, gt, det)]: integer xyxy boxes whose IoU is exactly k / 20 (k = 10..19), scaled and shifted.

    Per k: up to 12 pairs from a search over small boxes (any overlap: corner, side, inside), and three of a
    family that exists for every k (a box inside the other, the other inside it, two shifted equal boxes),
    each scaled by 1..3999 (IoU unchanged; large areas are where float32 rounds) and shifted by 0..19999.
    """
    r = np.arange(1, 11)
    a, b, c, d, x, y = (v.ravel() for v in np.meshgrid(r, r, r, r, np.arange(-5, 10), np.arange(-5, 10),
                                                        indexing="ij"))
    iw = np.clip(np.minimum(a, x + c) - np.maximum(0, x), 0, None)
    ih = np.clip(np.minimum(b, y + d) - np.maximum(0, y), 0, None)
    inter = iw * ih
    union = a * b + c * d - inter
    rng = np.random.default_rng(seed)
    pairs = []
    for k in range(10, 20):
        hit = np.nonzero(20 * inter == k * union)[0]
        for j in rng.choice(hit, min(12, len(hit)), replace=False):
            pairs.append((k, np.array([0, 0, a[j], b[j]]), np.array([x[j], y[j], x[j] + c[j], y[j] + d[j]])))
        pairs.append((k, np.array([0, 0, 7, 20]), np.array([0, (20 - k) // 2, 7, (20 - k) // 2 + k])))
        pairs.append((k, np.array([0, 20 - k, 7, 20]), np.array([0, 0, 7, 20])))
        pairs.append((k, np.array([0, 0, 20 + k, 9]), np.array([20 - k, 0, 40, 9])))
    cases = []
    for k, g, dt in pairs:
        s = int(rng.integers(1, 4000)) if rng.random() < 0.8 else 1
        off = np.tile(rng.integers(0, 20000, 2), 2)
        cases.append((k, (g * s + off).astype(np.float64), (dt * s + off).astype(np.float64)))
    return cases


def test_iou_exactly_on_each_threshold_is_decided_as_cocoeval():
    cases = threshold_cases()
    ks = np.array([k for k, _, _ in cases])
    assert len(cases) == 102 and np.bincount(ks)[10:].tolist() == [15, 3, 15, 3, 15, 15, 15, 3, 15, 3]
    iou = np.array([coco_box_iou(g[None], d[None])[0, 0] for _, g, d in cases])
    assert (iou == ks / 20).all()  # exact: integer areas in float64, one rounding in the division
    ev = cocoeval([(i, g[None], [0], d[None], [0], [0.9]) for i, (_, g, d) in enumerate(cases)], nc=1)
    coco = np.stack([ev.evalImgs[i]["dtMatches"][:, 0] > 0 for i in range(len(cases))])  # (n, T), area 'all'
    ours = np.stack([match_by_area(d[None], [0.9], [0], g[None], [0], IOU_THRESHOLDS)["all"][0][0]
                     for _, g, d in cases])
    assert (ours == coco).all()
    assert coco[np.arange(len(cases)), ks - 10].all()  # COCOeval: IoU == threshold is a match (>=), at each k
    assert (coco.sum(1) == ks - 9).all()  # ... and no match above it
    # the cases do probe the edge: float32 IoU (with its eps) and float32 thresholds decide some differently
    iou32 = np.array([float(box_iou(torch.from_numpy(g[None]), torch.from_numpy(d[None]))) for _, g, d in cases])
    f32 = iou32[:, None] >= torch.linspace(0.5, 0.95, 10).double().numpy()[None]
    assert 10 < (f32 != coco).any(1).sum() < 40


def test_zero_area_boxes_match_nothing_as_in_cocoeval():
    gt = np.array([[5.0, 5.0, 5.0, 15.0], [20.0, 20.0, 30.0, 30.0]])  # a zero-width ground truth
    det = np.array([[5.0, 5.0, 5.0, 15.0], [20.0, 25.0, 30.0, 25.0], [20.0, 20.0, 30.0, 30.0]])
    iou = coco_box_iou(gt, det)
    assert iou.tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]  # 0, not NaN, for the degenerate pairs
    ev = cocoeval([(1, gt, [0, 0], det, [0, 0, 0], [0.9, 0.8, 0.7])], nc=1)
    coco = ev.evalImgs[0]["dtMatches"].T > 0  # (n, T), detections in score order (as given)
    ours = match_by_area(det, [0.9, 0.8, 0.7], [0, 0, 0], gt, [0, 0], IOU_THRESHOLDS)["all"][0]
    assert (ours == coco).all() and ours.sum(0).tolist() == [1] * 10


# ---------------------------------------------------------------- equal scores in different images


def tie_case(seed: int = 0, n_img: int = 40, nc: int = 3) -> list[tuple]:
    """Images [(file, image_id, gt, gt_cls, det, det_cls, det_conf)] with scores on fp16 steps in [0.9, 0.93): many
    detections of equal score in different images, true and false positives, of every size."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_img):
        m = int(rng.integers(1, 5))
        xy = rng.integers(0, 300, (m, 2))
        gt = np.concatenate((xy, xy + rng.integers(8, 160, (m, 2))), 1).astype(np.float64)
        gc = rng.integers(0, nc, m)
        det = gt + rng.integers(-6, 7, gt.shape)  # most are true positives at some thresholds
        det[:, 2:] = np.maximum(det[:, 2:], det[:, :2] + 2)
        k = int(rng.integers(0, 3))
        fxy = rng.integers(0, 300, (k, 2))
        det = np.concatenate((det, np.concatenate((fxy, fxy + rng.integers(8, 100, (k, 2))), 1)))
        dc = np.concatenate((gc, rng.integers(0, nc, k)))
        conf = rng.uniform(0.9, 0.93, len(det)).astype(np.float16).astype(np.float64)
        out.append((f"/val/images/{i}.jpg", i, gt, gc, det, dc, conf))
    return out


def test_score_ties_across_images_rank_by_image_id_as_cocoeval():
    images = tie_case()
    confs = np.concatenate([im[6] for im in images])
    assert len(confs) - len(np.unique(confs)) > 60  # many ties (81 of 140)
    coco = coco_figures(cocoeval([im[1:] for im in images], nc=3))
    assert min(coco["small"], coco["medium"], coco["large"]) > 0 and 0.2 < coco["map"] < 0.9
    for order in (range(len(images)), np.random.default_rng(1).permutation(len(images)), reversed(range(len(images)))):
        stats = MatchStats()
        for i in order:
            f, _, gt, gc, det, dc, conf = images[i]
            stats.add(f, det, conf, dc, gt, gc)
        assert our_figures(stats) == coco  # every figure equal, to the last bit, whatever order they came in
    # the case is sensitive to the order: taking the images by file name ('10' before '2') or in reverse differs
    assert our_figures(stats, key={im[0]: im[0] for im in images}) != coco
    assert our_figures(stats, key={im[0]: -im[1] for im in images}) != coco


# ---------------------------------------------------------------- the validator and its loader

# grey level -> (h, w), labels [(cls, cx, cy, w, h)], predictions [(cls, conf[, shift])]: the j-th prediction is
# the j-th label, shifted by `shift` of its width (IoU (1 - shift) / (1 + shift): 0.925, ..., 0.525, between
# thresholds), or a false positive where shift is None; scores take a few values, equal across images
_D = {iou: (1 - iou) / (1 + iou) for iou in (0.925, 0.825, 0.725, 0.625, 0.525)}
SCENE = {
    30: ((90, 120), [(0, .3, .4, .2, .3), (1, .7, .6, .2, .4)], [(0, .5), (1, .75, _D[.825])]),
    50: ((120, 90), [(0, .5, .5, .4, .3)], [(0, .5, _D[.525])]),
    70: ((100, 100), [(1, .4, .3, .3, .2), (0, .6, .7, .3, .3)], [(1, .75, _D[.725]), (0, .5)]),
    90: ((60, 150), [(0, .5, .5, .1, .2)], [(0, .625, _D[.925]), (1, .75, None)]),
    130: ((150, 60), [(1, .5, .5, .5, .5)], [(1, .5, _D[.625]), (0, .5, None)]),
    150: ((80, 80), [(0, .3, .3, .2, .2), (0, .7, .7, .2, .2)], [(0, .75), (0, .625, _D[.825])]),
    170: ((110, 70), [(1, .5, .4, .6, .3)], [(1, .625), (1, .5, None)]),
    190: ((70, 110), [(0, .4, .5, .3, .5)], [(0, .75, _D[.625]), (0, .5, None)]),
    210: ((200, 160), [(0, .5, .5, .8, .7)], [(0, .625, _D[.725])]),
}


def scene_table() -> dict:
    """The oracle's table: {grey: [(cls, cx, cy, w, h, conf, dx)]}; a None shift is a false positive at the corner."""
    table = {}
    for grey, (_, labels, preds) in SCENE.items():
        rows = []
        for j, (c, conf, *dx) in enumerate(preds):
            if dx and dx[0] is None:
                rows.append((c, 0.12, 0.12, 0.2, 0.2, conf, 0.0))
            else:
                _, cx, cy, w, h = labels[j]
                rows.append((c, cx, cy, w, h, conf, (dx[0] if dx else 0.0) * w))
        table[grey] = rows
    return table


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scene")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    for grey, ((h, w), labels, _) in SCENE.items():
        cv2.imwrite(str(root / "images" / f"g{grey}.png"), np.full((h, w, 3), grey, np.uint8))
        (root / "labels" / f"g{grey}.txt").write_text("".join(" ".join(map(str, lb)) + "\n" for lb in labels))
    yaml = root / "data.yaml"
    yaml.write_text(f"path: {root}\ntrain: images\nval: images\nnames:\n  0: a\n  1: b\n")
    return yaml


def validate(model, scene: Path, tmp_path: Path, batch: int, shuffle_seed: int | None = None):
    """Metrics of one validator run: its own loader (rect, sorted by aspect ratio), or a shuffled square one."""
    args = dict(data=str(scene), imgsz=64, batch=batch, workers=0, plots=False, verbose=False, save_json=True,
                project=str(tmp_path), name=f"b{batch}s{shuffle_seed}")
    loader = None
    if shuffle_seed is not None:
        data = check_det_dataset(str(scene))
        ds = build_yolo_dataset(get_cfg(overrides={"mode": "val", **args}), data["val"], batch, data, mode="val")
        loader = build_dataloader(ds, batch, 0, shuffle=True, seed=shuffle_seed)
        order = [f for b in loader for f in b["im_file"]]
        assert sorted(order) != order  # really another order
    v = DetectionValidator(dataloader=loader, overrides=args)
    m = v(model=model)
    b = m.box
    figures = (b.mp, b.mr, b.map, b.map50, b.map75, b.map_small, b.map_medium, b.map_large, b.maps.tolist(),
               b.all_ap.tolist(), b.p.tolist(), b.r.tolist(), v.confusion.matrix.tolist())
    return figures, v, (v.save_dir / "predictions.json").read_text()


def test_validator_metrics_do_not_depend_on_loader_order_batch_or_rect(scene, tmp_path):
    model = Oracle()
    model.table = scene_table()
    ref, v, ref_json = validate(model, scene, tmp_path, batch=4)
    assert 0.3 < ref[2] < 0.9 and min(ref[5:8]) > 0  # a non-trivial case with objects of every size
    for batch, seed in ((1, None), (3, 1), (5, 2)):
        figures, _, preds_json = validate(model, scene, tmp_path, batch, seed)
        assert figures == ref, (batch, seed)  # equal to the last bit, the confusion matrix too
        assert preds_json == ref_json  # predictions.json too
    # the case is sensitive to the order: images taken in the reverse of COCO's order score differently
    ids = coco_image_ids(v.stats.images)
    backwards = {f: -i for i, f in enumerate(sorted(ids, key=ids.get))}
    assert our_figures(v.stats, key=backwards)["map"] != our_figures(v.stats)["map"]
