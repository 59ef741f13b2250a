"""Export a detection model to ONNX, TorchScript or OpenVINO: the fused model with its NMS-free top-k in the graph.

The written graph maps images (B, 3, H, W) float 0..1 RGB to detections (B, max_det, 6): x1, y1, x2, y2 in
input pixels, score, class, best first (rows past the real detections score 0). The model is fused first
(BNs folded into convs, RepVGGDW merged, the one-to-many branch dropped), so the file holds the inference
graph whose parameters and GFLOPs the benchmark reports. The file carries its metadata (names, stride,
imgsz, task, batch, dynamic, ...): ONNX in metadata_props, TorchScript in the extra file 'config.txt',
OpenVINO in metadata.yaml beside the IR (engine/export_openvino.py; FP32, FP16 weights or INT8).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

from ultralytics.utils import LOGGER, UserError, colorstr
from ultralytics.utils.checks import EXPORT_PIP, get_setting, require  # noqa: F401 (EXPORT_PIP: re-exported)

FORMATS = {"onnx": ".onnx", "torchscript": ".torchscript", "openvino": "_openvino_model"}  # openvino: a folder
TENSORRT_UNSUPPORTED = ("format=engine (TensorRT) is not supported yet: it needs a GPU to build and check the engine, "
                        "and it has not been run here; export format=onnx and build the engine with trtexec, or use "
                        "format=openvino on CPUs")
NMS_UNSUPPORTED = ("export with nms=True is not supported: the exported graph holds YOLOv10's NMS-free one-to-one "
                   "head (top-k, no NMS needed); export with nms=False")
OPENVINO_PIP = "pip install -r requirements-export.txt  (or: pip install openvino)"
NNCF_PIP = "pip install -r requirements-export.txt  (or: pip install nncf)"


def onnx_opset_range() -> tuple[int, int]:
    """(lowest, highest) ONNX opset the TorchScript-based torch.onnx exporter of this torch can write."""
    try:
        from torch.onnx import _constants as c

        return int(c.ONNX_MIN_OPSET), int(getattr(c, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", c.ONNX_MAX_OPSET))
    except (ImportError, AttributeError):  # pragma: no cover - very old or very new torch
        return 7, 17


class ExportModel(nn.Module):
    """The fused model plus its head's top-k, with shapes that follow the input (no constant sizes).

    forward(x: (B, 3, H, W)) -> (B, max_det, 6). The anchors are rebuilt from the feature maps' sizes in the
    graph (the head's anchor cache is bypassed), and the decoded predictions (B, A, 4 + nc) are padded with
    max_det zero-score rows so that top-k(max_det) is valid for any image size (A < max_det on small images).
    """

    def __init__(self, model: nn.Module, max_det: int):
        super().__init__()
        self.model = model
        self.max_det = int(max_det)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers, y = self.model.model, []
        head = layers[-1]
        for m in layers[:-1]:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            y.append(x if m.i in self.model.save else None)
        x = y[head.f] if isinstance(head.f, int) else [x if j == -1 else y[j] for j in head.f]
        head._anchor_cache = None  # traced: the anchors are computed from the traced feature sizes
        preds = head.decode(head._branch(x, head.one2one_cv2, head.one2one_cv3))  # (B, A, 4 + nc)
        head._anchor_cache = None
        pad = torch.zeros_like(preds[:, :1]).expand(-1, self.max_det, -1)  # (B, max_det, 4 + nc)
        return head.postprocess(torch.cat((preds, pad), 1), self.max_det, head.nc)


def export_args(overrides: dict) -> object:
    """The merged settings of an export: cfg/default.yaml <- batch=1 <- overrides (checked)."""
    from ultralytics.cfg import get_cfg, load_cfg_schema

    if "nms" in overrides and "nms" not in load_cfg_schema():  # before the nms setting exists: read it here
        if overrides.pop("nms"):
            raise UserError(NMS_UNSUPPORTED)
    return get_cfg(overrides={"batch": 1, **overrides, "mode": "export"})


class Exporter:
    """`Exporter(overrides)(model, weights_path)` -> the written file's path (str).

    Settings (cfg/default.yaml): format (onnx/torchscript/openvino; engine = TensorRT is refused), imgsz (int or
    [h, w], rounded up to the stride), batch (default 1 here), dynamic (ONNX, OpenVINO: dynamic batch and image
    size; TorchScript traces follow the input's shape anyway), half (FP16: CUDA only, except OpenVINO, which
    stores FP16 weights), int8 (OpenVINO: NNCF quantisation on data's val images, the first `fraction` of them),
    opset (ONNX; empty = 17, or the highest this torch writes when lower), simplify (ONNX: onnxslim, on by
    default), nms (only False: the NMS-free one-to-one head), max_det, device.
    """

    def __init__(self, overrides: dict | None = None, callbacks=None):
        from ultralytics.utils.callbacks import Callbacks

        self.args = export_args(dict(overrides or {}))
        self.file: Path | None = None  # the written file (set before on_export_end)
        self.callbacks = callbacks if callbacks is not None else Callbacks()  # on_export_start / on_export_end

    def __call__(self, model: nn.Module, weights: str | Path | None = None) -> str:
        from ultralytics.cfg import check_imgsz
        from ultralytics.nn.summary import count_flops
        from ultralytics.utils.torch_utils import select_device

        args = self.args
        self.callbacks.run("on_export_start", self)
        fmt = str(args.format).lower()
        if fmt == "engine":
            raise UserError(TENSORRT_UNSUPPORTED)
        if fmt not in FORMATS:
            raise UserError(f"unknown export format '{args.format}': choose one of {', '.join(FORMATS)}")
        if args.get("nms"):
            raise UserError(NMS_UNSUPPORTED)
        if fmt == "onnx":
            require("onnx", "ONNX export")
            if args.simplify:
                require("onnxslim", "simplify=True (the default)", "pip install onnxslim  (or: simplify=False)")
            self.opset = self._check_opset(args.opset)
        if fmt == "openvino":
            require("openvino", "OpenVINO export (format=openvino)", OPENVINO_PIP)
            if args.int8:
                require("nncf", "INT8 OpenVINO export (int8=True)", NNCF_PIP)
                if not args.data:
                    raise UserError("int8=True needs calibration images: give data=<data YAML> (its val split is "
                                    "used), e.g. export(format='openvino', int8=True, data='shapes.yaml')")
        elif args.int8:
            raise UserError(f"int8=True is for format=openvino (NNCF quantisation); format={fmt} has no INT8 export")
        device = select_device(args.device, verbose=False)
        if args.half and device.type != "cuda" and fmt != "openvino":  # OpenVINO: FP16 weights in the IR
            raise UserError("half=True export needs a CUDA device (device=0): FP16 inference graphs are for GPUs; "
                            "export with half=False on the CPU")
        stride = int(model.stride.max())
        h, w = check_imgsz(args.imgsz, stride=stride, min_dim=2)
        batch = max(int(args.batch), 1)

        fused = copy.deepcopy(model).float().eval()
        fused.model[-1].nms = False  # the graph ends in the one-to-one top-k: fusing drops the one-to-many branch
        fused.fuse(verbose=False)
        for p in fused.parameters():
            p.requires_grad_(False)
        params = sum(p.numel() for p in fused.parameters())
        gflops = count_flops(fused, [h, w])
        net = ExportModel(fused, args.max_det).to(device).eval()
        im = torch.zeros(batch, 3, h, w, device=device)
        if args.half and fmt != "openvino":
            net, im = net.half(), im.half()
        with torch.no_grad():
            out = net(im)  # dry run: the shapes the file will give
        self.metadata = {
            "description": f"YOLOv10 detector ({_model_name(model)}) exported by this project",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "version": _version(), "task": "detect", "format": fmt, "model": _model_name(model),
            "names": {int(k): str(v) for k, v in model.names.items()}, "nc": int(model.nc), "stride": stride,
            "imgsz": [h, w], "batch": batch, "dynamic": bool(args.dynamic), "half": bool(args.half), "nms": False,
            "int8": bool(args.int8),
            "max_det": int(args.max_det), "params": params, "gflops": round(gflops, 4),
            "output": "(B, max_det, 6): x1, y1, x2, y2 (input pixels), score, class",
            "data": _train_data(model),
        }
        file = self._file(model, weights, fmt)
        if fmt == "openvino" and args.int8:  # best_int8_openvino_model/, as Ultralytics names it: FP32 is kept
            file = file.with_name(file.name.replace(FORMATS[fmt], "_int8" + FORMATS[fmt]))
        LOGGER.info(f"{colorstr('export:')} {fmt} from {weights or _model_name(model)}: input {tuple(im.shape)}, "
                    f"output {tuple(out.shape)}, {params:,} parameters (fused), {gflops:.1f} GFLOPs")
        t0 = time.perf_counter()
        if fmt == "openvino":
            from ultralytics.engine.export_openvino import export_openvino

            ov = require("openvino", "OpenVINO export (format=openvino)", OPENVINO_PIP)
            nncf = require("nncf", "INT8 OpenVINO export (int8=True)", NNCF_PIP) if args.int8 else None
            export_openvino(net, im, file, self.metadata, args, len(fused.model) - 1, ov, nncf)
        else:
            (self._onnx if fmt == "onnx" else self._torchscript)(net, im, file)
        self.seconds = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in file.rglob("*")) / 2**20 if file.is_dir() else file.stat().st_size / 2**20
        LOGGER.info(f"{colorstr('export:')} wrote {file} ({size:.1f} MB) in {self.seconds:.1f}s")
        self.file = file
        self.callbacks.run("on_export_end", self)
        return str(file)

    # --- formats ----------------------------------------------------------------------------------
    def _onnx(self, net: nn.Module, im: torch.Tensor, file: Path) -> None:
        """torch.onnx (TorchScript-based exporter, offline), then metadata (and onnxslim when simplify)."""
        import warnings

        onnx = require("onnx", "ONNX export")
        dynamic = {"images": {0: "batch", 2: "height", 3: "width"}, "output0": {0: "batch"}} if self.args.dynamic \
            else None
        try:
            with warnings.catch_warnings(), _quiet_stdout():
                warnings.simplefilter("ignore")  # tracer warnings about Python ints: shapes are checked by tests
                torch.onnx.export(net, im, str(file), dynamo=False, opset_version=self.opset, do_constant_folding=True,
                                  input_names=["images"], output_names=["output0"], dynamic_axes=dynamic)
        except Exception as e:  # torch raises many kinds for an op without a symbolic at this opset
            raise UserError(f"torch could not write the model as ONNX opset {self.opset}: "
                            f"{str(e).splitlines()[0][:300]}; try opset=17") from None
        proto = onnx.load(str(file))
        if self.args.simplify:
            slim = require("onnxslim", "simplify=True", "pip install onnxslim")
            before = len(proto.graph.node)
            with _quiet_stdout():
                proto = slim.slim(proto)
            LOGGER.info(f"{colorstr('export:')} onnxslim: {before} -> {len(proto.graph.node)} graph nodes")
        for k, v in self.metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, json.dumps(v)
        onnx.save(proto, str(file))

    def _torchscript(self, net: nn.Module, im: torch.Tensor, file: Path) -> None:
        """torch.jit.trace (sizes are traced, so other batch and image sizes run), metadata in config.txt."""
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            ts = torch.jit.trace(net, im, strict=False, check_trace=False)
        ts.save(str(file), _extra_files={"config.txt": json.dumps(self.metadata)})

    # --- helpers ----------------------------------------------------------------------------------
    def _check_opset(self, opset: int | None) -> int:
        lo, hi = onnx_opset_range()
        if opset is None:
            return min(17, hi)
        if not lo <= opset <= hi:
            raise UserError(f"opset={opset}: torch {torch.__version__.split('+')[0]} writes ONNX opsets {lo} to {hi} "
                            f"(the TorchScript-based exporter); pick one in that range, e.g. opset=17")
        return opset

    @staticmethod
    def _file(model: nn.Module, weights, fmt: str) -> Path:
        """best.pt -> best.onnx (best_openvino_model/) beside it; a model built from a YAML -> <yaml stem>.onnx in
        the working dir."""
        file = Path(weights) if weights is not None and Path(str(weights)).suffix == ".pt" else Path(_model_name(model))
        if fmt == "openvino":
            return file.with_name((file.stem if file.suffix == ".pt" else file.name) + FORMATS[fmt])
        return file.with_suffix(FORMATS[fmt])


@contextlib.contextmanager
def _quiet_stdout():
    """Silence file descriptor 1 (torch's C++ exporter prints the whole IR graph there when an op fails)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _model_name(model: nn.Module) -> str:
    yaml_file = (getattr(model, "yaml", None) or {}).get("yaml_file") or "model"
    return Path(str(yaml_file)).stem


def _train_data(model: nn.Module) -> str | None:
    data = get_setting(getattr(model, "args", None), "data")
    return str(data) if data else None


def _version() -> str:
    try:
        from ultralytics.version import __version__

        return str(__version__)
    except ImportError:  # pragma: no cover
        return ""
