"""Inference latency as papers report it: fused model, one-to-one head, warm-up, then timed forward passes.

`benchmark(models, **settings)` times each model (a model YAML, a .pt, an .onnx or a .torchscript file, an
OpenVINO folder, a YOLO object or a DetectionModel) on the same random input (batch, 3, h, w) and writes one row per model to
runs/benchmark/expN/benchmark.csv: model, format, device, batch, imgsz, half, params, gflops, ms_median,
ms_std, fps. Latency is of the forward pass only (the graph's top-k included, no pre/post-processing of
images), in milliseconds per batch; fps = batch * 1000 / ms_median. CUDA is synchronised before and after
each timed pass, so a pass is its full GPU time. params and GFLOPs are those of the inference graph: the
fused model with its one-to-one head (yolov10n: 2,299,264 parameters, 6.7 GFLOPs at 640); for an exported
file they are read from its metadata (GFLOPs only at the size it was exported at). With data=, `yolo benchmark`
and benchmark.py build the deployment table instead (analysis/deploy.py: each format exported and validated).
"""

from __future__ import annotations

import copy
import csv
import math
import statistics
import time
from pathlib import Path

import torch
import torch.nn as nn

from ultralytics.utils import LOGGER, UserError, colorstr

COLUMNS = ("model", "format", "device", "batch", "imgsz", "half", "params", "gflops", "ms_median", "ms_std", "fps")


def benchmark_args(overrides: dict):
    """cfg/default.yaml <- batch=1 <- overrides, checked (mode 'benchmark')."""
    from ultralytics.cfg import get_cfg

    return get_cfg(overrides={"batch": 1, **overrides, "mode": "benchmark"})


def split_models(models) -> list:
    """'a.yaml,b.yaml' or ['a.yaml', YOLO(...)] or one model -> a list of models."""
    if isinstance(models, (str, Path)):
        return [m.strip() for m in str(models).split(",") if m.strip()]
    if isinstance(models, (list, tuple)):
        return [x for m in models for x in (split_models(m) if isinstance(m, (str, Path)) else [m])]
    return [models]


def load_for_benchmark(model) -> tuple[str, str, nn.Module]:
    """(name, format, inference module) of a YAML / .pt / .onnx / .torchscript path, YOLO or DetectionModel.

    A PyTorch model is fused on a copy (the caller's model is left as it was).
    """
    from ultralytics.analysis.rows import open_model
    from ultralytics.nn.backend import ExportedModel
    from ultralytics.nn.tasks import DetectionModel

    model = open_model(model)
    if isinstance(model, ExportedModel):
        return Path(str(model.metadata.get("model") or model.file.stem)).name, model.format.lower(), model
    if not isinstance(model, DetectionModel):
        raise UserError(f"cannot benchmark {type(model).__name__}: give a model YAML, a .pt, .onnx or .torchscript "
                        "file, a YOLO object or a DetectionModel")
    name = Path(str((model.yaml or {}).get("yaml_file") or "model")).stem
    fused = copy.deepcopy(model).float().eval()
    fused.model[-1].nms = False  # the inference graph papers report: one-to-one head, NMS-free top-k
    if not fused.is_fused or getattr(fused.model[-1], "cv2", None) is not None:
        fused.fuse(verbose=False)
    return name, "pytorch", fused


def time_model(model: nn.Module, x: torch.Tensor, warmup: int, runs: int) -> list[float]:
    """Milliseconds of each of `runs` forward passes of x after `warmup` untimed ones (CUDA synchronised)."""
    cuda = x.device.type == "cuda"
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            if cuda:
                torch.cuda.synchronize(x.device)
            t0 = time.perf_counter()
            model(x)
            if cuda:
                torch.cuda.synchronize(x.device)
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
    return times


def benchmark_one(model, args, device: torch.device) -> dict:
    """One row of the table for one model (see COLUMNS)."""
    from ultralytics.cfg import check_imgsz
    from ultralytics.nn.summary import count_flops

    name, fmt, net = load_for_benchmark(model)
    stride = int(net.stride.max())
    h, w = check_imgsz(args.imgsz, stride=stride, min_dim=2)
    batch = max(int(args.batch), 1)
    if fmt == "pytorch":
        params, gflops = sum(p.numel() for p in net.parameters()), count_flops(net, [h, w])
    else:
        if not net.dynamic and ([h, w] != net.imgsz or batch % net.batch):
            raise UserError(f"{net.file} was exported with fixed shapes (batch {net.batch}, imgsz {net.imgsz}): "
                            f"benchmark it with imgsz={net.imgsz} and a batch that is a multiple of {net.batch}, "
                            "or re-export with dynamic=True")
        params = net.metadata.get("params", "")
        gflops = net.metadata.get("gflops", "") if [h, w] == net.imgsz else ""
    net = net.to(device).eval()
    x = torch.rand(batch, 3, h, w, generator=torch.Generator().manual_seed(0)).to(device)
    if args.half:
        net, x = net.half(), x.half()
    times = time_model(net, x, int(args.warmup_runs), int(args.timed_runs))
    med = statistics.median(times)
    return {"model": name, "format": fmt, "device": _device_name(device), "batch": batch,
            "imgsz": h if h == w else f"{h}x{w}", "half": bool(args.half), "params": params,
            "gflops": round(gflops, 2) if isinstance(gflops, float) else gflops, "ms_median": round(med, 3),
            "ms_std": round(statistics.stdev(times), 3) if len(times) > 1 else 0.0,
            "fps": round(batch * 1e3 / med, 2) if med > 0 else math.inf}


def benchmark(models, **overrides) -> list[dict]:
    """Time several models side by side; write runs/benchmark/expN/benchmark.csv; return its rows.

    models: see split_models / load_for_benchmark. overrides: imgsz, batch (default 1), half (CUDA only),
    device, warmup_runs, timed_runs, project, name, exist_ok, verbose.
    """
    from ultralytics.utils.files import increment_path
    from ultralytics.utils.torch_utils import select_device

    models = split_models(overrides.pop("model", None) or models)
    if not models:
        raise UserError("benchmark needs at least one model, e.g. model=yolov10n.yaml,yolov10n-LSKA.yaml")
    args = benchmark_args(overrides)
    device = select_device(args.device, verbose=False)
    if args.half and device.type != "cuda":
        raise UserError("half=True needs a CUDA device (device=0): FP16 latency on the CPU is not what papers report")
    rows = []
    for m in models:
        rows.append(benchmark_one(m, args, device))
        if args.verbose:
            LOGGER.info(f"{colorstr('benchmark:')} " + ", ".join(f"{k}={v}" for k, v in rows[-1].items()))
    save_dir = increment_path(Path(args.project or "runs/benchmark") / (args.name or "exp"), exist_ok=args.exist_ok)
    with open(save_dir / "benchmark.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    if args.verbose:
        LOGGER.info(markdown_table(rows))
        LOGGER.info(f"Results saved to {colorstr('bold', save_dir / 'benchmark.csv')}")
    return rows


def main(argv: list[str]) -> list[dict]:
    """Latency of models side by side, e.g. model=a.yaml,b.pt imgsz=640 device=cpu."""
    from ultralytics.cfg import command_settings, parse_key_value_args

    overrides = parse_key_value_args(argv)
    args = command_settings(overrides, "benchmark")
    return benchmark(args.model, **{k: v for k, v in overrides.items() if k != "model"})


def markdown_table(rows: list[dict]) -> str:
    """The rows as a Markdown table (as pasted into the README)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        cells = [f"{r[c]:,}" if c == "params" and isinstance(r[c], int) else str(r[c]) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    import platform

    return f"cpu ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"
