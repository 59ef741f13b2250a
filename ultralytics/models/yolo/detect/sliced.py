"""Sliced inference (SAHI-style) on a prepared model: full-size images in, merged detections in full-image pixels out.

A large image is cut into windows of `slice` pixels (utils/slicing.py: SAHI's `get_slice_bboxes` positions,
`overlap` between neighbours). The windows of one image all have the same shape, so they go through the model
together: `batch` at a time on a GPU; on the CPU, where a bigger forward pass costs more per window beyond a few
megapixels, at most CPU_PIXELS_PER_THREAD model pixels per torch thread. Each window is resized by imgsz / slice (1 when slice == imgsz, the usual case) and padded
bottom-right to a stride multiple; an image smaller than the slice is one window of its own size, resized by
the same factor, never blown up to the slice. With `slice_full=True` the whole image is also predicted,
letterboxed to imgsz (SAHI's perform_standard_pred, run when there is more than one window), so that objects
larger than a window are still found. Every window's boxes are clipped to the window, shifted into full-image
pixels and merged class by class (`merge`, `merge_metric`, `merge_threshold`: utils/slicing.merge_detections),
then the `max_det` best are kept. Below conf 0.1 (validation's 0.001) the default NMM/IOS merge becomes NMS/IOU,
as SAHI's get_sliced_prediction switches: greedy merging of many low-score boxes grows wide union boxes.

Used by DetectionPredictor (slice=...) and DetectionValidator (slice=...); it takes a model already on its device
in eval mode (fused or not, as the caller prepared it) and knows nothing of files or Results.
"""

from __future__ import annotations

import math
import time

import cv2
import numpy as np
import torch

from ultralytics.utils import UserError
from ultralytics.utils.slicing import check_merge, check_overlap, check_slice_size, merge_detections, slice_positions

LOW_CONF = 0.1  # below this score cut-off the default merge becomes NMS/IOU, as SAHI 0.12's get_sliced_prediction
DEFAULT_MERGE = ("nmm", "ios")  # default.yaml's merge, merge_metric
# On the CPU a forward pass of more windows than this many model pixels per torch thread costs more per window,
# not less (caches): measured for yolov10t/n/s at 320 and 640 with 1 and 2 threads (benchmarks/sliced_predict.py
# --sweep): the best per-window time was at 2 windows of 640 per thread, 8 of 320. A GPU takes `batch` windows.
CPU_PIXELS_PER_THREAD = 2 * 640 * 640


class SlicedDetector:
    """`SlicedDetector(model, args, device, half, conf)(im)` -> (n, 6) float32 CPU tensor x1, y1, x2, y2, score,
    class in the pixels of the BGR image `im` (H, W, 3), by descending score, n <= max_det.

    args: the merged config (slice, overlap, slice_full, merge, merge_metric, merge_threshold, imgsz, batch,
    classes, nms, iou, max_det). conf: the score cut-off applied to every window before the merge. multi_label
    (nms=True only): every (box, class) pair above conf is a candidate, as validation scores it.
    `times` holds the (preprocess, inference, postprocess) seconds of the last call; `shape` the last input shape.
    """

    def __init__(self, model, args, device, half: bool = False, conf: float = 0.25, multi_label: bool = False):
        from ultralytics.cfg import check_imgsz

        if getattr(model, "dynamic", True) is False:
            raise UserError(f"slice={args.slice}: this exported model has a fixed input shape; sliced inference feeds "
                            "batches of windows and the whole image at other shapes: use the .pt or a dynamic=True "
                            "export")
        self.model, self.args, self.device, self.half, self.conf = model, args, device, half, float(conf)
        self.stride = int(model.stride.max()) if hasattr(model, "stride") else 32
        self.slice = check_slice_size(args.slice, "slice", stride=self.stride)
        self.overlap = check_overlap(args.overlap, "overlap")
        self.method, self.metric, self.threshold = check_merge(args.merge, args.merge_metric, args.merge_threshold)
        if self.conf < LOW_CONF and (self.method, self.metric) == DEFAULT_MERGE:
            # SAHI 0.12's get_sliced_prediction does the same below conf 0.1 (measured: benchmarks/sahi_low_conf.py):
            # greedy merging of many low-score boxes grows union boxes that score far below whole-image validation
            from ultralytics.utils import LOGGER

            self.method, self.metric = "nms", "iou"
            LOGGER.info(f"sliced: conf={self.conf:g} < {LOW_CONF}: merge=nms merge_metric=iou instead of the default "
                        f"{'/'.join(DEFAULT_MERGE)}, as SAHI does; any other merge/merge_metric is used as given")
        self.imgsz = check_imgsz(args.imgsz, stride=self.stride, min_dim=2)  # [h, w]
        self.batch = max(int(args.batch), 1)
        self.fast_decode = bool(getattr(args, "fast_decode", True))
        self.full = bool(args.slice_full)
        self.max_det = int(args.max_det)
        self.multi_label = bool(multi_label)
        classes = args.classes
        self.classes = None if classes is None else torch.tensor([classes] if isinstance(classes, int) else
                                                                 list(classes))
        self.gain = min(self.imgsz[0] / self.slice, self.imgsz[1] / self.slice)  # window pixels -> model pixels
        self.times = np.zeros(3)
        self.shape: tuple = ()
        self.n_windows = 0

    # --- one image -----------------------------------------------------------------------------------------------
    def windows(self, im: np.ndarray) -> list[tuple[int, int, int, int]]:
        """The (x1, y1, x2, y2) windows over im, as SAHI places them."""
        return slice_positions(im.shape[0], im.shape[1], self.slice, overlap_h=self.overlap)

    def per_forward(self, win_hw: tuple[int, int]) -> int:
        """Windows per forward pass for windows of (h, w) pixels: `batch` on a GPU; on the CPU at most
        CPU_PIXELS_PER_THREAD x threads model pixels per forward (at least one window, at most `batch`)."""
        if getattr(self.device, "type", "cpu") != "cpu":
            return self.batch
        rh, rw = max(round(win_hw[0] * self.gain), 1), max(round(win_hw[1] * self.gain), 1)
        return max(1, min(self.batch, CPU_PIXELS_PER_THREAD * torch.get_num_threads() // (rh * rw)))

    @torch.no_grad()
    def __call__(self, im: np.ndarray, file: str | None = None) -> torch.Tensor:
        """Merged detections (n, 6) of one BGR image in its own pixels (see the class docstring). file: the path
        im was read from (None: an array or a video frame); the full pass reads it as unsliced prediction does
        (image_io.model_view, fast_decode)."""
        self.times = np.zeros(3)
        wins = self.windows(im)
        self.n_windows = len(wins)
        dets = []
        step = self.per_forward((wins[0][3] - wins[0][1], wins[0][2] - wins[0][0]))
        for i in range(0, len(wins), step):
            chunk = wins[i: i + step]
            t0 = time.perf_counter()
            x = self._windows_tensor(im, chunk)
            t1 = _sync(self.device)
            preds = self.model(x)
            t2 = _sync(self.device)
            for det, (x1, y1, x2, y2) in zip(self._decode(preds), chunk):
                det[:, :4] /= self.gain
                det[:, [0, 2]] = (det[:, [0, 2]] + x1).clamp(x1, x2)  # clipped to its window, as SAHI does
                det[:, [1, 3]] = (det[:, [1, 3]] + y1).clamp(y1, y2)
                dets.append(det)
            self.times += (t1 - t0, t2 - t1, time.perf_counter() - t2)
            self.shape = tuple(x.shape)
        if self.full and len(wins) > 1:
            dets.append(self._full_pass(im, file))
        t0 = time.perf_counter()
        det = torch.cat(dets) if dets else torch.zeros(0, 6)
        det = det[(det[:, 2] > det[:, 0]) & (det[:, 3] > det[:, 1])]  # boxes clipped to nothing are dropped
        if len(det) > 1:
            det = merge_detections(det, self.method, self.metric, self.threshold)
        self.times[2] += time.perf_counter() - t0
        return det[: self.max_det]

    def predict_files(self, files: list[str]) -> list[torch.Tensor]:
        """Merged detections (n, 6) of each image file at full size (sliced validation), in its pixels."""
        from ultralytics.data.image_io import imread

        return [self(imread(f), f) for f in files]

    def _windows_tensor(self, im: np.ndarray, wins: list) -> torch.Tensor:
        """(B, 3, h, w) float 0..1 RGB on the device: each window resized by `gain`, padded bottom-right to a
        stride multiple with grey (114)."""
        h, w = wins[0][3] - wins[0][1], wins[0][2] - wins[0][0]  # every window of an image has this shape
        rh, rw = max(round(h * self.gain), 1), max(round(w * self.gain), 1)
        ph, pw = math.ceil(rh / self.stride) * self.stride, math.ceil(rw / self.stride) * self.stride
        out = np.full((len(wins), ph, pw, 3), 114, dtype=np.uint8)
        for k, (x1, y1, x2, y2) in enumerate(wins):
            crop = im[y1:y2, x1:x2]
            out[k, :rh, :rw] = crop if (rh, rw) == (h, w) else cv2.resize(crop, (rw, rh),
                                                                           interpolation=cv2.INTER_LINEAR)
        return self._to_tensor(out)

    def _to_tensor(self, hwc: np.ndarray) -> torch.Tensor:
        """(B, H, W, 3) uint8 BGR -> (B, 3, H, W) float 0..1 RGB on the device."""
        from ultralytics.data.preprocess import preprocess_images

        x = torch.from_numpy(np.ascontiguousarray(hwc[..., ::-1].transpose(0, 3, 1, 2)))
        return preprocess_images(x, self.device, half=self.half)

    def _full_pass(self, im: np.ndarray, file: str | None = None) -> torch.Tensor:
        """Detections of the whole image as unsliced prediction shows it to the model (image_io.model_view: fitted
        to imgsz, INTER_AREA when shrinking, fast_decode from file; then the minimal stride-multiple letterbox),
        in its pixels: the same boxes as model.predict(im) gives."""
        from ultralytics.data.augment import LetterBox
        from ultralytics.data.image_io import model_view
        from ultralytics.utils.ops import scale_boxes

        t0 = time.perf_counter()
        view, gains = model_view(im, file, self.imgsz, self.fast_decode)
        lb = LetterBox(self.imgsz, auto=True, stride=self.stride)(labels={"img": view, "ratio_pad": gains})
        x = self._to_tensor(lb["img"][None])
        t1 = _sync(self.device)
        preds = self.model(x)
        t2 = _sync(self.device)
        det = self._decode(preds)[0]
        det[:, :4] = scale_boxes(x.shape[2:], det[:, :4], im.shape[:2], ratio_pad=lb["ratio_pad"])
        self.times += (t1 - t0, t2 - t1, time.perf_counter() - t2)
        return det

    def _decode(self, preds) -> list[torch.Tensor]:
        """Head output -> per input (n, 6) float32 CPU tensors kept by conf and classes, at most max_det.

        nms=False: the one-to-one head's top-k (B, K, 6); nms=True: the one-to-many maps through class-aware NMS.
        """
        if self.args.nms:
            from ultralytics.utils.nms import non_max_suppression

            preds = non_max_suppression(preds, self.conf, self.args.iou, self.max_det, multi_label=self.multi_label)
        out = []
        for det in preds:
            det = det[det[:, 4] >= self.conf].float().cpu()
            if self.classes is not None:
                det = det[(det[:, 5:6] == self.classes).any(1)]
            out.append(det[: self.max_det].clone())
        return out


def _sync(device) -> float:
    """time.perf_counter() after the GPU finished its queued work."""
    if device is not None and getattr(device, "type", "cpu") == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
