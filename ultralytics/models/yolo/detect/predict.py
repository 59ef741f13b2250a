"""DetectionPredictor: images in, Results out; YOLOv10's one-to-one head needs no NMS."""

from __future__ import annotations

import numpy as np
import torch

from ultralytics.engine.predictor import BasePredictor
from ultralytics.engine.results import Results
from ultralytics.utils.ops import scale_boxes


class DetectionPredictor(BasePredictor):
    """`DetectionPredictor(overrides)(source, model)` -> list[Results], one per readable image, in source order;
    `(source, model, stream=True)` -> a generator of them (videos: memory stays flat).

    source: an image path, a folder, a glob, a .txt list, a list of those, a BGR ndarray (H, W, 3), a list
    of arrays, a video file (mp4, avi, mkv, mov, ...: every vid_stride-th frame, Results.frame its index) or a
    webcam index (0). With save=True a video's annotated frames go to <save dir>/<stem>.mp4 at its fps.
    Images are letterboxed to `imgsz` (no upscaling beyond it, padding to a stride multiple), run `batch` at
    a time, and each image's boxes are mapped back to its original pixels.

    No NMS: YOLOv10's one-to-one head assigns one prediction per object in training, so its top-k output is
    already free of duplicates (the `iou` setting is not used). Detections with score >= `conf` (default
    0.25) are kept, at most `max_det`, optionally only `classes`.

    Files: with save=True annotated images go to project/name (runs/detect/predict, then predict2, ...);
    with save_txt=True YOLO label lines go to <save dir>/labels/<stem>.txt. In Python, save defaults to
    False unless passed (as upstream, so `model.predict(img)` writes nothing); predict.py passes save=True.
    A source path that does not exist is a UserError naming it; unreadable images inside a folder/list
    are skipped with a warning and the rest are predicted.
    """

    slicer = None  # a SlicedDetector when args.slice is set (sliced.py): windows in batches, merged boxes

    def setup_model(self, model):
        """The prepared model, and with `slice=` the sliced detector over it."""
        model = super().setup_model(model)
        if self.args.slice:  # sliced prediction: windows in batches, merged in full-image pixels (sliced.py)
            from ultralytics.models.yolo.detect.sliced import SlicedDetector

            self.slicer = SlicedDetector(model, self.args, self.device, self.half,
                                         0.25 if self.args.conf is None else self.args.conf)
        return model

    def predict_batch(self, ims: list[np.ndarray], names: list[str], files: list) -> tuple[list, np.ndarray, tuple]:
        """Unsliced: the base class's batch. Sliced: each image's windows through the model, merged (the shape
        logged is that of the last batch of windows)."""
        if self.slicer is None:
            return super().predict_batch(ims, names, files)
        out, t = [], np.zeros(3)
        for im, name, file in zip(ims, names, files or [None] * len(ims)):
            out.append(Results(im, str(name), self.model.names, self.slicer(im, file)))
            t += self.slicer.times
        return out, t * 1e3 / len(ims), tuple(self.slicer.shape)

    def postprocess(self, preds: torch.Tensor, x: torch.Tensor, ims: list[np.ndarray], names: list[str],
                    ratio_pads: list, class_names: dict) -> list[Results]:
        """Head output -> one Results per image, boxes in original pixels (on the CPU).

        nms=False: preds (B, K, 6) one-to-one top-k (no NMS); nms=True: preds (B, A, 4 + nc) one-to-many maps,
        through class-aware NMS at `iou` keeping each box's best class (as Ultralytics predicts).
        """
        conf = 0.25 if self.args.conf is None else self.args.conf
        if self.args.nms:
            from ultralytics.utils.nms import non_max_suppression

            preds = non_max_suppression(preds, conf, self.args.iou, self.args.max_det, multi_label=False)
        classes = self.args.classes
        if classes is not None:
            classes = torch.tensor([classes] if isinstance(classes, int) else list(classes), device=x.device)
        out = []
        for det, im0, name, rp in zip(preds, ims, names, ratio_pads):  # det: (K, 6) by descending score
            det = det[det[:, 4] >= conf].float()
            if classes is not None:
                det = det[(det[:, 5:6] == classes).any(1)]
            det = det[: self.args.max_det].clone()
            det[:, :4] = scale_boxes(x.shape[2:], det[:, :4], im0.shape[:2], ratio_pad=rp)
            out.append(Results(im0, str(name), class_names, det.cpu()))
        return out
