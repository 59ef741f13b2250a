"""BasePredictor: the task-agnostic prediction loop (source, prepared model, batches, timing, callbacks, saving).

A task subclasses it and defines `postprocess` (head output -> one Results per image), as upstream's
DetectionPredictor does. Events, each called with the predictor: on_predict_start (source opened, model ready),
on_predict_batch_start (before a batch's preprocess; `self.batch` = (names, images)), on_predict_postprocess_end
(the batch's `self.results` made), on_predict_batch_end (results written, before they are yielded),
on_predict_end (every result yielded).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ultralytics.utils import LOGGER, UserError, colorstr


class BasePredictor:
    """`Predictor(overrides)(source, model)` -> list[Results], one per readable image, in source order;
    `(source, model, stream=True)` -> a generator of them (videos: memory stays flat).

    Images are letterboxed to `imgsz` (no upscaling beyond it, padding to a stride multiple), run `batch` at a time.
    Files: with save=True annotated images go to project/name (runs/detect/predict, then predict2, ...); with
    save_txt=True label lines go to <save dir>/labels/<stem>.txt. In Python, save defaults to False unless passed
    (as upstream, so `model.predict(img)` writes nothing); predict.py passes save=True.
    `cache`: the caller's dict that keeps the prepared model between calls (nn/backend.py prepare_inference_model);
    `args`: the merged settings when the caller has them already (the overrides then only say whether save was given).
    """

    def __init__(self, overrides: dict | None = None, callbacks=None, cache: dict | None = None, args=None):
        from ultralytics.cfg import get_cfg
        from ultralytics.utils.callbacks import Callbacks

        overrides = dict(overrides or {})
        self.explicit_save = "save" in overrides
        self.args = args if args is not None else get_cfg(overrides={"mode": "predict", **overrides})
        self.save_dir: Path | None = None
        self.device = None
        self.model = None
        self.batch = None  # (names, images) of the batch being predicted
        self.results: list = []  # the Results of the batch being predicted
        self.seen = 0
        self.cache = cache
        self.callbacks = callbacks if callbacks is not None else Callbacks()

    # --- setup ------------------------------------------------------------------------------------
    def setup_model(self, model):
        """The prepared model (fused copy, head mode, device, half, eval): once per model when a cache is kept."""
        from ultralytics.nn.backend import prepare_inference_model
        from ultralytics.utils.torch_utils import select_device

        self.device = select_device(self.args.device, verbose=False)
        self.half = bool(self.args.half) and self.device.type == "cuda"
        self.model = prepare_inference_model(model, self.args, self.device, self.cache)
        return self.model

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
            raise UserError(f"{type(self).__name__} needs a model")
        images = load_inference_source(source, vid_stride=args.vid_stride)  # UserError naming a missing path
        model = self.setup_model(model)
        self.stride = int(model.stride.max())
        self.imgsz = check_imgsz(args.imgsz, stride=self.stride, min_dim=2)
        save = bool(args.save) if self.explicit_save else False
        if save or args.save_txt:
            self.save_dir = increment_path(Path(args.project or "runs/detect") / (args.name or "predict"),
                                           exist_ok=args.exist_ok)
        bs = max(int(args.batch), 1)
        if any(v.webcam for v in images.videos.values()):
            bs = 1  # a live camera: each frame's result at once, not after a batch of frames
        self._writers: dict[str, object] = {}  # video path -> cv2.VideoWriter of its annotated frames
        dt, shape, n, self.seen = np.zeros(3), None, len(images), 0
        self.callbacks.run("on_predict_start", self)
        try:
            for chunk in _chunks(images, bs):
                names, ims = [c.name for c in chunk], [c.image for c in chunk]
                self.batch = (names, ims)
                self.callbacks.run("on_predict_batch_start", self)
                self.results, step, shape = self.predict_batch(ims, names, [c.file for c in chunk])
                self.callbacks.run("on_predict_postprocess_end", self)
                dt = dt + step * len(ims)
                for r, item in zip(self.results, chunk):
                    r.frame = item.frame
                    r.speed = dict(zip(("preprocess", "inference", "postprocess"), step.tolist()))
                    self.write(r, save, item.fps)
                    self.seen += 1
                    if args.verbose:
                        where = f"frame {r.frame}" if r.frame is not None else f"image {self.seen}/{n}"
                        LOGGER.info(f"{where} {r.path}: {shape[2]}x{shape[3]} {r.verbose()}{step[1]:.1f}ms")
                self.callbacks.run("on_predict_batch_end", self)
                yield from self.results
        finally:
            for w in self._writers.values():
                w.release()
        self.callbacks.run("on_predict_end", self)
        self._log_summary(dt, bs, shape)

    def _log_summary(self, dt: np.ndarray, bs: int, shape: tuple | None) -> None:
        """The speed line and where the files went (verbose=True)."""
        if not self.args.verbose:
            return
        if self.seen:
            s = dt / self.seen
            LOGGER.info(f"Speed: {s[0]:.1f}ms preprocess, {s[1]:.1f}ms inference, {s[2]:.1f}ms postprocess per "
                        f"image at shape {(min(bs, self.seen), *shape[1:])}")
        if self.save_dir is not None:
            txt = ""
            if self.args.save_txt:
                n_txt = len(list((self.save_dir / "labels").glob("*.txt")))
                txt = f"\n{n_txt} label{'s' * (n_txt != 1)} saved to {self.save_dir / 'labels'}"
            LOGGER.info(f"Results saved to {colorstr('bold', self.save_dir)}{txt}")

    def predict_batch(self, ims: list[np.ndarray], names: list[str], files: list) -> tuple[list, np.ndarray, tuple]:
        """One batch -> (its Results, (preprocess, inference, postprocess) ms per image, the input shape).

        files: the path each image was read from (None for arrays and video frames), for preprocess's decode.
        """
        t0 = time.perf_counter()
        x, ratio_pads = self.preprocess(ims, files)
        t1 = _sync(self.device)
        preds = self.inference(x)
        t2 = _sync(self.device)
        results = self.postprocess(preds, x, ims, names, ratio_pads, self.model.names)
        t3 = time.perf_counter()
        return results, np.array([t1 - t0, t2 - t1, t3 - t2]) * 1e3 / len(ims), tuple(x.shape)

    def inference(self, x: torch.Tensor):
        """The prepared model's output on a preprocessed batch x (B, 3, H, W)."""
        return self.model(x)

    def preprocess(self, ims: list[np.ndarray], files: list | None = None) -> tuple[torch.Tensor, list]:
        """BGR images (and the files they were read from) -> (x (B, 3, H, W) float 0..1 RGB, ratio_pad of each).

        Each image is first fitted to imgsz as validation loads it (image_io.model_view: fast_decode, resize),
        so a model scores the pixels it is shown. One image or equal shapes: the minimal stride-multiple
        letterbox. Mixed shapes: every image is letterboxed (same scale as alone) into the smallest shape that
        holds each one's minimal letterbox.
        """
        from ultralytics.data.augment import LetterBox
        from ultralytics.data.image_io import model_view
        from ultralytics.data.preprocess import preprocess_images

        views = [model_view(im, f, self.imgsz, self.args.fast_decode) for im, f in zip(ims, files or [None] * len(ims))]
        ims = [v[0] for v in views]
        if all(im.shape == ims[0].shape for im in ims):
            lb = LetterBox(self.imgsz, auto=True, stride=self.stride)
        else:
            lb = LetterBox(np.max([self._auto_shape(im.shape[:2]) for im in ims], 0).tolist(), auto=False)
        out = [lb(labels={"img": im, "ratio_pad": v[1]}) for im, v in zip(ims, views)]
        x = np.stack([o["img"][..., ::-1].transpose(2, 0, 1) for o in out])  # BGR HWC -> RGB CHW
        x = preprocess_images(torch.from_numpy(np.ascontiguousarray(x)), self.device, half=self.half)
        return x, [o["ratio_pad"] for o in out]

    def _auto_shape(self, hw: tuple[int, int]) -> tuple[int, int]:
        """(h, w) of the minimal stride-multiple letterbox of an (h, w) image at imgsz."""
        (H, W), s = self.imgsz, self.stride
        r = min(H / hw[0], W / hw[1])
        uh, uw = round(hw[0] * r), round(hw[1] * r)
        return uh + (H - uh) % s, uw + (W - uw) % s

    def postprocess(self, preds, x: torch.Tensor, ims: list[np.ndarray], names: list[str], ratio_pads: list,
                    class_names: dict) -> list:
        """Model output -> one Results per image (the task's part)."""
        raise NotImplementedError(f"{type(self).__name__} must define postprocess")

    def write(self, r, save: bool, fps: float | None = None) -> None:
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

    def _video_writer(self, r, fps: float | None):
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
