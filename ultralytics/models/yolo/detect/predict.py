"""DetectionPredictor: images in, Results out; YOLOv10's one-to-one head needs no NMS."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import torch

from ultralytics.engine.results import Results
from ultralytics.utils import LOGGER, colorstr
from ultralytics.utils.ops import scale_boxes


class DetectionPredictor:
    """`DetectionPredictor(overrides)(source, model)` -> list[Results]; saves annotated images when save=True."""

    def __init__(self, overrides: dict | None = None):
        from ultralytics.cfg import get_cfg

        overrides = dict(overrides or {})
        self.explicit_save = "save" in overrides
        self.args = get_cfg(overrides={"mode": "predict", **overrides})
        self.save_dir: Path | None = None

    @torch.no_grad()
    def __call__(self, source=None, model=None) -> list[Results]:
        from ultralytics.cfg import check_imgsz
        from ultralytics.data import load_inference_source
        from ultralytics.data.augment import LetterBox
        from ultralytics.utils.files import increment_path
        from ultralytics.utils.torch_utils import select_device

        args = self.args
        source = args.source if source is None else source
        if source is None:
            from ultralytics.utils import UserError

            raise UserError("predict needs a source: an image, a folder, a glob, a list of paths or an array")
        device = select_device(args.device, verbose=False)
        model = model.to(device).eval()
        half = bool(args.half) and device.type == "cuda"
        model = model.half() if half else model.float()
        stride = int(model.stride.max())
        imgsz = check_imgsz(args.imgsz, stride=stride, min_dim=2)
        letterbox = LetterBox(imgsz, auto=True, stride=stride)
        conf = 0.25 if args.conf is None else args.conf
        classes = None if args.classes is None else torch.tensor(
            [args.classes] if isinstance(args.classes, int) else list(args.classes), device=device)
        save = bool(args.save) if self.explicit_save else False
        if save or args.save_txt:
            self.save_dir = increment_path(Path(args.project or "runs/detect") / (args.name or "predict"),
                                           exist_ok=args.exist_ok)
        results = []
        for name, im0 in load_inference_source(source):
            t0 = time.perf_counter()
            im = letterbox(image=im0)
            x = torch.from_numpy(np.ascontiguousarray(im[..., ::-1].transpose(2, 0, 1))).to(device)
            x = (x.half() if half else x.float())[None] / 255
            t1 = time.perf_counter()
            det = model(x)[0].float()
            t2 = time.perf_counter()
            det = det[det[:, 4] >= conf][: args.max_det]
            if classes is not None:
                det = det[(det[:, 5:6] == classes).any(1)]
            det[:, :4] = scale_boxes(x.shape[2:], det[:, :4], im0.shape[:2])
            r = Results(im0, str(name), model.names, det.cpu())
            t3 = time.perf_counter()
            r.speed = {"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3, "postprocess": (t3 - t2) * 1e3}
            self.write(r, save)
            if args.verbose:
                LOGGER.info(f"{name}: {x.shape[2]}x{x.shape[3]} {r.summary()}, {r.speed['inference']:.1f}ms")
            results.append(r)
        if self.save_dir is not None and args.verbose:
            LOGGER.info(f"Results saved to {colorstr('bold', self.save_dir)}")
        return results

    def write(self, r: Results, save: bool) -> None:
        """Annotated image to save_dir/<name> and YOLO txt labels to save_dir/labels/<stem>.txt."""
        if self.save_dir is None:
            return
        stem = Path(r.path).stem
        if save:
            r.save_path = self.save_dir / (Path(r.path).name if Path(r.path).suffix else f"{stem}.jpg")
            cv2.imwrite(str(r.save_path), r.plot(self.args.line_width, self.args.show_labels, self.args.show_conf))
        if self.args.save_txt:
            (self.save_dir / "labels").mkdir(exist_ok=True)
            (self.save_dir / "labels" / f"{stem}.txt").write_text("\n".join(r.to_txt_lines(self.args.save_conf)) +
                                                                  ("\n" if len(r) else ""))
