"""One table of speed and accuracy per deployment format: each exported file timed and validated on data.

`deploy_table(model, data, validator, **settings)` exports a .pt to TorchScript, ONNX, OpenVINO FP32 and OpenVINO INT8
(dynamic batch and image size, into <project>/<name>/), then for each format (the .pt itself first):
- times the forward pass with the benchmark's protocol (analysis/benchmark.py: warm-up passes, then
  `timed_runs` timed ones, median and std) at batch 1 and at a larger batch (`batch`, or LARGE_BATCH when
  batch is 1), on the same random input (B, 3, imgsz, imgsz), reported in ms per image;
- validates the file on data's val split (mAP50-95 and mAP50, one-to-one head, as `YOLO(file).val(...)`).
A format whose package is missing is a row that names the pip command that adds it. Rows go to
<project>/<name>/deploy.csv and, as Markdown, to the log. Sizes are on disk in MB (2**20 bytes): the .pt as
given (weights may be stored in FP16), a folder summed.
"""

from __future__ import annotations

import copy
import csv
import importlib.util
import statistics
from pathlib import Path

import torch

from ultralytics.utils import LOGGER, UserError, colorstr

LARGE_BATCH = 8  # the larger batch timed when batch=1
# (format name in the table, export settings, packages it needs: (module, pip command))
FORMATS = (
    ("PyTorch", None, ()),
    ("TorchScript", {"format": "torchscript"}, ()),
    ("ONNX Runtime", {"format": "onnx"}, (("onnx", "pip install onnx"), ("onnxruntime", "pip install onnxruntime"),
                                          ("onnxslim", "pip install onnxslim"))),
    ("OpenVINO FP32", {"format": "openvino"}, (("openvino", "pip install openvino"),)),
    ("OpenVINO INT8", {"format": "openvino", "int8": True}, (("openvino", "pip install openvino"),
                                                             ("nncf", "pip install nncf"))),
)
COLUMNS = ("model", "format", "size_mb", "map50_95", "map50", "ms_b1", "ms_b1_std", "batch", "ms_bn", "ms_bn_std",
           "file", "note")


def missing_packages(packages) -> list[str]:
    """The pip commands of the packages (module, pip) that are not installed."""
    return [pip for module, pip in packages if importlib.util.find_spec(module) is None]


def deploy_table(model, data, validator, **overrides) -> list[dict]:
    """Export, time and validate `model` (a .pt path) in every format; returns the rows (see COLUMNS).

    validator: the task's validator class (DetectionValidator), passed down by the caller (analysis sits below
    models/ in the layers, docs/architecture.md).

    overrides: imgsz, batch (the larger batch; 1 -> LARGE_BATCH), warmup_runs, timed_runs, fraction (INT8
    calibration: of data's val images), int8_head (last/all: the head convolutions INT8 keeps in float), formats
    (names of FORMATS to run, default all), project, name, exist_ok, verbose.
    """
    from ultralytics.analysis.benchmark import benchmark_args
    from ultralytics.engine.exporter import Exporter
    from ultralytics.nn.weights import load_model
    from ultralytics.utils.files import increment_path

    if not data:
        raise UserError("the deployment table validates each format: give data=<data YAML>, e.g. data=shapes.yaml")
    pt = Path(str(model))
    if pt.suffix != ".pt" or not pt.is_file():
        raise UserError(f"the deployment table exports a trained .pt to each format: model='{model}' is not a .pt "
                        "file (time YAMLs or exported files without data=)")
    wanted = overrides.pop("formats", None)
    names = [f[0] for f in FORMATS]
    if wanted is not None and any(w not in names for w in wanted):
        raise UserError(f"formats={wanted}: choose among {names}")
    fraction = overrides.pop("fraction", 1.0)
    int8_head = overrides.pop("int8_head", "last")
    args = benchmark_args({**overrides, "device": "cpu"})
    imgsz = int(args.imgsz if isinstance(args.imgsz, int) else max(args.imgsz))
    big = int(args.batch) if int(args.batch) > 1 else LARGE_BATCH
    save_dir = increment_path(Path(args.project or "runs/benchmark") / (args.name or "deploy"), exist_ok=args.exist_ok)
    net, _ = load_model(pt)
    label = Path(str((net.yaml or {}).get("yaml_file") or pt.stem)).stem
    rows = []
    for fmt, export, packages in FORMATS:
        if wanted is not None and fmt not in wanted:
            continue
        row = {c: "" for c in COLUMNS} | {"model": label, "format": fmt}
        pips = missing_packages(packages)
        if pips:
            row["note"] = "not installed: " + "; ".join(pips)
            rows.append(row)
            continue
        if export is None:
            file = pt
        else:
            settings = {**export, "imgsz": imgsz, "dynamic": True, "batch": 1, "device": "cpu"}
            if export.get("int8"):
                settings.update(data=data, fraction=fraction, int8_head=int8_head)
            target = save_dir / pt.name
            if not target.exists():
                target.write_bytes(pt.read_bytes())  # exports go beside the weights: keep them in the run dir
            file = Path(Exporter(settings)(copy.deepcopy(net), str(target)))
        row.update(file=str(file), size_mb=round(_size_mb(file), 2))
        row.update(measure(file, data, imgsz, big, args, save_dir / "val", validator))
        rows.append(row)
        if args.verbose:
            LOGGER.info(f"{colorstr('deploy:')} " + ", ".join(f"{k}={v}" for k, v in row.items() if v != ""))
    with open(save_dir / "deploy.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    if args.verbose:
        LOGGER.info("\n" + markdown_table(rows))
        LOGGER.info(f"Results saved to {colorstr('bold', save_dir / 'deploy.csv')}")
    return rows


def measure(file: Path, data, imgsz: int, big: int, args, val_dir: Path, validator) -> dict:
    """ms per image at batch 1 and at `big` (median, std), then mAP50-95 / mAP50 on data's val split."""
    from ultralytics.analysis.benchmark import load_for_benchmark, time_model

    _, _, net = load_for_benchmark(str(file))
    net = net.eval()
    out = {"batch": big}
    for key, b in (("ms_b1", 1), ("ms_bn", big)):
        x = torch.rand(b, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
        times = [t / b for t in time_model(net, x, int(args.warmup_runs), int(args.timed_runs))]
        out[key], out[key + "_std"] = round(statistics.median(times), 3), round(statistics.stdev(times), 3)
    validator = validator(overrides={"data": data, "imgsz": imgsz, "batch": big, "device": "cpu",
                                              "plots": False, "verbose": False, "project": str(val_dir.parent),
                                              "name": val_dir.name, "exist_ok": True, "workers": 0})
    metrics = validator(model=net)
    out.update(map50_95=round(float(metrics.box.map), 4), map50=round(float(metrics.box.map50), 4))
    return out


def main(argv: list[str], validator=None) -> list[dict]:
    """Latency of models side by side, e.g. model=a.yaml,b.pt imgsz=640 device=cpu.

    `yolo benchmark ...` with data= builds the deployment table of one .pt (deploy_table, scored by `validator`,
    which the CLI passes) instead.
    """
    from ultralytics.analysis import benchmark
    from ultralytics.cfg import parse_key_value_args

    overrides = parse_key_value_args(argv)
    if not overrides.get("data"):
        return benchmark.main(argv)
    return deploy_table(overrides.pop("model", None), overrides.pop("data"), validator, **overrides)


def markdown_table(rows: list[dict]) -> str:
    """format | size MB | mAP50-95 | mAP50 | ms/image at batch 1 | ms/image at batch N, one row per format."""
    big = next((r["batch"] for r in rows if r["batch"] != ""), LARGE_BATCH)
    lines = [f"| model | format | size MB | mAP50-95 | mAP50 | ms/image, batch 1 | ms/image, batch {big} |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["note"]:
            lines.append(f"| {r['model']} | {r['format']} | {r['note']} | | | | |")
            continue
        lines.append(f"| {r['model']} | {r['format']} | {r['size_mb']:.1f} | {r['map50_95']:.3f} | {r['map50']:.3f} | "
                     f"{r['ms_b1']:.1f} ± {r['ms_b1_std']:.1f} | {r['ms_bn']:.1f} ± {r['ms_bn_std']:.1f} |")
    return "\n".join(lines)


def _size_mb(file: Path) -> float:
    files = [f for f in file.rglob("*") if f.is_file()] if file.is_dir() else [file]
    return sum(f.stat().st_size for f in files) / 2**20
