"""The YOLO facade: build or load a model, then train, val or predict with key=value settings."""

from __future__ import annotations

from pathlib import Path

from ultralytics.nn.tasks import DetectionModel
from ultralytics.nn.transfer import transfer_weights
from ultralytics.nn.weights import load_model, save_model
from ultralytics.utils import LOGGER, UserError
from ultralytics.utils.callbacks import Callbacks


class YOLO:
    """`YOLO('yolov10n-LSKA.yaml')` builds a new model; `YOLO('runs/train/exp/weights/best.pt')` loads one.

    Model YAML names resolve inside ultralytics/cfg/models (like upstream); paths work too.
    """

    def __init__(self, model: str | Path = "yolov10n.yaml", task: str = "detect", verbose: bool = False):
        if task != "detect":
            raise UserError(f"task '{task}' is not supported: this project does detection only")
        self.task = task
        self.ckpt: dict | None = None
        self.ckpt_path: str | None = None
        self.metrics = None
        self.callbacks = Callbacks()  # run by every train, val and predict of this object
        model = str(model)
        suffix = Path(model).suffix.lower()
        if suffix in (".yaml", ".yml"):
            self.cfg = model
            self.model = DetectionModel(model, verbose=verbose)
        elif suffix == ".pt":
            self.model, self.ckpt = load_model(model)
            self.model.has_weights = True  # training starts from these weights
            self.ckpt_path = model
            self.cfg = self.model.yaml.get("yaml_file")
        elif suffix in (".onnx", ".torchscript", ".xml") or Path(model).is_dir():  # .xml / folder: OpenVINO
            from ultralytics.nn.backend import load_inference_model

            self.model = load_inference_model(model)  # predict and val only
            self.ckpt_path, self.cfg = model, None
        else:
            raise UserError(f"model '{model}' must be a model YAML (.yaml), a checkpoint (.pt) or an exported "
                            f"model (.onnx, .torchscript, an OpenVINO folder); got suffix '{suffix}'")

    @property
    def exported(self) -> bool:
        """True for a model read from an .onnx or .torchscript file (predict, val and benchmark only)."""
        from ultralytics.nn.backend import ExportedModel

        return isinstance(self.model, ExportedModel)

    def _check_exported(self, kwargs: dict) -> None:
        if self.exported and kwargs.get("nms"):
            raise UserError(f"nms=True scores the one-to-many head, which the exported file '{self.ckpt_path}' does "
                            "not hold (it ends in the one-to-one top-k); use nms=False or the .pt")

    def _needs_pytorch(self, what: str) -> None:
        if self.exported:
            raise UserError(f"{what} needs the PyTorch model: '{self.ckpt_path}' is an exported "
                            f"{self.model.format} file (predict, val and benchmark only); use its .pt")

    # --- the model itself -------------------------------------------------------------------------
    @property
    def names(self) -> dict[int, str]:
        return self.model.names

    @property
    def device(self):
        return next(self.model.parameters()).device

    def info(self, detailed: bool = False, verbose: bool = True):
        """Print the summary line; return (layers, parameters, gradients, GFLOPs)."""
        self._needs_pytorch("info()")
        return self.model.info(detailed=detailed, verbose=verbose)

    def fuse(self) -> "YOLO":
        self._needs_pytorch("fuse()")
        self.model.eval().fuse()
        return self

    def load(self, weights: str | Path = "yolov10n.pt") -> "YOLO":
        """Copy every tensor whose name and shape match from a checkpoint (prints how many)."""
        self._needs_pytorch("load()")
        transfer_weights(self.model, weights)
        self.model.has_weights = True
        return self

    def save(self, path: str | Path = "model.pt") -> Path:
        self._needs_pytorch("save()")
        return save_model(self.model, path)

    # --- callbacks --------------------------------------------------------------------------------
    def add_callback(self, event: str, fn, all_ranks: bool = False) -> None:
        """Call fn(trainer / validator / predictor) at `event` (e.g. 'on_fit_epoch_end'; see utils/callbacks).

        Under DDP it runs on rank 0 only unless all_ranks=True. A callback may set trainer.stop = True to end
        training after the current epoch; one that raises stops the run (last.pt keeps the last finished epoch).
        """
        self.callbacks.add(event, fn, all_ranks=all_ranks)

    def clear_callback(self, event: str | None = None) -> None:
        """Remove the callbacks added for `event` (for every event when None)."""
        self.callbacks.clear(event)

    # --- modes ------------------------------------------------------------------------------------
    def train(self, **kwargs):
        """Train with cfg/default.yaml <- kwargs; returns the final validation metrics."""
        from ultralytics.models.yolo.detect import DetectionTrainer

        self._needs_pytorch("train()")
        if kwargs.get("resume") is True:
            if not self.ckpt_path:
                raise UserError("resume=True needs a model loaded from a checkpoint, e.g. "
                                "YOLO('runs/train/exp/weights/last.pt').train(resume=True)")
            kwargs["resume"] = self.ckpt_path
        trainer = DetectionTrainer(overrides={"model": self.cfg, **kwargs}, model=self.model, callbacks=self.callbacks)
        trainer.train()
        self.model = trainer.best_model() or self.model
        self.metrics = trainer.metrics
        self.trainer = trainer
        return self.metrics

    def val(self, **kwargs):
        """Validate on a dataset's split (cfg/default.yaml <- kwargs); returns DetMetrics.

        data, imgsz and single_cls default to the values the checkpoint was trained with (as upstream).
        Metrics: .box.map, .box.map50, .box.mp, .box.mr, .box.maps, .results_dict, .speed, .coco.
        """
        from ultralytics.models.yolo.detect import DetectionValidator

        train_args = getattr(self.model, "args", None) or {}
        train_args = train_args if isinstance(train_args, dict) else vars(train_args)
        inherited = {k: train_args[k] for k in ("data", "imgsz", "single_cls") if train_args.get(k) is not None}
        self._check_exported(kwargs)
        validator = DetectionValidator(overrides={**inherited, **kwargs}, callbacks=self.callbacks)
        self.metrics = validator(model=self.model)
        return self.metrics

    def predict(self, source=None, **kwargs):
        """Detect objects in images or videos; returns a list of Results, one per image or frame (see
        DetectionPredictor); stream=True returns a generator instead (memory stays flat on long videos).

        Writes files only when asked: save=True (annotated images in runs/detect/predict, predict2, ...),
        save_txt=True (YOLO label files). YOLOv10 needs no NMS.
        """
        from ultralytics.models.yolo.detect import DetectionPredictor

        stream = bool(kwargs.pop("stream", False))
        if not stream and _is_video_source(source):
            LOGGER.warning("WARNING ⚠️ predicting a video or webcam without stream=True keeps every frame (and its "
                           "Results) in memory; use `for r in model.predict(source, stream=True)` for long videos")
        self._check_exported(kwargs)
        if self.exported and "imgsz" not in kwargs:
            kwargs["imgsz"] = self.model.imgsz  # the size it was exported at
        return DetectionPredictor(overrides=kwargs, callbacks=self.callbacks)(source=source, model=self.model,
                                                                            stream=stream)

    __call__ = predict

    def tune(self, data=None, epochs: int | None = None, iterations: int = 50, space=None, storage: str | None = None,
             study: str | None = None, prune: bool = True, **kwargs):
        """Search hyperparameters with Optuna: each trial a run of self.train in runs/tune/<study>/trial_<n>.

        Returns the optuna Study; best_hyperparameters.yaml, tune_results.csv and plots land in runs/tune/<study>
        (see engine/tuner.py and docs/12). kwargs are train settings shared by every trial.
        """
        from ultralytics.engine.tuner import tune

        self._needs_pytorch("tune()")
        if data is not None:
            kwargs["data"] = data
        if epochs is not None:
            kwargs["epochs"] = epochs
        return tune(self, kwargs, iterations=iterations, space=space, storage=storage, study=study, prune=prune)

    def export(self, **kwargs) -> str:
        """Write the fused model as ONNX or TorchScript; returns the file's path (see engine/exporter.py).

        kwargs: format ('torchscript', 'onnx' or 'openvino'), imgsz, batch (default 1), dynamic, half (CUDA;
        OpenVINO: FP16 weights), int8, data, fraction (OpenVINO INT8 calibration), opset, simplify, nms (False only),
        max_det, device. best.pt -> best.onnx (best_openvino_model/) beside it.
        """
        from ultralytics.engine.exporter import Exporter

        self._needs_pytorch("export()")
        train_args = getattr(self.model, "args", None) or {}
        train_args = train_args if isinstance(train_args, dict) else vars(train_args)
        if "imgsz" not in kwargs and isinstance(train_args.get("imgsz"), int):
            kwargs["imgsz"] = train_args["imgsz"]  # the size it was trained at, as upstream
        return Exporter(kwargs)(self.model, self.ckpt_path)

    def benchmark(self, **kwargs):
        """Latency of this model (fused, one-to-one head); returns the rows written to benchmark.csv.

        kwargs: imgsz, batch, half, device, warmup_runs, timed_runs, project, name (see analysis/benchmark.py).
        """
        from ultralytics.analysis.benchmark import benchmark

        return benchmark([self], **kwargs)


def _is_video_source(source) -> bool:
    """True when source (or an item of a list source) is a video file or a webcam index."""
    from ultralytics.data.loaders import is_video_file, is_webcam

    items = source if isinstance(source, (list, tuple)) else [source]
    return any(is_webcam(s) or (isinstance(s, (str, Path)) and is_video_file(s)) for s in items)
