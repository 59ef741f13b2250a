"""Per-image matching results of a validation pass, concatenated in a fixed image order (COCOeval's).

COCOeval ranks the detections of all images with a stable sort on score over the per-image lists taken in
image-id order, so detections of equal score in different images rank by image id. Scores do tie, often, once
they are quantised (fp16 / AMP validation). Concatenating in the loader's order instead would make mAP depend on
the loader: its rect sorting by aspect ratio, its batch size, any shuffling. `MatchStats` keeps each image's
results under its file name and `arrays()` concatenates them sorted by a key (the validator passes the COCO
image ids; by default the file names), whatever order the images came in.
"""

from __future__ import annotations

import numpy as np

from ultralytics.utils.matching import AREA_RANGES, IOU_THRESHOLDS, _np, match_by_area

__all__ = ("MatchStats",)


class MatchStats:
    """Accumulate `match_by_area` results image by image; read them back in a fixed image order.

    ranges: the area ranges to match in ('all' always first); iouv: (T,) IoU thresholds.
    `arrays()` gives 'tp' (n, T), 'conf' (n,), 'pred_cls' (n,), 'target_cls' (m,) and, for each other range r,
    'tp_r' (n, T), 'ig_r' (n, T), 'target_cls_r' (m_r,): the inputs of DetMetrics.process.
    """

    def __init__(self, ranges: dict = AREA_RANGES, iouv=IOU_THRESHOLDS) -> None:
        self.ranges, self.iouv = ranges, iouv
        self.images: list[str] = []  # image keys (file names) in arrival order
        self._rows: list[dict[str, np.ndarray]] = []

    def __len__(self) -> int:
        """Images added."""
        return len(self.images)

    def add(self, image: str, det_boxes, det_conf, det_cls, gt_boxes, gt_cls) -> None:
        """Match one image: det_boxes (N, 4) xyxy, det_conf (N,), det_cls (N,); gt_boxes (M, 4), gt_cls (M,)."""
        gc = _np(gt_cls).astype(np.float64).reshape(-1)
        row = {"conf": _np(det_conf).astype(np.float64).reshape(-1),
               "pred_cls": _np(det_cls).astype(np.float64).reshape(-1), "target_cls": gc}
        for r, (tp, ig, gt_in) in match_by_area(det_boxes, det_conf, det_cls, gt_boxes, gc, self.iouv,
                                                 self.ranges).items():
            if r == "all":
                row["tp"] = tp
            else:
                row[f"tp_{r}"], row[f"ig_{r}"], row[f"target_cls_{r}"] = tp, ig, gc[gt_in]
        self.images.append(str(image))
        self._rows.append(row)

    def arrays(self, key: dict | None = None) -> dict[str, np.ndarray]:
        """The rows concatenated with the images sorted by key[image] (default: the image name itself); a stable
        sort, so an image added twice keeps its arrival order. Empty arrays of the right shape when nothing was added.
        """
        order = sorted(range(len(self.images)), key=(lambda i: key[self.images[i]]) if key else self.images.__getitem__)
        t = len(_np(self.iouv).reshape(-1))
        names = ["tp", "conf", "pred_cls", "target_cls"] + [f"{k}_{r}" for r in self.ranges if r != "all"
                                                            for k in ("tp", "ig", "target_cls")]
        empty = {n: np.zeros((0, t), bool) if n.startswith(("tp", "ig")) else np.zeros(0) for n in names}
        return {n: np.concatenate([self._rows[i][n] for i in order]) if order else empty[n] for n in names}
