"""One inference interface over a .pt, .onnx, .torchscript file or an OpenVINO folder, for predict and val.

`load_inference_model(path)` returns an nn.Module with DetectionModel's inference interface:
forward(x: (B, 3, H, W) float 0..1 RGB) -> (B, K, 6) x1, y1, x2, y2 (input pixels), score, class, best first;
`.names` {id: name}, `.nc`, `.stride` (tensor of the level strides, `.max()` is the largest), `.args` (the
settings it was trained with, as far as known: data, imgsz), `.to(device)`, `.eval()`, `.half()`, `.float()`.
A .pt gives the DetectionModel itself; .onnx runs through onnxruntime, .torchscript through torch.jit and
an OpenVINO folder `<name>_openvino_model/` (or its .xml) through openvino's CPU plugin, asked for f32 inference
precision (on CPUs with AMX, OpenVINO otherwise runs FP32 graphs in bf16, which moves boxes by pixels; INT8
graphs keep their int8 ops); a dynamic IR is compiled once per input shape (static kernels are faster).

A file exported with fixed shapes (dynamic=False) takes inputs up to its batch and image size: a smaller
image is padded at the right and bottom with the letterbox grey (boxes keep their coordinates), a batch is
run in chunks of the exported batch size (the last chunk padded). A larger image is a UserError.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ultralytics.utils import UserError

SUFFIXES = (".pt", ".onnx", ".torchscript", "_openvino_model/", ".xml")
MAX_SHAPES = 8  # compiled models an OpenVINO model keeps for a dynamic graph (one per input shape)
OPENVINO_PIP = "pip install -r requirements-export.txt  (or: pip install openvino)"
PAD_VALUE = 114 / 255  # the letterbox grey
METADATA_KEYS = ("task", "names", "stride", "imgsz", "batch", "dynamic", "half", "max_det")  # what a runner needs


def load_inference_model(path: str | Path, verbose: bool = False) -> nn.Module:
    """A model file -> an nn.Module that predicts (B, K, 6); the file type is read from the suffix."""
    path = Path(str(path))
    xml = find_openvino_xml(path)
    if xml is not None:
        return OpenVINOModel(xml)
    suffix = path.suffix.lower()
    if path.is_dir():
        raise UserError(f"model folder '{path}' holds no OpenVINO .xml: give an export folder such as "
                        "best_openvino_model/ (made by export(format='openvino')), or a model file")
    if suffix not in SUFFIXES:
        raise UserError(f"model file '{path}' has an unknown format '{suffix}': use one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise UserError(f"model file '{path}' not found")
    if suffix == ".pt":
        from ultralytics.nn.weights import load_model

        return load_model(path, verbose=verbose)[0]
    return (OnnxModel if suffix == ".onnx" else TorchScriptModel)(path)


def prepare_inference_model(model: nn.Module, args, device: torch.device, cache: dict | None = None) -> nn.Module:
    """The model ready to predict or validate: on `device`, eval, FP16 when args.half on CUDA, its head decoding what
    args.nms asks for (one-to-one top-k, or one-to-many maps for NMS) up to args.max_det boxes, BNs fused.

    A DetectionModel is deep-copied first, so the caller's model stays trainable with its own head settings; an
    exported model (fused already, head fixed in the graph) is only moved. With `cache` (a dict the caller keeps,
    e.g. the YOLO facade, one per model) the prepared model is built once per (model object, device, half, nms,
    max_det) and returned again on the next call; the caller clears the dict when the weights change.
    """
    half = bool(args.half) and device.type == "cuda"
    key = (str(device), half, bool(args.get("nms")), int(args.max_det))
    if cache is not None and cache.get("key") == key and cache.get("source") is model:
        return cache["model"]
    from ultralytics.nn.tasks import DetectionModel

    if isinstance(model, DetectionModel):
        head = model.model[-1]
        if key[2] and head.cv2 is None:
            raise UserError("nms=True uses the one-to-many head, which this fused model no longer has; use the "
                            "unfused checkpoint (best.pt / last.pt) or nms=False")
        prepared = copy.deepcopy(model)  # the caller's model is untouched
        prepared.model[-1].nms, prepared.model[-1].max_det = key[2], key[3]
        if not prepared.is_fused:
            prepared.fuse(verbose=False)  # folded BNs (the head keeps its one-to-many branch when nms=True)
        for p in prepared.parameters():
            p.requires_grad_(False)
    else:
        prepared = model
    prepared = prepared.to(device).eval()
    prepared = prepared.half() if half else prepared.float()
    if cache is not None:
        cache.clear()  # one prepared copy per model: a new setting replaces it
        cache.update(key=key, source=model, model=prepared)
    return prepared


class ExportedModel(nn.Module):
    """Common part of the file-backed models: metadata -> names/stride/args, fixed-shape handling."""

    format = ""
    is_fused = True  # exported graphs are fused: callers must not try to fuse them again

    def __init__(self, file: Path, metadata: dict):
        super().__init__()
        missing = [k for k in METADATA_KEYS if k not in metadata]
        if missing:
            raise UserError(f"{self.format} file '{file}' lacks the metadata this project writes on export "
                            f"(missing: {', '.join(missing)}): it was not exported by this project, or was edited. "
                            f"Re-export it: YOLO('best.pt').export(format='{self.format.lower()}')")
        if metadata["task"] != "detect":
            raise UserError(f"{self.format} file '{file}' is a '{metadata['task']}' model; only detect is supported")
        self.file, self.metadata = file, metadata
        self.names = {int(k): str(v) for k, v in metadata["names"].items()}
        stride = int(metadata["stride"])
        self.register_buffer("stride", torch.tensor([stride / 4, stride / 2, stride], dtype=torch.float32),
                             persistent=False)
        self.imgsz = [int(s) for s in metadata["imgsz"]]  # [h, w] it was exported at
        self.batch = int(metadata["batch"])
        self.dynamic = bool(metadata["dynamic"])
        self.args = {"imgsz": max(self.imgsz), **({"data": metadata["data"]} if metadata.get("data") else {})}
        self.yaml = {"yaml_file": f"{metadata.get('model', file.stem)}.yaml"}

    @property
    def nc(self) -> int:
        return len(self.names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) -> (B, K, 6) on x's device and dtype."""
        if self.dynamic:
            return self._run(x).to(x.device, x.dtype)
        b, _, h, w = x.shape
        (H, W), n = self.imgsz, self.batch
        if h > H or w > W:
            raise UserError(f"{self.format} file '{self.file}' was exported for images of at most {H}x{W} "
                            f"(dynamic=False) but got {h}x{w}: predict/val with imgsz={max(H, W)} or lower, or "
                            "re-export with dynamic=True")
        if (h, w) != (H, W):
            x = torch.nn.functional.pad(x, (0, W - w, 0, H - h), value=PAD_VALUE)
        outs = []
        for i in range(0, b, n):
            chunk = x[i:i + n]
            if len(chunk) < n:
                chunk = torch.cat((chunk, chunk.new_full((n - len(chunk), *chunk.shape[1:]), PAD_VALUE)))
            outs.append(self._run(chunk)[: min(n, b - i)])
        return torch.cat(outs).to(x.device, x.dtype)

    def _run(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class OnnxModel(ExportedModel):
    """An .onnx file run by onnxruntime (CUDA when the input is on a GPU and onnxruntime-gpu is installed)."""

    format = "ONNX"

    def __init__(self, file: Path):
        from ultralytics.utils.checks import require

        ort = require("onnxruntime", f"running '{file}'")
        self._ort = ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # the same threads as a PyTorch run
        self._options = options
        try:
            self.session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for unreadable graphs
            raise UserError(f"onnxruntime cannot load '{file}': {str(e).splitlines()[0][:300]}") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            metadata = {k: json.loads(v) for k, v in meta.items()}
        except json.JSONDecodeError:
            metadata = {}
        super().__init__(file, metadata)
        inp = self.session.get_inputs()[0]
        self.input_name, self.input_type = inp.name, inp.type
        self.dynamic = not all(isinstance(d, int) for d in inp.shape)  # the graph is the truth
        self._cuda = False

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda and not self._cuda and "CUDAExecutionProvider" in self._ort.get_available_providers():
            self.session = self._ort.InferenceSession(str(self.file), self._options,
                                                      providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
            self._cuda = True
        dtype = np.float16 if self.input_type == "tensor(float16)" else np.float32
        feed = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=dtype)
        y = self.session.run(None, {self.input_name: feed})[0]
        return torch.from_numpy(y)


class TorchScriptModel(ExportedModel):
    """A .torchscript file run by torch.jit (the trace follows the input's shape)."""

    format = "TorchScript"

    def __init__(self, file: Path):
        import warnings

        extra = {"config.txt": ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still the runtime
                ts = torch.jit.load(str(file), map_location="cpu", _extra_files=extra)
        except Exception as e:  # torch raises RuntimeError / ValueError for files it cannot read
            raise UserError(f"torch.jit cannot load '{file}': {str(e).splitlines()[0][:300]}") from None
        try:
            metadata = json.loads(extra["config.txt"] or "{}")
        except json.JSONDecodeError:
            metadata = {}
        super().__init__(file, metadata)
        self.ts = ts.eval()
        self.dynamic = True

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        p = next(self.ts.parameters(), None)
        return self.ts(x.to(p.dtype) if p is not None else x)


def find_openvino_xml(path: Path) -> Path | None:
    """The IR .xml of an OpenVINO folder (or the .xml itself); None if `path` is neither."""
    if path.suffix.lower() == ".xml" and path.is_file():
        return path
    if path.is_dir():
        xmls = sorted(path.glob("*.xml"))
        if len(xmls) > 1:
            raise UserError(f"OpenVINO folder '{path}' holds several .xml files ({', '.join(x.name for x in xmls)}): "
                            "give the one to load, e.g. YOLO('folder/best.xml')")
        return xmls[0] if xmls else None
    return None


class OpenVINOModel(ExportedModel):
    """An OpenVINO IR (FP32, FP16 weights or INT8) with its metadata.yaml, run by openvino's CPU plugin."""

    format = "OpenVINO"

    def __init__(self, xml: Path):
        import yaml

        from ultralytics.utils.checks import require

        ov = require("openvino", f"running '{xml}'", OPENVINO_PIP)
        meta_file = xml.parent / "metadata.yaml"
        metadata = yaml.safe_load(meta_file.read_text()) if meta_file.is_file() else {}
        if not isinstance(metadata, dict):
            raise UserError(f"OpenVINO metadata '{meta_file}' is not a mapping of settings: re-export the model")
        super().__init__(xml, metadata or {})
        self.core = ov.Core()
        try:
            self.ov_model = self.core.read_model(str(xml))
        except Exception as e:  # openvino raises its own RuntimeError subtypes for unreadable IR
            raise UserError(f"OpenVINO cannot read '{xml}': {str(e).splitlines()[0][:300]}") from None
        self.dynamic = self.ov_model.inputs[0].get_partial_shape().is_dynamic  # the graph is the truth
        self.precision = str(metadata.get("precision", "fp32"))
        self._compiled: dict[tuple, object] = {}  # input shape -> compiled model

    def _compile(self, shape: tuple):
        """The compiled model for an input shape: a dynamic graph is reshaped to it first. (Static kernels are
        faster, and OpenVINO 2026.4's CPU plugin crashed running an INT8 IR compiled with dynamic shapes.)"""
        if shape not in self._compiled:
            if len(self._compiled) >= MAX_SHAPES:
                self._compiled.pop(next(iter(self._compiled)))
            model = self.ov_model
            if self.dynamic:
                model = self.ov_model.clone()
                model.reshape({0: list(shape)})
            config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
                      "INFERENCE_NUM_THREADS": torch.get_num_threads()}
            self._compiled[shape] = self.core.compile_model(model, "CPU", config)
        return self._compiled[shape]

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        feed = np.ascontiguousarray(x.detach().cpu().float().numpy())
        y = self._compile(tuple(feed.shape))(feed)[0]
        return torch.from_numpy(np.array(y, dtype=np.float32))
