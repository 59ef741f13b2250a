"""The README's model table: layers, parameters and GFLOPs (640) of every scale, the LSKA and the P2 variants.

    python benchmarks/model_table.py        # about a minute on 2 cores; writes benchmarks/results/model_table.json

Counts are those `model.info()` prints (thop GFLOPs, see the README); nc 80 as the shipped YAMLs declare.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__" and not __package__:
    sys.path.insert(0, str(ROOT))

from benchmarks._results import save_results  # noqa: E402

ROWS = [(f"yolov10{s}", f"yolov10{s}.yaml", False) for s in "nsmblx"] + [
    ("yolov10n-LSKA (k=7)", "yolov10n-LSKA.yaml", False),
    ("yolov10n-PSALSKA (k=7)", "yolov10n-PSALSKA.yaml", False),
    ("yolov10n fused (inference)", "yolov10n.yaml", True),
] + [(f"yolov10{s}-p2 (strides 4-32)", f"yolov10{s}-p2.yaml", False) for s in "nsmblx"] + [
    ("yolov10n-p2-LSKA (k=7)", "yolov10n-p2-LSKA.yaml", False),
    ("yolov10s-p2, head widths from P2 (upstream rule, not shipped)", "yolov10s-p2.yaml", "width_level_0"),
]


def _model(yaml_name: str, variant):
    """The row's model: as shipped, fused (variant True), or the P2 rows with upstream's head widths (level 0)."""
    from ultralytics.nn.tasks import DetectionModel, yaml_model_load

    if variant == "width_level_0":
        d = yaml_model_load(yaml_name)
        d["head"][-1][3] = ["nc"]  # v10Detect [nc]: hidden widths from the first (P2) level
        return DetectionModel(d, verbose=False)
    model = DetectionModel(yaml_name, verbose=False)
    return model.eval().fuse(verbose=False) if variant else model


def main() -> None:
    import torch

    torch.manual_seed(0)
    lines = ["| model | layers | parameters | GFLOPs (640) |", "|---|---:|---:|---:|"]
    figures: dict = {}
    for label, yaml_name, variant in ROWS:
        model = _model(yaml_name, variant)
        layers, params, _, gflops = model.info(verbose=False)
        lines.append(f"| {label} | {layers} | {params:,} | {gflops:.2f} |")
        suffix = {True: "_fused", False: ""}.get(variant, f"_{variant}")
        key = yaml_name.removesuffix(".yaml").replace("-", "_") + suffix
        figures.update({f"{key}_layers": layers, f"{key}_params": params, f"{key}_gflops": round(gflops, 3)})
        print(lines[-1], flush=True)
    figures["table_md"] = "\n".join(lines)
    print(f"wrote {save_results('model_table', figures, {'imgsz': 640, 'nc': 'as in each YAML (80)'})}")


if __name__ == "__main__":
    main()
