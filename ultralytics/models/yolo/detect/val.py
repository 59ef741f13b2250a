"""DetectionValidator: P, R, mAP50 and mAP50-95 of a model on a dataset split, per class and overall.

The head scored is chosen by `nms`: False (default) scores the one-to-one head, NMS-free (the YOLOv10 paper);
True decodes the one-to-many head and keeps the max_det best boxes after class-aware NMS at `iou`, every
(box, class) pair above conf being a candidate (Ultralytics 8.4's default for YOLOv10). Detections below `conf`
(default 0.001) are dropped, at most `max_det` are kept per image. Detections and labels are both mapped back
to original image pixels before matching (ops.scale_boxes), so the numbers do not depend on the letterbox
size of a batch. Matching and AP are COCOeval's (ultralytics.utils.matching), also per area range when
validating standalone (`metrics.box.map_small`, `map_medium`, `map_large`): float64 IoU and thresholds, and
the images' results taken in COCO image-id order (ultralytics.utils.match_stats), so that equal scores in
different images rank as in COCOeval and no metric depends on the loader's order, batch size or rect sorting.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ultralytics.engine.validator import BaseValidator
from ultralytics.utils import LOGGER, UserError, colorstr
from ultralytics.utils.match_stats import MatchStats
from ultralytics.utils.matching import AREA_RANGES, IOU_THRESHOLDS
from ultralytics.utils.metrics import SIZE_RANGES, ConfusionMatrix, DetMetrics
from ultralytics.utils.ops import scale_boxes, xywh2xyxy


class DetectionValidator(BaseValidator):
    """Validate during training (`validator(trainer=...)`) or standalone (`validator(model=...)`).

    Returns DetMetrics: `.box.map`, `.box.map50`, `.box.mp`, `.box.mr`, `.box.maps`, `.results_dict`, `.speed`
    (ms per image), and `.coco` (COCOeval numbers when save_json=True and pycocotools is installed, else None).
    During training `self.loss` accumulates the validation loss items (trainer.loss_names) over the batches.
    """

    def __init__(self, dataloader=None, save_dir: Path | None = None, args=None, overrides: dict | None = None,
                 callbacks=None, cache: dict | None = None):
        super().__init__(dataloader, save_dir, args, overrides, callbacks, cache)
        self.iouv = IOU_THRESHOLDS  # (10,) float64, COCOeval's values

    # --- setup ------------------------------------------------------------------------------------
    def _where(self) -> str:
        return f"data YAML {self.data['yaml_file']}" if self.data.get("yaml_file") else "the data dict"

    def get_data(self, model) -> dict:
        """args.data, else the data the model was trained with, resolved (single_cls: one class 'item')."""
        from ultralytics.data import check_det_dataset

        from ultralytics.utils.checks import get_setting

        data = self.args.data or get_setting(getattr(model, "args", None), "data")
        if not data:
            raise UserError("val needs a dataset: pass data='path/to/data.yaml' (or a model trained with one)")
        data = check_det_dataset(data)
        return {**data, "names": {0: "item"}, "nc": 1} if self.args.single_cls else data

    def check_model(self, model) -> None:
        """The model's class count must be the dataset's."""
        if model.nc != self.data["nc"]:
            names = list(self.data["names"].values())
            raise UserError(f"the model predicts {model.nc} classes but {self._where()} has {self.data['nc']} "
                            f"(names: {names[:10]}{' ...' if len(names) > 10 else ''}); validate with the "
                            "dataset the model was trained on")

    def head_description(self, slicer=None) -> str:
        """Which head the numbers score, for the line above the table (the merge a SlicedDetector `slicer` uses)."""
        a = self.args
        merge = f"{slicer.method}/{slicer.metric}" if slicer is not None else f"{a.merge}/{a.merge_metric}"
        sliced = (f", sliced (slice={a.slice}, overlap={a.overlap}, slice_full={a.slice_full}, merge={merge}/"
                  f"{a.merge_threshold})") if a.slice and not self.training else ""
        if self.args.nms:
            return (f"one-to-many head + class-aware NMS (nms=True, iou={self.args.iou}, max_det={self.args.max_det})"
                    + sliced)
        return f"one-to-one head, NMS-free top-{self.args.max_det} (nms=False)" + sliced

    slicer = None  # a SlicedDetector for sliced validation (slice=, standalone): merged boxes in original pixels

    def on_start(self) -> None:
        self.slicer = None
        if self.args.slice and not self.training:  # sliced validation on the full-size images (sliced.py)
            from ultralytics.models.yolo.detect.sliced import SlicedDetector

            conf = 0.001 if self.args.conf is None else self.args.conf
            self.slicer = SlicedDetector(self.model, self.args, self.device, self.half, conf,
                                         multi_label=True)  # as postprocess() decodes with nms=True
        if not self.training:
            LOGGER.info(f"Scoring the {self.head_description(self.slicer)}")

    def inference(self, model, batch: dict):
        """Unsliced: the model on the letterboxed batch. Sliced: each image file read at full size, its windows
        through the model, merged (per image (n, 6) in original pixels)."""
        return super().inference(model, batch) if self.slicer is None else self.slicer.predict_files(batch["im_file"])

    def get_dataloader(self, stride: int):
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

    # --- the metrics --------------------------------------------------------------------------------
    def init_metrics(self) -> None:
        """Fresh accumulators for one pass over the loader."""
        names = self.data["names"]
        self.nc = len(names)
        self.metrics = DetMetrics(names=names)
        self.metrics.coco = None
        conf = 0.25 if self.args.conf is None else max(self.args.conf, 0.25)
        self.confusion = ConfusionMatrix(self.nc, conf=conf)
        self.ranges = AREA_RANGES if not self.training else {"all": AREA_RANGES["all"]}  # sizes: standalone only
        self.stats = MatchStats(self.ranges, self.iouv)
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
        """Head output -> per image (n, 6) float x1, y1, x2, y2, score, class, by score, n <= max_det.

        nms=False: preds (B, K, 6) one-to-one top-k, kept where score >= conf. nms=True: preds (B, A, 4 + nc)
        decoded one-to-many maps, through multi-label class-aware NMS (score > conf).
        """
        if self.slicer is not None:
            return preds  # merged by the sliced detector already
        conf = 0.001 if self.args.conf is None else self.args.conf
        if self.args.nms:
            from ultralytics.utils.nms import non_max_suppression

            return non_max_suppression(preds, conf, self.args.iou, self.args.max_det, multi_label=True)
        return [p[p[:, 4] >= conf][: self.args.max_det].float() for p in preds]

    def update_metrics(self, preds: list[torch.Tensor], batch: dict) -> None:
        """Match each image's detections (n, 6) to its labels at the 10 IoU thresholds, in original pixels
        (sliced validation gives them in original pixels already)."""
        orig = self.slicer is not None
        h, w = batch["img"].shape[2:]
        scale = torch.tensor([w, h, w, h], device=self.device, dtype=torch.float32)
        for si, pred in enumerate(preds):
            self.seen += 1
            keep = batch["batch_idx"] == si
            cls = batch["cls"][keep].view(-1).cpu()
            ori, ratio_pad = batch["ori_shape"][si], batch["ratio_pad"][si]
            gt = scale_boxes((h, w), xywh2xyxy(batch["bboxes"][keep].float()) * scale, ori, ratio_pad).cpu()
            det = pred.cpu().clone()
            if not orig:
                det[:, :4] = scale_boxes((h, w), det[:, :4], ori, ratio_pad)
            self.stats.add(batch["im_file"][si], det[:, :4], det[:, 4], det[:, 5], gt, cls)
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
        from ultralytics.engine.coco_eval import coco_image_ids

        stats = self.stats.arrays(coco_image_ids(self.stats.images, warn=False))  # COCOeval's image order
        self.nt_per_class = np.bincount(stats["target_cls"].astype(int), minlength=self.nc)
        sizes = {r: (stats[f"tp_{r}"], stats[f"ig_{r}"], stats[f"target_cls_{r}"]) for r in SIZE_RANGES
                 if r in self.ranges}
        if len(stats["target_cls"]):
            self.metrics.process(stats["tp"], stats["conf"], stats["pred_cls"], stats["target_cls"], sizes=sizes)
        self.print_results()
        if self.training or self.save_dir is None:
            return
        if self.args.plots:
            from ultralytics.utils.plot_curves import plot_metric_curves, save_confusion_matrix

            if len(self.metrics.ap_class_index):
                plot_metric_curves(self.metrics.box, self.save_dir, self.data["names"])
            for normalize in (True, False):
                save_confusion_matrix(self.confusion, self.save_dir, self.data["names"], normalize=normalize)
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
        self.jdict.sort(key=lambda d: d["image_id"])  # stable: the file does not depend on the loader's order
        write_json(self.jdict, self.save_dir / "predictions.json")
        write_json(gt, self.save_dir / "ground_truth.json")
        LOGGER.info(f"Saving {self.save_dir / 'predictions.json'} ({len(self.jdict)} detections) and "
                    f"{self.save_dir / 'ground_truth.json'} ({len(gt['annotations'])} boxes)")
        coco = coco_evaluate(gt, self.jdict, max_det=self.args.max_det)
        if coco is None:
            LOGGER.info("save_json: install pycocotools or faster-coco-eval to cross-check mAP with COCOeval")
            return
        self.metrics.coco = coco
        if coco["summary"]:
            LOGGER.info(coco["summary"])
        b = self.metrics.box
        LOGGER.info(f"COCOeval ({coco['backend']}, maxDets {self.args.max_det}): mAP50-95 {coco['map']:.4f}, "
                    f"mAP50 {coco['map50']:.4f}, APs/m/l {coco['map_small']:.4f}/{coco['map_medium']:.4f}/"
                    f"{coco['map_large']:.4f}   ours: mAP50-95 {b.map:.4f}, mAP50 {b.map50:.4f}, APs/m/l "
                    f"{b.map_small:.4f}/{b.map_medium:.4f}/{b.map_large:.4f}")

    def get_desc(self) -> str:
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
            LOGGER.info(self.size_line())
            s = self.metrics.speed
            LOGGER.info(f"Speed: {s['preprocess']:.1f}ms preprocess, {s['inference']:.1f}ms inference, "
                        f"{s['loss']:.1f}ms loss, {s['postprocess']:.1f}ms postprocess per image")

    def size_line(self) -> str:
        """COCO's APs / APm / APl (mAP50-95 by ground-truth area in the original image) and the object counts."""
        box = self.metrics.box
        parts = [f"{r} {'n/a' if ap < 0 else f'{ap:.3f}'} ({box.size_nt[r]} objects)"
                 for r, ap in zip(SIZE_RANGES, (box.map_small, box.map_medium, box.map_large))]
        return "mAP50-95 by size (COCO areas <32², 32²-96², >96² px): " + ", ".join(parts)

    def plot_batch(self, batch: dict, preds: list[torch.Tensor], bi: int) -> None:
        """val_batch{bi}_labels.jpg and val_batch{bi}_pred.jpg (predictions with conf >= 0.25; not when sliced:
        the detections are in the full-size images' pixels, not the letterboxed batch's)."""
        from ultralytics.utils.plotting import plot_images

        if self.slicer is not None:
            return

        names = self.data["names"]
        plot_images(batch["img"], batch["batch_idx"], batch["cls"], batch["bboxes"], paths=batch["im_file"],
                    fname=self.save_dir / f"val_batch{bi}_labels.jpg", names=names)
        idx = torch.cat([torch.full((len(p),), i) for i, p in enumerate(preds)]) if preds else torch.zeros(0)
        cat = torch.cat(preds).cpu() if preds else torch.zeros(0, 6)
        plot_images(batch["img"], idx, cat[:, 5], cat[:, :4], confs=cat[:, 4], paths=batch["im_file"],
                    fname=self.save_dir / f"val_batch{bi}_pred.jpg", names=names, boxes_xyxy=True)

