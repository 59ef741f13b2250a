"""DetectionValidator: P, R, mAP50 and mAP50-95 of a model on a dataset split, per class and overall.

YOLOv10's one-to-one head gives at most one box per object, so no NMS runs here (the `iou` setting is
unused); detections below `conf` (default 0.001) are dropped, at most `max_det` are kept per image.
Detections and labels are both mapped back to original image pixels before matching, so the numbers
do not depend on the letterbox size of a batch.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ultralytics.utils import LOGGER, UserError, colorstr
from ultralytics.utils.metrics import ConfusionMatrix, DetMetrics, match_predictions
from ultralytics.utils.ops import box_iou, clip_boxes, xywh2xyxy


def unletterbox(boxes: torch.Tensor, ratio_pad, ori_shape) -> torch.Tensor:
    """Map xyxy boxes (n, 4) from letterboxed pixels to original pixels, in place; returns them.

    ratio_pad: ((gain_h, gain_w), (pad_w, pad_h)) as the dataset / LetterBox recorded it. The two gains
    differ slightly when the loader rounded the resized size, so each axis uses its own.
    """
    (gh, gw), (pw, ph) = ratio_pad
    boxes[:, [0, 2]] = (boxes[:, [0, 2]] - pw) / gw
    boxes[:, [1, 3]] = (boxes[:, [1, 3]] - ph) / gh
    return clip_boxes(boxes, ori_shape)


class DetectionValidator:
    """Validate during training (`validator(trainer=...)`) or standalone (`validator(model=...)`).

    Returns DetMetrics: `.box.map`, `.box.map50`, `.box.mp`, `.box.mr`, `.box.maps`, `.results_dict`, `.speed`
    (ms per image), and `.coco` (COCOeval numbers when save_json=True and pycocotools is installed, else None).
    During training `self.loss` accumulates the (box, cls, dfl) validation losses over the batches.
    """

    def __init__(self, dataloader=None, save_dir: Path | None = None, args=None, overrides: dict | None = None):
        from ultralytics.cfg import get_cfg

        self.args = args if args is not None else get_cfg(overrides={"mode": "val", **(overrides or {})})
        self.dataloader = dataloader
        self.save_dir = Path(save_dir) if save_dir is not None else None
        self.iouv = torch.linspace(0.5, 0.95, 10)
        self.training = False
        self.loss = None
        self.data = None
        self.device = None
        self.dataloader_wait = 0.0  # ms per image spent waiting for the loader (last run)

    # --- setup ------------------------------------------------------------------------------------
    def _where(self) -> str:
        return f"data YAML {self.data['yaml_file']}" if self.data.get("yaml_file") else "the data dict"

    def _standalone_setup(self, model):
        """Resolve what was not given: the dataset (args.data), the device, the loader and the run dir."""
        from ultralytics.data import check_det_dataset
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
            if args.single_cls:
                self.data = {**self.data, "names": {0: "item"}, "nc": 1}
        if model.nc != self.data["nc"]:
            names = list(self.data["names"].values())
            raise UserError(f"the model predicts {model.nc} classes but {self._where()} has {self.data['nc']} "
                            f"(names: {names[:10]}{' ...' if len(names) > 10 else ''}); validate with the "
                            "dataset the model was trained on")
        if self.device is None:
            self.device = select_device(args.device, args.batch, verbose=False)
        if self.dataloader is None:
            self.dataloader = self._build_loader(int(model.stride.max()))
            self._own_loader = True
        if self.save_dir is None:
            project = Path(args.project or "runs/val")
            self.save_dir = increment_path(project / (args.name or "exp"), exist_ok=args.exist_ok)
        from ultralytics.nn.tasks import DetectionModel

        if isinstance(model, DetectionModel) and not model.is_fused:
            model = copy.deepcopy(model).fuse(verbose=False)  # folded BNs: faster; the caller's model is untouched
        return model.to(self.device).eval()

    def _build_loader(self, stride: int):
        """Rectangular-batch loader over args.split; an absent or empty split is a UserError naming it."""
        from ultralytics.cfg import check_imgsz
        from ultralytics.data import build_dataloader, build_yolo_dataset

        args, split = self.args, self.args.split
        path = self.data.get(split)
        if not path:
            have = [k for k in ("train", "val", "test") if self.data.get(k)]
            raise UserError(f"{self._where()} has no '{split}' split to validate on (it has: {', '.join(have)}); "
                            f"add '{split}: images/{split}' to the YAML or pass split={have[-1]}")
        args.imgsz = check_imgsz(args.imgsz, stride=stride)
        batch = 16 if args.batch == -1 else args.batch
        try:
            dataset = build_yolo_dataset(args, path, batch, self.data, mode="val", rect=True, stride=stride)
        except UserError as e:
            raise UserError(f"the '{split}' split of {self._where()} ({path}) has no usable images: {e}") from None
        return build_dataloader(dataset, batch, args.workers, shuffle=False)

    # --- main -------------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, trainer=None, model=None) -> DetMetrics:
        self.training = trainer is not None
        self._own_loader = False
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
        self.init_metrics()
        plots = bool(self.args.plots) and not self.training
        cuda = self.device.type == "cuda"
        dt, wait, n_wait = np.zeros(4), 0.0, 0
        loader = self.dataloader
        bar = tqdm(loader, total=len(loader), desc=self._header(), bar_format="{l_bar}{bar:10}{r_bar}",
                   disable=not self.args.verbose)
        t_ready = time.perf_counter()
        for bi, batch in enumerate(bar):
            t0 = time.perf_counter()
            if bi:  # the first batch also waits for the workers to start
                wait, n_wait = wait + t0 - t_ready, n_wait + len(batch["im_file"])
            batch = self.preprocess(batch, half)
            t1 = _sync(cuda)
            if self.training:
                preds, raw = model(batch["img"], raw=True)
                t2 = _sync(cuda)
                self.loss += trainer.criterion(raw, batch)[1]
            else:
                preds = model(batch["img"])
                t2 = _sync(cuda)
            t3 = _sync(cuda)
            preds = self.postprocess(preds)
            self.update_metrics(preds, batch)
            t4 = time.perf_counter()
            dt += (t1 - t0, t2 - t1, t3 - t2, t4 - t3)
            if plots and bi < 3:
                self.plot_batch(batch, preds, bi)
            t_ready = time.perf_counter()
        n = max(self.seen, 1)
        self.metrics.speed = dict(zip(("preprocess", "inference", "loss", "postprocess"), (dt * 1e3 / n).tolist()))
        self.dataloader_wait = wait * 1e3 / max(n_wait, 1)
        self.finalize()
        if not self.training:
            self._starvation_hint(loader)
        if self._own_loader:
            self.dataloader = None  # stops its worker processes
        model.float()
        return self.metrics

    def init_metrics(self) -> None:
        """Fresh accumulators for one pass over the loader."""
        names = self.data["names"]
        self.nc = len(names)
        self.metrics = DetMetrics(save_dir=self.save_dir or Path("."), plot=bool(self.args.plots) and not self.training,
                                  names=names)
        self.metrics.coco = None
        conf = 0.25 if self.args.conf is None else max(self.args.conf, 0.25)
        self.confusion = ConfusionMatrix(self.nc, conf=conf)
        self.stats = {"tp": [], "conf": [], "pred_cls": [], "target_cls": []}
        self.images_per_class = np.zeros(self.nc, dtype=np.int64)
        self.seen = 0
        self.jdict: list[dict] = []
        self.image_ids: dict = {}
        if self.args.save_json and not self.training:
            from ultralytics.engine.coco_eval import coco_image_ids

            self.image_ids = coco_image_ids(list(getattr(self.dataloader.dataset, "im_files", [])))

    def preprocess(self, batch: dict, half: bool) -> dict:
        """uint8 (B, 3, H, W) -> float 0..1 on the device; labels to the device."""
        from ultralytics.data.preprocess import preprocess_batch

        return preprocess_batch(batch, self.device, half=half)

    def postprocess(self, preds: torch.Tensor) -> list[torch.Tensor]:
        """(B, K, 6) head output sorted by score -> per image (n, 6) float with score >= conf, n <= max_det."""
        conf = 0.001 if self.args.conf is None else self.args.conf
        return [p[p[:, 4] >= conf][: self.args.max_det].float() for p in preds]

    def update_metrics(self, preds: list[torch.Tensor], batch: dict) -> None:
        """Match each image's detections (n, 6) to its labels at the 10 IoU thresholds, in original pixels."""
        h, w = batch["img"].shape[2:]
        scale = torch.tensor([w, h, w, h], device=self.device, dtype=torch.float32)
        for si, pred in enumerate(preds):
            self.seen += 1
            keep = batch["batch_idx"] == si
            cls = batch["cls"][keep].view(-1).cpu()
            ori, ratio_pad = batch["ori_shape"][si], batch["ratio_pad"][si]
            gt = unletterbox(xywh2xyxy(batch["bboxes"][keep].float()) * scale, ratio_pad, ori).cpu()
            det = pred.cpu().clone()
            det[:, :4] = unletterbox(det[:, :4], ratio_pad, ori)
            tp = torch.zeros(len(det), len(self.iouv), dtype=torch.bool)
            if len(det) and len(cls):
                tp = match_predictions(det[:, 5], cls, box_iou(gt, det[:, :4]), self.iouv)
            self.stats["tp"].append(tp)
            self.stats["conf"].append(det[:, 4])
            self.stats["pred_cls"].append(det[:, 5])
            self.stats["target_cls"].append(cls)
            if len(cls):
                self.images_per_class += np.bincount(np.unique(cls.numpy().astype(int)), minlength=self.nc)[: self.nc]
            if not self.training:
                self.confusion.process_batch(det, gt, cls)
            if self.image_ids:
                from ultralytics.engine.coco_eval import coco_predictions

                iid = self.image_ids[batch["im_file"][si]]
                self.jdict += coco_predictions(iid, det[:, :4].numpy(), det[:, 4].numpy(), det[:, 5].numpy())

    def finalize(self) -> None:
        """Compute the metrics, print the table, write the plots and (save_json) the COCO files."""
        stats = {k: torch.cat(v).numpy() if v else np.zeros(0) for k, v in self.stats.items()}
        tp = stats["tp"].reshape(-1, len(self.iouv))
        self.nt_per_class = np.bincount(stats["target_cls"].astype(int), minlength=self.nc)
        if len(stats["target_cls"]):
            self.metrics.process(tp, stats["conf"], stats["pred_cls"], stats["target_cls"])
        self.print_results()
        if self.training or self.save_dir is None:
            return
        if self.args.plots:
            for normalize in (True, False):
                self.confusion.plot(normalize=normalize, save_dir=self.save_dir, names=self.data["names"])
        if self.args.save_json:
            self.eval_json()
        LOGGER.info(f"Results saved to {colorstr('bold', self.save_dir)}")

    def eval_json(self) -> None:
        """Write predictions.json and ground_truth.json; score them with COCOeval when it is installed."""
        from ultralytics.engine.coco_eval import coco_evaluate, coco_ground_truth, write_json

        labels = getattr(self.dataloader.dataset, "labels", None)
        if labels is None:
            LOGGER.warning("WARNING ⚠️ save_json: the loader's dataset has no YOLO labels; ground truth not written")
            return
        gt = coco_ground_truth(labels, self.data["names"], self.image_ids)
        write_json(self.jdict, self.save_dir / "predictions.json")
        write_json(gt, self.save_dir / "ground_truth.json")
        LOGGER.info(f"Saving {self.save_dir / 'predictions.json'} ({len(self.jdict)} detections) and "
                    f"{self.save_dir / 'ground_truth.json'} ({len(gt['annotations'])} boxes)")
        coco = coco_evaluate(gt, self.jdict)
        if coco is None:
            LOGGER.info("save_json: install pycocotools or faster-coco-eval to cross-check mAP with COCOeval")
            return
        self.metrics.coco = coco
        if coco["summary"]:
            LOGGER.info(coco["summary"])
        LOGGER.info(f"COCOeval ({coco['backend']}): mAP50-95 {coco['map']:.4f}, mAP50 {coco['map50']:.4f}   "
                    f"ours: mAP50-95 {self.metrics.box.map:.4f}, mAP50 {self.metrics.box.map50:.4f}")

    def _header(self) -> str:
        return ("%22s" + "%11s" * 6) % ("Class", "Images", "Instances", "Box(P", "R", "mAP50", "mAP50-95)")

    def print_results(self) -> None:
        """The `all` row, then one row per class with labels (standalone / final), then the speed line."""
        fmt = "%22s" + "%11i" * 2 + "%11.3g" * 4
        LOGGER.info(fmt % ("all", self.seen, self.nt_per_class.sum(), *self.metrics.mean_results()))
        if self.nt_per_class.sum() == 0:
            LOGGER.warning(f"WARNING ⚠️ no labels found in the {self.args.split} set, cannot compute metrics")
        if self.args.verbose and not self.training and len(self.metrics.ap_class_index):
            for i, c in enumerate(self.metrics.ap_class_index):
                LOGGER.info(fmt % (self.data["names"][int(c)], self.images_per_class[int(c)],
                                   self.nt_per_class[int(c)], *self.metrics.class_result(i)))
        if not self.training:
            s = self.metrics.speed
            LOGGER.info(f"Speed: {s['preprocess']:.1f}ms preprocess, {s['inference']:.1f}ms inference, "
                        f"{s['loss']:.1f}ms loss, {s['postprocess']:.1f}ms postprocess per image")

    def _starvation_hint(self, loader) -> None:
        """Say so when the model mostly waited for images (too few loader workers for this machine)."""
        busy = sum(self.metrics.speed.values())
        if len(loader) > 2 and self.dataloader_wait > max(busy, 1.0):
            LOGGER.info(f"Note: {self.dataloader_wait:.1f}ms per image were spent waiting for the dataloader "
                        f"({getattr(loader, 'num_workers', 0)} workers); more workers= or cache=ram would help")

    def plot_batch(self, batch: dict, preds: list[torch.Tensor], bi: int) -> None:
        """val_batch{bi}_labels.jpg and val_batch{bi}_pred.jpg (predictions with conf >= 0.25)."""
        from ultralytics.utils.plotting import plot_images

        names = self.data["names"]
        plot_images(batch["img"], batch["batch_idx"], batch["cls"], batch["bboxes"], paths=batch["im_file"],
                    fname=self.save_dir / f"val_batch{bi}_labels.jpg", names=names)
        idx = torch.cat([torch.full((len(p),), i) for i, p in enumerate(preds)]) if preds else torch.zeros(0)
        cat = torch.cat(preds).cpu() if preds else torch.zeros(0, 6)
        plot_images(batch["img"], idx, cat[:, 5], cat[:, :4], confs=cat[:, 4], paths=batch["im_file"],
                    fname=self.save_dir / f"val_batch{bi}_pred.jpg", names=names, boxes_xyxy=True)


def _sync(cuda: bool) -> float:
    """time.perf_counter() after the GPU finished its queued work (so timings are real)."""
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter()
