"""The task-agnostic model facade: build or load a model, then train, val, predict or export with key=value settings.

`Model` knows no task: a subclass (models/yolo/model.py: YOLO) names, per task, the model, trainer, validator and
predictor classes in `task_map`, as upstream. The prepared inference model (fused copy, head mode, device, half:
nn/backend.py prepare_inference_model) is kept in `self.inference_cache` and reused by every predict and val call
with the same (device, half, nms, max_det); train, load and fuse clear it.
"""

from __future__ import annotations

from pathlib import Path

from ultralytics.nn.transfer import transfer_weights
from ultralytics.nn.weights import load_model, save_model
from ultralytics.utils import LOGGER, UserError
from ultralytics.utils.callbacks import Callbacks
from ultralytics.utils.checks import get_setting


class Model:
    """`Subclass('model.yaml')` builds a new model; `Subclass('runs/train/exp/weights/best.pt')` loads one.

    Model YAML names resolve inside ultralytics/cfg/models (like upstream); paths work too. A subclass defines
    `task_map`: {task: {"model": class, "trainer": class, "validator": class, "predictor": class}}.
    """

    @property
    def task_map(self) -> dict:
        """{task: {"model", "trainer", "validator", "predictor": class}}; defined by each model family."""
        raise NotImplementedError(f"{type(self).__name__} must define task_map")

    def _smart_load(self, key: str):
        """The class that does `key` ('model', 'trainer', 'validator' or 'predictor') for this model's task."""
        return self.task_map[self.task][key]

    def __init__(self, model: str | Path = "yolov10n.yaml", task: str = "detect", verbose: bool = False):
        if task not in self.task_map:
            raise UserError(f"task '{task}' is not supported by {type(self).__name__}: use one of "
                            f"{', '.join(self.task_map)}")
        self.task = task
        self.ckpt: dict | None = None
        self.ckpt_path: str | None = None
        self.metrics = None
        self.callbacks = Callbacks()  # run by every train, val, predict and export of this object
        self.inference_cache: dict = {}  # the prepared inference model (see nn/backend.py prepare_inference_model)
        self._settings_cache: dict = {}  # mode -> (overrides key, merged settings): a predict loop validates once
        model = str(model)
        suffix = Path(model).suffix.lower()
        if suffix in (".yaml", ".yml"):
            self.cfg = model
            self.model = self._smart_load("model")(model, verbose=verbose)
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

    def fuse(self) -> "Model":
        self._needs_pytorch("fuse()")
        self.model.eval().fuse()
        self.inference_cache.clear()
        return self

    def load(self, weights: str | Path = "yolov10n.pt") -> "Model":
        """Copy every tensor whose name and shape match from a checkpoint (prints how many)."""
        self._needs_pytorch("load()")
        transfer_weights(self.model, weights)
        self.model.has_weights = True
        self.inference_cache.clear()
        return self

    def prune(self, ratio: float = 0.3, method: str = "l1", ignore=(), verbose: bool = True) -> dict:
        """Remove `ratio` of the prunable channels (nn/prune.py, docs/14); returns the report (params, GFLOPs)."""
        from ultralytics.nn.prune import prune_model

        self._needs_pytorch("prune()")
        self.model, report = prune_model(self.model, ratio=ratio, method=method, ignore=ignore, verbose=verbose)
        self.inference_cache.clear()  # the prepared copy is of the unpruned model
        return report

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
        self._needs_pytorch("train()")
        if kwargs.get("resume") is True:
            if not self.ckpt_path:
                raise UserError("resume=True needs a model loaded from a checkpoint, e.g. "
                                "YOLO('runs/train/exp/weights/last.pt').train(resume=True)")
            kwargs["resume"] = self.ckpt_path
        self.inference_cache.clear()  # the weights change
        trainer = self._smart_load("trainer")(overrides={"model": self.cfg, **kwargs}, model=self.model,
                                              callbacks=self.callbacks)
        trainer.train()
        self.model = trainer.best_model() or self.model
        self.metrics = trainer.metrics
        self.trainer = trainer
        self.inference_cache.clear()
        return self.metrics

    def val(self, **kwargs):
        """Validate on a dataset's split (cfg/default.yaml <- kwargs); returns DetMetrics.

        data, imgsz and single_cls default to the values the checkpoint was trained with (as upstream).
        Metrics: .box.map, .box.map50, .box.mp, .box.mr, .box.maps, .results_dict, .speed, .coco.
        """
        train_args = getattr(self.model, "args", None)
        inherited = {k: get_setting(train_args, k) for k in ("data", "imgsz", "single_cls")}
        inherited = {k: v for k, v in inherited.items() if v is not None}
        self._check_exported(kwargs)
        validator = self._smart_load("validator")(overrides={**inherited, **kwargs}, callbacks=self.callbacks,
                                                  cache=self.inference_cache)
        self.metrics = validator(model=self.model)
        return self.metrics

    def predict(self, source=None, **kwargs):
        """Detect objects in images or videos; returns a list of Results, one per image or frame (see
        the task's predictor); stream=True returns a generator instead (memory stays flat on long videos).

        Writes files only when asked: save=True (annotated images in runs/detect/predict, predict2, ...),
        save_txt=True (YOLO label files). YOLOv10 needs no NMS.
        """
        stream = bool(kwargs.pop("stream", False))
        if not stream and _is_video_source(source):
            LOGGER.warning("WARNING ⚠️ predicting a video or webcam without stream=True keeps every frame (and its "
                           "Results) in memory; use `for r in model.predict(source, stream=True)` for long videos")
        self._check_exported(kwargs)
        if self.exported and "imgsz" not in kwargs:
            kwargs["imgsz"] = self.model.imgsz  # the size it was exported at
        predictor = self._smart_load("predictor")(overrides=kwargs, callbacks=self.callbacks,
                                                  cache=self.inference_cache, args=self._settings("predict", kwargs))
        return predictor(source=source, model=self.model, stream=stream)

    __call__ = predict

    def _settings(self, mode: str, overrides: dict):
        """cfg/default.yaml <- overrides for `mode`, merged and validated once per distinct overrides (a copy each
        call); None (the caller merges) when the overrides name a cfg file, which may change between calls, or
        hold values that are not plain data."""
        import copy
        import json

        from ultralytics.cfg import get_cfg

        if "cfg" in overrides:
            return None
        try:
            key = json.dumps(overrides, sort_keys=True)
        except (TypeError, ValueError):
            return None
        hit = self._settings_cache.get(mode)
        if hit is None or hit[0] != key:
            hit = self._settings_cache[mode] = (key, get_cfg(overrides={"mode": mode, **overrides}))
        return copy.copy(hit[1])

    def tune(self, use_ray: bool = False, iterations: int = 300, data=None, epochs: int | None = None, space=None,
             storage: str | None = None, study: str | None = None, prune: bool = True, **kwargs):
        """Search hyperparameters with Optuna: each trial a run of self.train in runs/tune/<study>/trial_<n>.

        Ultralytics 8.4's signature: `tune(use_ray=False, iterations=..., **train_args)`; use_ray=True is refused
        (engine/tuner.py says why).

        Returns the optuna Study; best_hyperparameters.yaml, tune_results.csv and plots land in runs/tune/<study>
        (see engine/tuner.py and docs/12). kwargs are train settings shared by every trial.
        """
        from ultralytics.engine.tuner import tune

        self._needs_pytorch("tune()")
        if data is not None:
            kwargs["data"] = data
        if epochs is not None:
            kwargs["epochs"] = epochs
        return tune(self, kwargs, iterations=iterations, space=space, use_ray=use_ray, storage=storage, study=study,
                    prune=prune)

    def export(self, **kwargs) -> str:
        """Write the fused model as ONNX or TorchScript; returns the file's path (see engine/exporter.py).

        kwargs: format ('torchscript', 'onnx' or 'openvino'), imgsz, batch (default 1), dynamic, half (CUDA;
        OpenVINO: FP16 weights), int8, data, fraction (OpenVINO INT8 calibration), opset, simplify, nms (False only),
        max_det, device. best.pt -> best.onnx (best_openvino_model/) beside it.
        """
        from ultralytics.engine.exporter import Exporter

        self._needs_pytorch("export()")
        imgsz = get_setting(getattr(self.model, "args", None), "imgsz")
        if "imgsz" not in kwargs and isinstance(imgsz, int):
            kwargs["imgsz"] = imgsz  # the size it was trained at, as upstream
        return Exporter(kwargs, callbacks=self.callbacks)(self.model, self.ckpt_path)

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
