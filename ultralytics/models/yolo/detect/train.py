"""DetectionTrainer: the detection datasets, model, validator and plots around BaseTrainer's loop."""

from __future__ import annotations

import copy

from pathlib import Path

import torch

from ultralytics.cfg import check_imgsz
from ultralytics.data import build_dataloader, build_yolo_dataset, check_det_dataset
from ultralytics.data.batch_augment import BatchAugment, augment_device
from ultralytics.data.preprocess import preprocess_batch
from ultralytics.engine.trainer import BaseTrainer
from ultralytics.models.yolo.detect.val import DetectionValidator
from ultralytics.nn.tasks import DetectionModel
from ultralytics.nn.transfer import transfer_weights
from ultralytics.nn.weights import load_model
from ultralytics.utils import LOCAL_RANK, LOGGER, UserError
from ultralytics.utils.checkpoint import read_checkpoint
from ultralytics.utils.loss import v10DetectLoss
from ultralytics.utils.metrics import DetMetrics
from ultralytics.utils.torch_utils import auto_batch, torch_distributed_zero_first


class DetectionTrainer(BaseTrainer):
    """Train a YOLOv10 detector: `DetectionTrainer(overrides={'model': ..., 'data': ...}).train()`.

    model: a DetectionModel whose weights should be the starting point (e.g. after YOLO(...).load(...)),
    or None to start from the initialisation of args.model (seeded, so runs are reproducible).
    callbacks: a Callbacks registry (copied) whose functions run at the trainer's and validator's events.
    """

    loss_names = ("box_loss", "cls_loss", "dfl_loss")  # v10DetectLoss's items, in its order (results.csv columns)

    def __init__(self, overrides: dict | None = None, model: DetectionModel | None = None, callbacks=None):
        super().__init__(overrides, model, callbacks)

    # --- setup ------------------------------------------------------------------------------------
    def setup(self) -> None:
        args = self.args
        if not args.data:
            raise UserError("no dataset: pass data='path/to/data.yaml' (the built-in one is data='shapes.yaml')")
        self.data = check_det_dataset(args.data)
        self.metric_keys = DetMetrics.keys  # the columns of epochs before the first validation
        if args.single_cls:
            self.data = {**self.data, "names": {0: "item"}, "nc": 1}
        model = self.get_model().to(self.device)
        self.criterion = v10DetectLoss(model.model[-1], args)  # the trainer's, not the model's
        if args.distill_model:  # knowledge distillation: the teacher lives in the criterion (utils/distill.py)
            self.criterion = self.distill_criterion(model)
        self.model, self.train_model = self.wrap_model(model)
        stride = int(model.stride.max())
        if isinstance(args.imgsz, list):
            if len(set(args.imgsz)) != 1:
                raise UserError(f"imgsz={args.imgsz}: training and validation use square images, so imgsz must be "
                                "one number (e.g. imgsz=640); [h, w] sizes are for predict and export")
            args.imgsz = args.imgsz[0]
        args.imgsz = check_imgsz(args.imgsz, stride=stride)
        if args.batch == -1:
            self.batch_size = auto_batch(model, args.imgsz, self.device, amp=self.amp)
        else:
            self.batch_size = args.batch // self.world_size  # images per process (batch is the global batch)
        val_split = self.data.get("val") or self.data.get("test")
        if not val_split:
            raise UserError(f"{self.data['yaml_file']} has no 'val' split: validation needs one")
        with torch_distributed_zero_first(LOCAL_RANK):  # local rank 0 writes the label cache, the others read it
            train_set = build_yolo_dataset(args, self.data["train"], self.batch_size, self.data, "train",
                                           stride=stride)
        self.train_loader = build_dataloader(train_set, self.batch_size, args.workers, shuffle=not args.rect,
                                             rank=self.rank, seed=args.seed, world_size=self.world_size)
        self.test_loader = self.validator = None
        if self.rank in (-1, 0):  # rank 0 alone validates
            val_set = build_yolo_dataset(args, val_split, self.batch_size * 2, self.data, "val", rect=True,
                                         stride=stride)
            self.test_loader = build_dataloader(val_set, self.batch_size * 2, args.workers, shuffle=False, rank=-1)
            self.validator = DetectionValidator(self.test_loader, save_dir=self.save_dir, args=copy.copy(args),
                                                callbacks=self.callbacks)
            if args.plots and self.resume_ckpt is None:
                self.plot_training_labels(train_set)

    # --- distillation (utils/distill.py) ----------------------------------------------------------
    def distill_criterion(self, model: DetectionModel):
        """The detection criterion wrapped with a frozen teacher read from args.distill_model."""
        from ultralytics.utils.distill import DistillLoss, check_teacher

        path = str(self.args.distill_model)
        if not Path(path).is_file():
            raise UserError(f"distill_model='{path}': no such file (give the teacher's trained .pt checkpoint)")
        teacher, ckpt = load_model(path)
        t_imgsz = (ckpt.get("train_args") or {}).get("imgsz")
        check_teacher(self.data["names"], teacher.names, self.args.imgsz, t_imgsz, path)
        teacher = teacher.to(self.device).float()
        criterion = DistillLoss(self.criterion, model, teacher, self.args.dis)
        self.loss_names = (*self.loss_names, "distill")  # its own column in results.csv, TensorBoard and compare
        LOGGER.info(f"Distilling from {path} ({sum(p.numel() for p in teacher.parameters()):,} parameters), "
                    f"dis={self.args.dis}")
        return criterion

    def _setup_optimization(self) -> None:
        super()._setup_optimization()
        if self.args.distill_model:  # the projector learns with the student, on the same schedule
            lr = self.optimizer.param_groups[0]["initial_lr"]
            self.optimizer.add_param_group({"params": list(self.criterion.proj.parameters()), "lr": lr,
                                            "initial_lr": lr, "weight_decay": 0.0, "name": "distill"})
            self.scheduler.base_lrs.append(lr)
            self.scheduler.lr_lambdas.append(self.lf)

    def optimizer_step(self) -> None:
        if self.args.distill_model and self.world_size > 1:  # the projector is not DDP's: average its gradients
            from ultralytics.utils import dist

            params = list(self.criterion.proj.parameters())
            for p in params:
                if p.grad is None:  # every rank all-reduces the same tensors
                    p.grad = torch.zeros_like(p)
            dist.average_gradients(params)
        super().optimizer_step()

    def checkpoint(self, epoch: int, row: dict) -> dict:
        ckpt = super().checkpoint(epoch, row)
        if self.args.distill_model:  # the student only, plus the projector for an exact resume
            proj = self.criterion.proj.state_dict()
            ckpt["distill_projector"] = {k: v.detach().clone().cpu() for k, v in proj.items()}
        return ckpt

    def _load_resume_state(self) -> None:
        super()._load_resume_state()
        if self.args.distill_model and "distill_projector" in self.resume_ckpt:
            self.criterion.proj.load_state_dict(self.resume_ckpt["distill_projector"])

    def wrap_model(self, model: DetectionModel) -> tuple:
        """(the model to train: DDP-wrapped under torchrun, the callable of a step: torch.compile'd if asked)."""
        args, cuda = self.args, self.device.type == "cuda"
        if self.world_size > 1:
            if args.sync_bn and cuda:
                model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            elif args.sync_bn:
                LOGGER.warning("WARNING: sync_bn=True needs CUDA (torch's SyncBatchNorm); ignored on the CPU")
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[self.device.index] if cuda else None)
        elif args.sync_bn:
            LOGGER.warning("WARNING: sync_bn=True has no effect in a single process (it syncs BN across DDP ranks)")
        return model, (torch.compile(model) if args.compile else model)

    def get_model(self) -> DetectionModel:
        """A fresh model of args.model with the dataset's classes; starting weights transferred if given."""
        given = self.given_model
        cfg = given.yaml if given is not None else self.args.model
        if cfg is None:
            raise UserError("no model: pass model='yolov10n-LSKA.yaml' (or a .pt checkpoint)")
        if isinstance(cfg, str) and cfg.endswith(".pt"):
            given, _ = load_model(cfg)
            cfg = given.yaml
        model = DetectionModel(cfg, nc=self.data["nc"], verbose=self.rank in (-1, 0))
        pretrained = self.args.pretrained
        if self.resume_ckpt is None and pretrained is not False:
            if given is not None and getattr(given, "has_weights", False):
                transfer_weights(model, given.state_dict(), verbose=self.rank in (-1, 0))
            if isinstance(pretrained, str):  # pretrained=path.pt: copy its matching tensors (as model.load does)
                if not Path(pretrained).is_file():
                    raise UserError(f"pretrained='{pretrained}': no such file (give a .pt checkpoint path, True to "
                                    "keep the weights of a model loaded from a .pt, or False to start from scratch)")
                model.load(pretrained, verbose=self.rank in (-1, 0))
        model.names = dict(self.data["names"])
        self.freeze(model)
        return model

    def freeze(self, model: DetectionModel) -> None:
        """Freeze the DFL conv always, and the layers named by args.freeze (n first layers or indices)."""
        f = self.args.freeze
        layers = list(range(f)) if isinstance(f, int) else list(f or [])
        names = [f"model.{x}." for x in layers] + [".dfl"]
        for k, v in model.named_parameters():
            if any(x in k for x in names):
                v.requires_grad = False
        if layers:
            LOGGER.info(f"Freezing layers {layers}")

    def preprocess_batch(self, batch: dict) -> dict:
        """uint8 images to float 0..1 on the device (non_blocking from pinned memory); labels to the device.
        With augment_device set, the batch's affine, HSV and flips are applied first (BatchAugment)."""
        if "aug_params" in batch:
            if getattr(self, "batch_augment", None) is None:
                dev = augment_device(self.args.augment_device, self.device) or self.device
                self.batch_augment = BatchAugment(self.args.imgsz, dev)
            batch = self.batch_augment(batch)
        return preprocess_batch(batch, self.device)

    # --- validation -------------------------------------------------------------------------------
    def validate(self):
        """(metrics of the EMA model on the val split, mean val losses (len(loss_names),))."""
        metrics = self.validator(trainer=self)
        val_loss = (self.validator.loss / max(len(self.test_loader), 1)).cpu()
        return metrics, val_loss

    def final_eval(self, epoch: int, seconds: float) -> None:
        """Validate best.pt with plots and the per-class table."""
        if self.rank not in (-1, 0):
            return
        LOGGER.info(f"\n{epoch - self.start_epoch + 1} epochs completed in {seconds / 3600:.3f} hours.")
        if not self.best.exists():
            return
        model, _ = load_model(self.best)
        LOGGER.info(f"\nValidating {self.best}...")
        validator = DetectionValidator(self.test_loader, save_dir=self.save_dir, args=copy.copy(self.args),
                                       callbacks=self.callbacks)
        validator.data, validator.device = self.data, self.device
        self.metrics = validator(model=model.to(self.device))
        self.write_best_metrics(validator)

    def write_best_metrics(self, validator: DetectionValidator) -> None:
        """best_metrics.json: best.pt's final validation, with COCO's size APs (results.csv keeps exactly the
        Ultralytics columns, so the per-size figures that the compare report shows live here)."""
        import json

        from ultralytics.utils.files import atomic_write_text

        box = self.metrics.box
        out = {**{k: round(float(v), 6) for k, v in self.metrics.results_dict.items()},
               "metrics/mAP50-95(S)": round(box.map_small, 6), "metrics/mAP50-95(M)": round(box.map_medium, 6),
               "metrics/mAP50-95(L)": round(box.map_large, 6), "head": validator.head_description()}
        atomic_write_text(self.save_dir / "best_metrics.json", json.dumps(out, indent=1))

    def after_launch(self) -> None:
        """The launching process of a DDP run: the final metrics of best.pt (a dict, as its checkpoint keeps them)."""
        if self.best.exists():
            self.metrics = read_checkpoint(self.best).get("train_metrics")

    def best_model(self) -> DetectionModel | None:
        if self.best.exists():
            model, _ = load_model(self.best)
            model.has_weights = True
            return model
        return None

    # --- plots ------------------------------------------------------------------------------------
    def plot_training_samples(self, batch: dict, i: int) -> None:
        from ultralytics.utils.plotting import plot_images

        plot_images(batch["img"], batch["batch_idx"], batch["cls"], batch["bboxes"], paths=batch["im_file"],
                    fname=self.save_dir / f"train_batch{i}.jpg", names=self.data["names"])

    def plot_training_labels(self, dataset) -> None:
        import numpy as np

        from ultralytics.utils.plotting import plot_labels

        boxes = np.concatenate([lb["bboxes"] for lb in dataset.labels], 0) if dataset.labels else np.zeros((0, 4))
        cls = np.concatenate([lb["cls"] for lb in dataset.labels], 0).reshape(-1) if dataset.labels else np.zeros(0)
        plot_labels(boxes, cls, names=self.data["names"], save_dir=self.save_dir)

    def plot_metrics(self) -> None:
        from ultralytics.utils.plotting import plot_results

        plot_results(self.save_dir / "results.csv")
