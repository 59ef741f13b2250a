"""DetectionValidator: P, R, mAP50 and mAP50-95 of a model on a dataset split, per class and overall."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ultralytics.utils import LOGGER, UserError, colorstr
from ultralytics.utils.metrics import ConfusionMatrix, DetMetrics, match_predictions
from ultralytics.utils.ops import box_iou, scale_boxes, xywh2xyxy


class DetectionValidator:
    """Validate during training (`validator(trainer=...)`) or standalone (`validator(model=...)`).

    Returns DetMetrics: `.box.map`, `.box.map50`, `.box.mp`, `.box.mr`, `.box.maps`, `.results_dict`, `.speed`.
    """

    def __init__(self, dataloader=None, save_dir: Path | None = None, args=None, overrides: dict | None = None):
        from ultralytics.cfg import get_cfg

        self.args = args if args is not None else get_cfg(overrides={"mode": "val", **(overrides or {})})
        self.dataloader = dataloader
        self.save_dir = save_dir
        self.iouv = torch.linspace(0.5, 0.95, 10)
        self.training = False
        self.loss = None
        self.data = None
        self.device = None

    # --- setup ------------------------------------------------------------------------------------
    def _standalone_setup(self, model):
        """Resolve what was not given: the dataset (args.data), the device, the loader and the run dir."""
        from ultralytics.cfg import check_imgsz
        from ultralytics.data import build_dataloader, build_yolo_dataset, check_det_dataset
        from ultralytics.utils.files import increment_path
        from ultralytics.utils.torch_utils import select_device

        args = self.args
        if self.data is None:
            train_args = getattr(model, "args", None) or {}
            data = args.data or (train_args.get("data") if isinstance(train_args, dict) else
                                 getattr(train_args, "data", None))
            if not data:
                raise UserError("val needs a dataset: pass data='path/to/data.yaml' (or a model trained with one)")
            self.data = check_det_dataset(data)
        if model.nc != self.data["nc"]:
            raise UserError(f"the model predicts {model.nc} classes but {self.data['yaml_file']} has "
                            f"{self.data['nc']} (names: {list(self.data['names'].values())[:10]}); "
                            "validate with the dataset the model was trained on")
        if getattr(self, "device", None) is None:
            self.device = select_device(args.device, args.batch, verbose=False)
        if self.dataloader is None:
            split = self.data.get(args.split)
            if not split:
                raise UserError(f"{self.data['yaml_file']} has no '{args.split}' split to validate on")
            stride = int(model.stride.max())
            args.imgsz = check_imgsz(args.imgsz, stride=stride)
            dataset = build_yolo_dataset(args, split, args.batch, self.data, mode="val", rect=True, stride=stride)
            self.dataloader = build_dataloader(dataset, args.batch, min(args.workers, 4), shuffle=False)
        if self.save_dir is None:
            project = Path(args.project or "runs/val")
            self.save_dir = increment_path(project / (args.name or "exp"), exist_ok=args.exist_ok)
        return model.to(self.device).eval()

    # --- main -------------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, trainer=None, model=None) -> DetMetrics:
        self.training = trainer is not None
        if self.training:
            self.device, self.data = trainer.device, trainer.data
            model = trainer.ema.ema if trainer.ema else trainer.model
            half = trainer.amp
            self.loss = torch.zeros(3, device=self.device)
        else:
            if model is None:
                raise UserError("DetectionValidator needs a model or a trainer")
            model = self._standalone_setup(model)
            half = bool(self.args.half) and self.device.type == "cuda"
        model = model.half() if half else model.float()
        model.eval()
        names = self.data["names"]
        self.nc = len(names)
        self.metrics = DetMetrics(save_dir=self.save_dir or Path("."), plot=bool(self.args.plots) and not self.training,
                                  names=names)
        self.confusion = ConfusionMatrix(self.nc, conf=0.25 if self.args.conf is None else max(self.args.conf, 0.25))
        self.stats = {"tp": [], "conf": [], "pred_cls": [], "target_cls": []}
        self.seen = 0
        conf = 0.001 if self.args.conf is None else self.args.conf
        dt = np.zeros(4)
        loader = self.dataloader
        bar = tqdm(loader, total=len(loader), desc=self._header(), bar_format="{l_bar}{bar:10}{r_bar}",
                   disable=not self.args.verbose)
        for bi, batch in enumerate(bar):
            t0 = time.perf_counter()
            batch = self.preprocess(batch, half)
            t1 = time.perf_counter()
            if self.training:
                preds, raw = model(batch["img"], raw=True)
                t2 = time.perf_counter()
                self.loss += trainer.model.loss(batch, raw)[1]
            else:
                preds = model(batch["img"])
                t2 = time.perf_counter()
            t3 = time.perf_counter()
            preds = [p[p[:, 4] >= conf].float() for p in preds]
            self.update_metrics(preds, batch)
            t4 = time.perf_counter()
            dt += (t1 - t0, t2 - t1, t3 - t2, t4 - t3)
            if self.args.plots and not self.training and bi < 3:
                self.plot_batch(batch, preds, bi)
        self.metrics.speed = dict(zip(("preprocess", "inference", "loss", "postprocess"),
                                      (dt * 1e3 / max(self.seen, 1)).tolist()))
        self.finalize()
        model.float()
        return self.metrics

    def preprocess(self, batch: dict, half: bool) -> dict:
        """uint8 (B, 3, H, W) -> float 0..1 on the device; labels to the device."""
        img = batch["img"].to(self.device, non_blocking=True)
        batch["img"] = (img.half() if half else img.float()) / 255
        for k in ("batch_idx", "cls", "bboxes"):
            batch[k] = batch[k].to(self.device)
        return batch

    def update_metrics(self, preds: list[torch.Tensor], batch: dict) -> None:
        """Match each image's detections (n, 6) to its labels at the 10 IoU thresholds, in original pixels."""
        h, w = batch["img"].shape[2:]
        for si, pred in enumerate(preds):
            self.seen += 1
            keep = batch["batch_idx"] == si
            cls = batch["cls"][keep].view(-1)
            ori, ratio_pad = batch["ori_shape"][si], batch["ratio_pad"][si]
            gt = xywh2xyxy(batch["bboxes"][keep]) * torch.tensor([w, h, w, h], device=self.device)
            gt = scale_boxes((h, w), gt, ori, ratio_pad=ratio_pad)
            boxes = scale_boxes((h, w), pred[:, :4].clone(), ori, ratio_pad=ratio_pad)
            pred_cls = pred[:, 5]
            tp = torch.zeros(len(pred), len(self.iouv), dtype=torch.bool)
            if len(pred) and len(cls):
                iou = box_iou(gt, boxes)  # (M, N)
                tp = torch.as_tensor(match_predictions(pred_cls.cpu(), cls.cpu(), iou.cpu(), self.iouv))
            self.stats["tp"].append(tp.cpu())
            self.stats["conf"].append(pred[:, 4].cpu())
            self.stats["pred_cls"].append(pred_cls.cpu())
            self.stats["target_cls"].append(cls.cpu())
            if self.args.plots and not self.training:
                self.confusion.process_batch(torch.cat((boxes, pred[:, 4:]), 1).cpu(), gt.cpu(), cls.cpu())

    def finalize(self) -> None:
        """Compute the metrics, print the table, write the plots."""
        stats = {k: torch.cat(v).numpy() if v else np.zeros(0) for k, v in self.stats.items()}
        self.nt_per_class = np.bincount(stats["target_cls"].astype(int), minlength=self.nc)
        self.nt_per_image = np.array([len(np.unique(t)) for t in self.stats["target_cls"]])
        if len(stats["tp"]):
            self.metrics.process(stats["tp"], stats["conf"], stats["pred_cls"], stats["target_cls"])
        self.print_results()
        if self.args.plots and not self.training and self.save_dir is not None:
            for normalize in (True, False):
                self.confusion.plot(normalize=normalize, save_dir=self.save_dir, names=self.data["names"])
            LOGGER.info(f"Results saved to {colorstr('bold', self.save_dir)}")

    def _header(self) -> str:
        return ("%22s" + "%11s" * 6) % ("Class", "Images", "Instances", "Box(P", "R", "mAP50", "mAP50-95)")

    def print_results(self) -> None:
        """The `all` row, then one row per class (standalone or final), then the speed line."""
        fmt = "%22s" + "%11i" * 2 + "%11.3g" * 4
        LOGGER.info(fmt % ("all", self.seen, self.nt_per_class.sum(), *self.metrics.mean_results()))
        if self.nt_per_class.sum() == 0:
            LOGGER.warning(f"WARNING: no labels found in the {self.args.split} set, cannot compute metrics")
        if self.args.verbose and not self.training and self.nc > 1 and len(self.metrics.ap_class_index):
            for i, c in enumerate(self.metrics.ap_class_index):
                LOGGER.info(fmt % (self.data["names"][int(c)], self.nt_per_image_count(int(c)),
                                   self.nt_per_class[int(c)], *self.metrics.class_result(i)))
        if not self.training:
            s = self.metrics.speed
            LOGGER.info(f"Speed: {s['preprocess']:.1f}ms preprocess, {s['inference']:.1f}ms inference, "
                        f"{s['loss']:.1f}ms loss, {s['postprocess']:.1f}ms postprocess per image")

    def nt_per_image_count(self, c: int) -> int:
        """Number of images that contain class c."""
        return int(sum(bool((t == c).any()) for t in self.stats["target_cls"]))

    def plot_batch(self, batch: dict, preds: list[torch.Tensor], bi: int) -> None:
        """val_batch{bi}_labels.jpg and val_batch{bi}_pred.jpg."""
        from ultralytics.utils.plotting import plot_images

        names = self.data["names"]
        plot_images(batch["img"], batch["batch_idx"], batch["cls"], batch["bboxes"], paths=batch["im_file"],
                    fname=self.save_dir / f"val_batch{bi}_labels.jpg", names=names)
        idx = torch.cat([torch.full((len(p),), i) for i, p in enumerate(preds)]) if preds else torch.zeros(0)
        cat = torch.cat(preds) if preds else torch.zeros(0, 6)
        plot_images(batch["img"], idx, cat[:, 5], cat[:, :4], confs=cat[:, 4], paths=batch["im_file"],
                    fname=self.save_dir / f"val_batch{bi}_pred.jpg", names=names, boxes_xyxy=True)
