"""The detection confusion matrix (with a background class), matched in COCO order.

Drawing it is plot_curves.save_confusion_matrix (computing never imports plotting).
"""

from __future__ import annotations

import numpy as np
import torch

from ultralytics.utils import LOGGER, UserError
from ultralytics.utils.matching import coco_box_iou, match_by_score


class ConfusionMatrix:
    """Detection confusion matrix (nc + 1, nc + 1): rows = predicted class, columns = true class.

    The last row/column is background: column nc counts predictions matching no ground truth (false
    positives), row nc counts ground truths matched by no prediction (missed). Predictions with
    conf <= `conf` are ignored; predictions in descending score each take the free ground truth of highest
    IoU > `iou_thres` (class-agnostic, one-to-one, the order COCOeval matches in; IoU in float64 as for mAP),
    and the pair is counted at (predicted class, true class).
    """

    def __init__(self, nc: int, conf: float = 0.25, iou_thres: float = 0.45) -> None:
        """nc: number of classes; conf: score threshold; iou_thres: IoU needed to match."""
        self.nc = int(nc)
        self.conf = conf
        self.iou_thres = iou_thres
        self.matrix = np.zeros((self.nc + 1, self.nc + 1), dtype=np.int64)

    def process_batch(self, detections, gt_bboxes, gt_cls) -> None:
        """Add one image: detections (N, 6) x1, y1, x2, y2, conf, cls or None; gt_bboxes (M, 4) xyxy; gt_cls (M,)."""
        gt_cls = np.asarray(gt_cls.cpu() if isinstance(gt_cls, torch.Tensor) else gt_cls).reshape(-1).astype(int)
        if detections is not None and len(detections):
            det = torch.as_tensor(detections).detach().cpu().double().reshape(-1, 6)
            det = det[det[:, 4] > self.conf]
        else:
            det = torch.zeros((0, 6), dtype=torch.float64)
        det_cls = det[:, 5].numpy().astype(int)
        for what, c in (("predicted", det_cls), ("ground-truth", gt_cls)):
            bad = c[(c < 0) | (c >= self.nc)]
            if len(bad):
                raise UserError(f"ConfusionMatrix(nc={self.nc}): {what} class id {int(bad[0])} is outside "
                                f"0..{self.nc - 1}; does the model's nc match the dataset's names?")
        if len(gt_cls) == 0:
            np.add.at(self.matrix, (det_cls, self.nc), 1)
            return
        if len(det) == 0:
            np.add.at(self.matrix, (self.nc, gt_cls), 1)
            return
        gt = torch.as_tensor(gt_bboxes).detach().cpu().double().reshape(-1, 4)
        iou = coco_box_iou(gt, det[:, :4])  # (M, N) float64, as the mAP matching computes it
        match = match_by_score(iou, (iou > self.iou_thres)[..., None], det[:, 4].numpy())[:, 0]  # (N,) gt or -1
        dj = np.nonzero(match >= 0)[0]
        gi = match[dj]
        np.add.at(self.matrix, (det_cls[dj], gt_cls[gi]), 1)
        missed = np.ones(len(gt_cls), dtype=bool)
        missed[gi] = False
        np.add.at(self.matrix, (self.nc, gt_cls[missed]), 1)
        extra = np.ones(len(det_cls), dtype=bool)
        extra[dj] = False
        np.add.at(self.matrix, (det_cls[extra], self.nc), 1)

    def tp_fp(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-class true positives (diagonal) and false positives (row sum - diagonal), background excluded."""
        tp = np.diag(self.matrix)
        fp = self.matrix.sum(1) - tp
        return tp[:-1], fp[:-1]

    def print(self) -> None:
        """Log the matrix, one row (predicted class) per line."""
        for row in self.matrix:
            LOGGER.info(" ".join(str(int(v)) for v in row))
