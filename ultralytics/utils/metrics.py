"""Detection metrics: COCO AP (overall and per area range) and the P/R/mAP containers. Nothing here draws.

Conventions (COCO, pycocotools ``COCOeval``):
- AP is the mean over 101 recall thresholds 0, 0.01, ..., 1 of the precision envelope sampled as a
  step function (the highest precision reached at any recall >= the threshold), per IoU threshold
  0.50:0.05:0.95. mAP50-95 is the mean over the 10 thresholds and the evaluated classes, taken as COCOeval
  takes it (one mean over all the sampled precisions, in its (threshold, recall, class) order), so that it
  equals COCOeval's to the last bit and not only to rounding (`coco_mean`).
- The evaluated classes are the classes that have ground truth. Predictions of a class with no ground
  truth are ignored (COCO ignores categories without ground truth); with no ground truth at all no
  class is evaluated and every mean is 0.
- Matching is COCOeval's (ultralytics.utils.matching): detections in descending score, per IoU threshold.
- Size AP (small < 32^2, medium 32^2-96^2, large > 96^2 px^2 of box area in the original image) follows
  COCOeval's ignore rules; a range with no ground truth has AP -1, as COCOeval reports it.
- P and R are reported at the one confidence threshold that maximises the class-mean F1 (mean F1 on a
  1000-point confidence grid, lightly box-smoothed before the argmax, as Ultralytics does).
"""

from __future__ import annotations

import numpy as np

from ultralytics.utils.confusion_matrix import ConfusionMatrix
from ultralytics.utils.matching import _np, match_predictions

__all__ = ("match_predictions", "compute_ap", "ap_per_class", "coco_mean", "smooth", "Metric", "DetMetrics",
           "ConfusionMatrix", "SIZE_RANGES")

SIZE_RANGES = ("small", "medium", "large")

RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)  # COCO 101-point recall grid


def compute_ap(recall, precision) -> tuple[float, np.ndarray, np.ndarray]:
    """COCO 101-point AP of one precision/recall curve.

    recall, precision: (n,) values after each ranked prediction (recall non-decreasing).
    Sentinels (recall 0 and 1, precision 0) are appended, precision is made monotone from the right (the
    envelope), and the envelope is read as a step function at recall 0, 0.01, ..., 1 (the first point whose
    recall reaches the threshold) and averaged, exactly as pycocotools does. Linear interpolation between
    points (np.interp + trapz) would overstate AP: one of two objects found at precision 1 gives 51/101 here
    (COCO's value), but 0.75 with linear interpolation to the (1, 0) sentinel.
    Returns (ap, mpre, mrec): mpre, mrec (n + 2,) are the envelope and recall with sentinels.
    """
    q, mpre, mrec = _precision_at_recalls(recall, precision)
    return float(q.mean()), mpre, mrec


def _precision_at_recalls(recall, precision) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """compute_ap's sampled envelope q (101,) (COCOeval's precision at each recall threshold), mpre, mrec."""
    mrec = np.concatenate(([0.0], np.asarray(recall, dtype=np.float64), [1.0]))
    mpre = np.concatenate(([0.0], np.asarray(precision, dtype=np.float64), [0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    return mpre[np.searchsorted(mrec, RECALL_THRESHOLDS, side="left")], mpre, mrec


def coco_mean(q) -> float:
    """Mean of sampled precisions q (c, T, 101) as COCOeval's summary takes it: one mean over the values laid
    out in its (threshold, recall, class) order (the float sum depends on the order); 0 when q is empty."""
    q = np.asarray(q, dtype=np.float64)
    return float(np.ascontiguousarray(np.moveaxis(q, 0, -1)).reshape(-1).mean()) if q.size else 0.0


def smooth(y: np.ndarray, f: float = 0.05) -> np.ndarray:
    """Box filter of width ~2*f*len(y) (odd), edges padded with the end values: y (n,) -> (n,)."""
    y = np.asarray(y, dtype=np.float64)
    nf = round(len(y) * f * 2) // 2 + 1
    nf += 1 - nf % 2  # odd, so that the padded convolution returns exactly len(y) values
    if nf < 2 or len(y) < 3:
        return y.copy()
    p = np.concatenate((np.full(nf // 2, y[0]), y, np.full(nf // 2, y[-1])))
    return np.convolve(p, np.ones(nf) / nf, mode="valid")


def _at_thresholds(conf_sorted: np.ndarray, values: np.ndarray, x: np.ndarray, empty: float) -> np.ndarray:
    """Value of a per-rank curve when keeping predictions with conf >= x: conf (n,) descending, values (n,)."""
    k = np.searchsorted(-conf_sorted, -x, side="right")  # number of predictions kept at each threshold
    return np.where(k > 0, values[np.maximum(k - 1, 0)], empty)


def ap_per_class(tp, conf, pred_cls, target_cls, ignore=None, eps: float = 1e-16) -> tuple:
    """AP per class and IoU threshold, and P, R, F1 at the confidence of maximum mean F1.

    tp: (n, T) bool true-positive flags per prediction and IoU threshold; conf: (n,) scores;
    pred_cls: (n,) predicted classes; target_cls: (m,) classes of the (non-ignored) ground-truth boxes;
    ignore: optional (n, T) bool, predictions that count neither as TP nor FP at that threshold (COCO's
    ignored detections of an area range).
    Evaluated classes (c of them) are those with ground truth; a class with no prediction has AP 0.
    Curves are sampled on a 1000-point grid x in [0, 1]: p/r/f1 curves against confidence threshold
    (precision with no prediction kept counts as 0), prec_values against recall (IoU 0.5 envelope).
    Returns (tp (c,), fp (c,), p (c,), r (c,), f1 (c,), ap (c, T), unique_classes (c,) int,
             p_curve (c, 1000), r_curve (c, 1000), f1_curve (c, 1000), x (1000,), prec_values (c, 1000),
             q (c, T, 101)), tp/fp being the counts at the chosen confidence (IoU 0.5) and q the precision at
    each recall threshold (COCOeval's `precision` array; ap = q.mean(-1)).
    """
    tp, conf = _np(tp).astype(bool), _np(conf).astype(np.float64).reshape(-1)
    tp = tp[:, None] if tp.ndim == 1 else tp  # (n, T)
    ignore = np.zeros_like(tp) if ignore is None else _np(ignore).astype(bool).reshape(tp.shape)
    pred_cls, target_cls = _np(pred_cls).reshape(-1), _np(target_cls).reshape(-1)
    order = np.argsort(-conf, kind="stable")
    tp, ignore, conf, pred_cls = tp[order], ignore[order], conf[order], pred_cls[order]

    unique_classes, nt = np.unique(target_cls, return_counts=True)
    nc, n_iou = unique_classes.shape[0], tp.shape[1]
    x = np.linspace(0, 1, 1000)
    q = np.zeros((nc, n_iou, len(RECALL_THRESHOLDS)))
    p_curve, r_curve, prec_values = np.zeros((nc, 1000)), np.zeros((nc, 1000)), np.zeros((nc, 1000))
    tp_curve, fp_curve = np.zeros((nc, 1000)), np.zeros((nc, 1000))  # counts kept at each threshold (IoU 0.5)
    for ci, c in enumerate(unique_classes):
        i = pred_cls == c
        if not i.any():
            continue
        tpc = (tp[i] & ~ignore[i]).cumsum(0)  # (n_c, T) cumulative true positives
        fpc = (~tp[i] & ~ignore[i]).cumsum(0)  # an ignored prediction repeats the previous point, as in COCOeval
        recall = tpc / nt[ci]
        precision = tpc / (tpc + fpc + np.spacing(1))  # 0 before the first counted prediction, as COCOeval
        r_curve[ci] = _at_thresholds(conf[i], recall[:, 0], x, 0.0)
        p_curve[ci] = _at_thresholds(conf[i], precision[:, 0], x, 0.0)
        tp_curve[ci] = _at_thresholds(conf[i], tpc[:, 0], x, 0.0)
        fp_curve[ci] = _at_thresholds(conf[i], fpc[:, 0], x, 0.0)
        for j in range(n_iou):
            q[ci, j], mpre, mrec = _precision_at_recalls(recall[:, j], precision[:, j])
            if j == 0:  # precision envelope against recall, for the PR plot
                prec_values[ci] = mpre[np.minimum(np.searchsorted(mrec, x, side="left"), len(mrec) - 1)]

    f1_curve = 2 * p_curve * r_curve / (p_curve + r_curve + eps)
    i = int(smooth(f1_curve.mean(0), 0.1).argmax()) if nc else 0
    p, r, f1 = p_curve[:, i], r_curve[:, i], f1_curve[:, i]
    return (tp_curve[:, i], fp_curve[:, i], p, r, f1, q.mean(-1), unique_classes.astype(int), p_curve, r_curve,
            f1_curve, x, prec_values, q)


class Metric:
    """Box metrics of one evaluation: per-class P, R, F1, AP (c, 10) and their means (the `.box` object)."""

    def __init__(self) -> None:
        """Start empty: no evaluated class, every mean 0."""
        self.p, self.r, self.f1 = np.zeros(0), np.zeros(0), np.zeros(0)
        self.all_ap = np.zeros((0, 10))  # (c, 10) AP per evaluated class and IoU threshold
        self.all_q = np.zeros((0, 10, 101))  # (c, 10, 101) precision at each recall threshold (COCOeval's)
        self.ap_class_index = np.zeros(0, dtype=int)  # (c,) class id of each evaluated class
        self.nc = 0  # number of classes of the dataset (length of `maps`)
        self.p_curve = self.r_curve = self.f1_curve = self.prec_values = np.zeros((0, 1000))
        self.px = np.linspace(0, 1, 1000)
        self.size_ap = {r: -1.0 for r in SIZE_RANGES}  # mAP50-95 per COCO area range; -1 = not evaluated
        self.size_nt = {r: 0 for r in SIZE_RANGES}  # ground-truth boxes in each range

    @property
    def map_small(self) -> float:
        """COCO APs: mAP50-95 over ground truths of area < 32^2 px^2 (original image); -1 when there are none
        (or when sizes were not evaluated, as during training), as COCOeval reports a range with no objects."""
        return self.size_ap["small"]

    @property
    def map_medium(self) -> float:
        """COCO APm: mAP50-95 over ground truths of area 32^2..96^2 px^2; -1 when there are none."""
        return self.size_ap["medium"]

    @property
    def map_large(self) -> float:
        """COCO APl: mAP50-95 over ground truths of area > 96^2 px^2; -1 when there are none."""
        return self.size_ap["large"]

    @property
    def ap50(self) -> np.ndarray:
        """AP at IoU 0.5 per evaluated class: (c,)."""
        return self.all_ap[:, 0] if len(self.all_ap) else np.zeros(0)

    @property
    def ap(self) -> np.ndarray:
        """AP averaged over IoU 0.50:0.95 per evaluated class: (c,)."""
        return np.array([coco_mean(q[None]) for q in self.all_q])

    @property
    def mp(self) -> float:
        """Mean precision over evaluated classes (0 if none)."""
        return float(self.p.mean()) if len(self.p) else 0.0

    @property
    def mr(self) -> float:
        """Mean recall over evaluated classes (0 if none)."""
        return float(self.r.mean()) if len(self.r) else 0.0

    @property
    def map50(self) -> float:
        """mAP at IoU 0.5."""
        return coco_mean(self.all_q[:, :1])

    @property
    def map75(self) -> float:
        """mAP at IoU 0.75."""
        return coco_mean(self.all_q[:, 5:6])

    @property
    def map(self) -> float:
        """mAP averaged over IoU 0.50:0.95."""
        return coco_mean(self.all_q)

    def mean_results(self) -> list[float]:
        """[mP, mR, mAP50, mAP50-95]."""
        return [self.mp, self.mr, self.map50, self.map]

    def class_result(self, i: int) -> tuple[float, float, float, float]:
        """(P, R, AP50, AP50-95) of the i-th evaluated class (index into ap_class_index)."""
        return float(self.p[i]), float(self.r[i]), float(self.ap50[i]), float(self.ap[i])

    @property
    def maps(self) -> np.ndarray:
        """mAP50-95 per class id: (nc,), classes without ground truth filled with the overall mAP."""
        nc = max(self.nc, int(self.ap_class_index.max()) + 1 if len(self.ap_class_index) else 0)
        maps = np.zeros(nc) + self.map
        maps[self.ap_class_index] = self.ap
        return maps

    def fitness(self) -> float:
        """Model fitness for best.pt selection: 0.1 * mAP50 + 0.9 * mAP50-95."""
        return 0.1 * self.map50 + 0.9 * self.map

    def update(self, results: tuple) -> None:
        """Store ap_per_class(...)[2:]: (p, r, f1, all_ap, ap_class_index, p/r/f1 curves, px, prec_values, q)."""
        (self.p, self.r, self.f1, self.all_ap, self.ap_class_index, self.p_curve, self.r_curve, self.f1_curve,
         self.px, self.prec_values, self.all_q) = results

    @property
    def curves_results(self) -> list[list]:
        """[x, y, xlabel, ylabel] for the PR, F1, P and R curves (y: (c, 1000))."""
        return [[self.px, self.prec_values, "Recall", "Precision"], [self.px, self.f1_curve, "Confidence", "F1"],
                [self.px, self.p_curve, "Confidence", "Precision"], [self.px, self.r_curve, "Confidence", "Recall"]]


class _MetricKeys:
    """`DetMetrics.keys` (on the class or an instance): the keys of its METRICS, in their order."""

    def __get__(self, obj, cls) -> list[str]:
        return list(cls.METRICS)


class DetMetrics:
    """Detection metrics of a validation run: `.box` (Metric), results dict, fitness, speed, curves."""

    # THE list of detection metrics: key -> its value read from `.box` (a Metric). results.csv, the printed tables,
    # TensorBoard, best_metrics.json and the compare table take their columns from these keys, in this order, so
    # adding a metric is one entry here (or in a subclass: `METRICS = {**DetMetrics.METRICS, "metrics/x(B)": fn}`).
    METRICS = {
        "metrics/precision(B)": lambda box: box.mp,
        "metrics/recall(B)": lambda box: box.mr,
        "metrics/mAP50(B)": lambda box: box.map50,
        "metrics/mAP50-95(B)": lambda box: box.map,
    }
    keys = _MetricKeys()  # the metric columns: list(METRICS)
    curves = ["Precision-Recall(B)", "F1-Confidence(B)", "Precision-Confidence(B)", "Recall-Confidence(B)"]

    def __init__(self, names: dict | None = None) -> None:
        """names: {class id: name}. Curves are drawn by ultralytics.utils.plot_curves.plot_metric_curves."""
        names = names or {}
        self.names = names if isinstance(names, dict) else dict(enumerate(names))
        self.box = Metric()
        self.speed = {"preprocess": 0.0, "inference": 0.0, "loss": 0.0, "postprocess": 0.0}  # ms per image

    def process(self, tp, conf, pred_cls, target_cls, sizes: dict | None = None) -> dict[str, float]:
        """Evaluate: tp (n, 10) bool, conf (n,), pred_cls (n,), target_cls (m,); returns results_dict.

        sizes: optional {range: (tp (n, 10), ignored (n, 10), target_cls of the range's ground truths)} for
        'small', 'medium', 'large' (from ultralytics.utils.matching.match_by_area), giving `.box.map_small` etc.
        """
        self.box.nc = len(self.names)
        self.box.update(ap_per_class(tp, conf, pred_cls, target_cls)[2:])
        for r, (tp_r, ig_r, tc_r) in (sizes or {}).items():
            tc_r = _np(tc_r).reshape(-1)
            self.box.size_nt[r] = len(tc_r)
            self.box.size_ap[r] = coco_mean(ap_per_class(tp_r, conf, pred_cls, tc_r, ignore=ig_r)[12]) if len(tc_r) \
                else -1.0
        return self.results_dict

    @property
    def ap_class_index(self) -> np.ndarray:
        """Class ids of the evaluated classes: (c,)."""
        return self.box.ap_class_index

    @property
    def maps(self) -> np.ndarray:
        """mAP50-95 per class id: (nc,)."""
        return self.box.maps

    @property
    def fitness(self) -> float:
        """0.1 * mAP50 + 0.9 * mAP50-95."""
        return self.box.fitness()

    def mean_results(self) -> list[float]:
        """[mP, mR, mAP50, mAP50-95], the validator's printed 'all' row (beside its per-class rows, which have
        these four only); every other output reads `results_dict`, whose keys follow METRICS."""
        return self.box.mean_results()

    def class_result(self, i: int) -> tuple[float, float, float, float]:
        """(P, R, AP50, AP50-95) of the i-th evaluated class."""
        return self.box.class_result(i)

    @property
    def results_dict(self) -> dict[str, float]:
        """{key: value} of every metric in METRICS, plus 'fitness', as floats (the one dict the outputs read)."""
        return {**{k: float(fn(self.box)) for k, fn in self.METRICS.items()}, "fitness": float(self.fitness)}

    @property
    def curves_results(self) -> list[list]:
        """[x, y, xlabel, ylabel] for each name in `curves`."""
        return self.box.curves_results
