"""DetectionPredictor: images in, Results out; YOLOv10's one-to-one head needs no NMS."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch

from ultralytics.engine.results import Results
from ultralytics.utils import LOGGER, UserError, colorstr
from ultralytics.utils.ops import scale_boxes

FUSE_MIN_IMAGES = 32  # fusing a copy of the model costs about as much as this many small-image forwards


class DetectionPredictor:
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

    def __init__(self, overrides: dict | None = None, callbacks=None):
        from ultralytics.cfg import get_cfg
        from ultralytics.utils.callbacks import Callbacks

        overrides = dict(overrides or {})
        self.explicit_save = "save" in overrides
        self.args = get_cfg(overrides={"mode": "predict", **overrides})
        self.save_dir: Path | None = None
        self.device = None
        self.callbacks = callbacks if callbacks is not None else Callbacks()  # on_predict_start / on_predict_end

    # --- setup ------------------------------------------------------------------------------------
    def setup_model(self, model, n_images: int):
        """The model on the device, in eval mode (a fused copy when there are many images to predict)."""
        from ultralytics.nn.tasks import DetectionModel
        from ultralytics.utils.torch_utils import select_device

        self.device = select_device(self.args.device, verbose=False)
        if isinstance(model, DetectionModel):
            head = model.model[-1]
            if self.args.nms and head.cv2 is None:
                raise UserError("nms=True predicts with the one-to-many head, which this fused model no longer has; "
                                "use the unfused checkpoint or nms=False")
            fuse = not model.is_fused and n_images >= FUSE_MIN_IMAGES
            want = (bool(self.args.nms), int(self.args.max_det))
            if fuse or (head.nms, head.max_det) != want:
                model = copy.deepcopy(model)  # the caller's model stays as it was (trainable, its head settings)
                model.model[-1].nms, model.model[-1].max_det = want
            if fuse:
                model.fuse(verbose=False)  # keeps the one-to-many branch when nms=True
        model = model.to(self.device).eval()
        self.half = bool(self.args.half) and self.device.type == "cuda"
        return model.half() if self.half else model.float()

    # --- main -------------------------------------------------------------------------------------
    def __call__(self, source=None, model=None, stream: bool = False):
        """list[Results] in source order; with stream=True a generator of them (memory stays flat on videos)."""
        gen = self.stream_inference(source, model)
        return gen if stream else list(gen)

    @torch.no_grad()
    def stream_inference(self, source=None, model=None):
        """Yield one Results per image or video frame, in source order (see the class docstring)."""
        from ultralytics.cfg import check_imgsz
        from ultralytics.data import load_inference_source
        from ultralytics.utils.files import increment_path

        args = self.args
        source = args.source if source is None else source
        if source is None:
            raise UserError("predict needs a source: an image, a folder, a glob, a list of paths, a video, a webcam "
                            "index or an array")
        if model is None:
            raise UserError("DetectionPredictor needs a model")
        images = load_inference_source(source, vid_stride=args.vid_stride)  # UserError naming a missing path
        model = self.setup_model(model, FUSE_MIN_IMAGES if args.slice else len(images))  # sliced: many windows
        self.stride = int(model.stride.max())
        self.imgsz = check_imgsz(args.imgsz, stride=self.stride, min_dim=2)
        slicer = None
        if args.slice:  # sliced prediction: windows in batches, merged in full-image pixels (sliced.py)
            from ultralytics.models.yolo.detect.sliced import SlicedDetector

            slicer = SlicedDetector(model, args, self.device, self.half, 0.25 if args.conf is None else args.conf)
        save = bool(args.save) if self.explicit_save else False
        if save or args.save_txt:
            self.save_dir = increment_path(Path(args.project or "runs/detect") / (args.name or "predict"),
                                           exist_ok=args.exist_ok)
        bs = max(int(args.batch), 1)
        if any(v.webcam for v in images.videos.values()):
            bs = 1  # a live camera: each frame's result at once, not after a batch of frames
        self._writers: dict[str, object] = {}  # video path -> cv2.VideoWriter of its annotated frames
        dt, shape, n, seen = np.zeros(3), None, len(images), 0
        self.callbacks.run("on_predict_start", self)
        try:
            for chunk in _chunks(images, bs):
                names, ims = [c.name for c in chunk], [c.image for c in chunk]
                t0 = time.perf_counter()
                if slicer is not None:
                    batch_results, step = _sliced_results(slicer, ims, names, model.names)
                    x = torch.empty(slicer.shape, device="meta")  # the last batch of windows (for the log lines)
                else:
                    x, ratio_pads = self.preprocess(ims, [c.file for c in chunk])
                    t1 = _sync(self.device)
                    preds = model(x)
                    t2 = _sync(self.device)
                    batch_results = self.postprocess(preds, x, ims, names, ratio_pads, model.names)
                    t3 = time.perf_counter()
                    step = np.array([t1 - t0, t2 - t1, t3 - t2]) * 1e3 / len(ims)
                dt, shape = dt + step * len(ims), tuple(x.shape)
                for r, item in zip(batch_results, chunk):
                    r.frame = item.frame
                    r.speed = dict(zip(("preprocess", "inference", "postprocess"), step.tolist()))
                    self.write(r, save, item.fps)
                    seen += 1
                    if args.verbose:
                        where = f"frame {r.frame}" if r.frame is not None else f"image {seen}/{n}"
                        LOGGER.info(f"{where} {r.path}: {x.shape[2]}x{x.shape[3]} {r.verbose()}{step[1]:.1f}ms")
                    yield r
        finally:
            for w in self._writers.values():
                w.release()
        self.callbacks.run("on_predict_end", self)
        if args.verbose and seen:
            s = dt / seen
            LOGGER.info(f"Speed: {s[0]:.1f}ms preprocess, {s[1]:.1f}ms inference, {s[2]:.1f}ms postprocess per "
                        f"image at shape {(min(bs, seen), *shape[1:])}")
        if self.save_dir is not None and args.verbose:
            txt = ""
            if args.save_txt:
                n_txt = len(list((self.save_dir / "labels").glob("*.txt")))
                txt = f"\n{n_txt} label{'s' * (n_txt != 1)} saved to {self.save_dir / 'labels'}"
            LOGGER.info(f"Results saved to {colorstr('bold', self.save_dir)}{txt}")

    def preprocess(self, ims: list[np.ndarray], files: list | None = None) -> tuple[torch.Tensor, list]:
        """BGR images (and the files they were read from) -> (x (B, 3, H, W) float 0..1 RGB, ratio_pad of each).

        Each image is first fitted to imgsz as validation loads it (image_io.model_view: fast_decode, resize).

        One image or equal shapes: the minimal stride-multiple letterbox. Mixed shapes: every image is
        letterboxed (same scale as alone) into the smallest shape that holds each one's minimal letterbox.
        """
        from ultralytics.data.augment import LetterBox
        from ultralytics.data.image_io import model_view

        views = [model_view(im, f, self.imgsz, self.args.fast_decode) for im, f in zip(ims, files or [None] * len(ims))]
        ims = [v[0] for v in views]
        if all(im.shape == ims[0].shape for im in ims):
            lb = LetterBox(self.imgsz, auto=True, stride=self.stride)
        else:
            lb = LetterBox(np.max([self._auto_shape(im.shape[:2]) for im in ims], 0).tolist(), auto=False)
        out = [lb(labels={"img": im, "ratio_pad": v[1]}) for im, v in zip(ims, views)]
        x = np.stack([o["img"][..., ::-1].transpose(2, 0, 1) for o in out])  # BGR HWC -> RGB CHW
        from ultralytics.data.preprocess import preprocess_images

        x = preprocess_images(torch.from_numpy(np.ascontiguousarray(x)), self.device, half=self.half)
        return x, [o["ratio_pad"] for o in out]

    def _auto_shape(self, hw: tuple[int, int]) -> tuple[int, int]:
        """(h, w) of the minimal stride-multiple letterbox of an (h, w) image at imgsz."""
        (H, W), s = self.imgsz, self.stride
        r = min(H / hw[0], W / hw[1])
        uh, uw = round(hw[0] * r), round(hw[1] * r)
        return uh + (H - uh) % s, uw + (W - uw) % s

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

    def write(self, r: Results, save: bool, fps: float | None = None) -> None:
        """Annotated image to save_dir/<name> (a video frame: appended to save_dir/<stem>.mp4 at fps) and YOLO
        txt labels to save_dir/labels/<stem>.txt (a video frame: <stem>_<frame>.txt)."""
        if self.save_dir is None:
            return
        stem = Path(r.path).stem
        if save and r.frame is not None:
            self._video_writer(r, fps).write(r.plot(line_width=self.args.line_width, labels=self.args.show_labels,
                                                    conf=self.args.show_conf))
        elif save:
            name = Path(r.path).name if Path(r.path).suffix else f"{stem}.jpg"
            r.save(self.save_dir / name, line_width=self.args.line_width, labels=self.args.show_labels,
                   conf=self.args.show_conf)
        if self.args.save_txt and len(r):
            name = stem if r.frame is None else f"{stem}_{r.frame}"
            r.save_txt(self.save_dir / "labels" / f"{name}.txt", save_conf=self.args.save_conf)

    def _video_writer(self, r: Results, fps: float | None):
        """The cv2.VideoWriter ('mp4v') of r's video, opened on its first frame: save_dir/<stem>.mp4."""
        import cv2

        w = self._writers.get(r.path)
        if w is None:
            h, wd = r.orig_shape
            file = self.save_dir / f"{Path(r.path).stem}.mp4"
            w = cv2.VideoWriter(str(file), cv2.VideoWriter_fourcc(*"mp4v"), float(fps or 30.0), (wd, h))
            if not w.isOpened():
                raise UserError(f"cannot write the annotated video {file}: OpenCV's 'mp4v' encoder did not open")
            self._writers[r.path] = w
            r.save_path = file
        return w


def _sliced_results(slicer, ims: list, names: list, class_names: dict) -> tuple[list[Results], np.ndarray]:
    """One Results per image through the sliced path, and the (preprocess, inference, postprocess) ms per image."""
    out, t = [], np.zeros(3)
    for im, name in zip(ims, names):
        out.append(Results(im, str(name), class_names, slicer(im)))
        t += slicer.times
    return out, t * 1e3 / len(ims)


def _chunks(items, n: int):
    """Lists of up to n consecutive items of an iterable."""
    chunk = []
    for it in items:
        chunk.append(it)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _sync(device) -> float:
    """time.perf_counter() after the GPU finished its queued work."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
