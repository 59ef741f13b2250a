"""The deployment table on this CPU: each format's size, validated mAP and ms/image (analysis/deploy.py).

    python benchmarks/deploy_table.py                   # about 10 min on 2 cores
    python benchmarks/deploy_table.py --models yolov10n.yaml --imgsz 320

Two parts, written to benchmarks/results/deploy_table.json with the CPU's instruction sets (from /proc/cpuinfo):
1. Accuracy: tests/data/yolov10t-shapes.pt (a trained 178k-parameter YOLOv10, 80 epochs at 128, see
   tests/data/README.md) on the built-in shapes val split (100 images it never saw) at imgsz 128: the table of
   every format, INT8 calibrated on those 100 images (fraction=1.0), plus INT8 with the whole head kept in
   floating point (int8_head=all: what that recovers).
2. Speed: yolov10n, n-LSKA and n-PSALSKA, each trained briefly from scratch (seed 0: 1 epoch, imgsz 160, 10% of
   the built-in train split, batch 16; their mAP is near 0 and only shows that the formats agree), exported
   and timed at --imgsz (batch 1 and 8), INT8 calibrated on 30 val images.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

MODELS = ("yolov10n.yaml", "yolov10n-LSKA.yaml", "yolov10n-PSALSKA.yaml")
TRAIN = dict(epochs=1, imgsz=160, batch=16, fraction=0.1, workers=0, val=False, seed=0, plots=False, exist_ok=True)
ISA = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16")


def cpu_flags() -> dict:
    """Which of ISA /proc/cpuinfo lists (instruction sets INT8 and FP32 kernels use), and the CPU's name."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    flags = set(next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), []))
    name = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "")
    return {"cpu": name, "isa": " ".join(f for f in ISA if f in flags) or "none of " + ", ".join(ISA)}


def main() -> None:
    from ultralytics import YOLO
    from ultralytics.analysis.deploy import deploy_table, markdown_table
    from ultralytics.models.yolo.detect import DetectionValidator

    from benchmarks._results import save_results

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--timed", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    a = ap.parse_args()
    t0 = time.time()
    work = Path(tempfile.mkdtemp(prefix="deploy_table_"))
    figures = cpu_flags()
    common = dict(batch=a.batch, warmup_runs=a.warmup, timed_runs=a.timed, verbose=False)

    # 1. accuracy of each format on a trained model
    rows = deploy_table("tests/data/yolov10t-shapes.pt", "shapes.yaml", DetectionValidator, imgsz=128, fraction=1.0,
                        project=str(work), name="acc", **common)
    by = {r["format"]: r for r in rows}
    fp32, int8 = by["OpenVINO FP32"]["map50_95"], by["OpenVINO INT8"]["map50_95"]
    figures.update(acc_table_md=markdown_table(rows), acc_map_pt=by["PyTorch"]["map50_95"], acc_map_fp32=fp32,
                   acc_map_int8=int8, acc_int8_loss_pct=round(100 * (fp32 - int8) / fp32, 1))
    whole = deploy_table("tests/data/yolov10t-shapes.pt", "shapes.yaml", DetectionValidator, imgsz=128, fraction=1.0, int8_head="all",
                         formats=["OpenVINO INT8"], project=str(work), name="acc_head", **common)[0]
    figures.update(acc_map_int8_whole_head=whole["map50_95"],
                   acc_int8_whole_head_loss_pct=round(100 * (fp32 - whole["map50_95"]) / fp32, 1),
                   acc_ms_int8_whole_head=whole["ms_b1"])
    print(figures["acc_table_md"], f"\nINT8 whole head in float: {whole['map50_95']}", flush=True)

    # 2. speed of the n models at imgsz
    speed_rows, goals = [], []
    for yaml_file in a.models:
        stem = Path(yaml_file).stem
        YOLO(yaml_file).train(data="shapes.yaml", project=str(work), name=f"train_{stem}", **TRAIN)
        pt = next((work / f"train_{stem}" / "weights").glob("*.pt"))
        rows = deploy_table(str(pt), "shapes.yaml", DetectionValidator, imgsz=a.imgsz, fraction=0.3, project=str(work),
                            name=f"speed_{stem}", **common)
        speed_rows += rows
        by = {r["format"]: r for r in rows}
        for key in ("ms_b1", "ms_bn"):
            ort, fp32, int8 = (by[f][key] for f in ("ONNX Runtime", "OpenVINO FP32", "OpenVINO INT8"))
            tag = f"{stem}.{'b1' if key == 'ms_b1' else f'b{a.batch}'}"
            figures[f"{tag}.ort_ms"], figures[f"{tag}.fp32_ms"], figures[f"{tag}.int8_ms"] = ort, fp32, int8
            goals += [fp32 <= ort, int8 < fp32]
        print(markdown_table(rows), flush=True)
    figures.update(speed_table_md=markdown_table(speed_rows), goals_met=sum(goals), goals_total=len(goals),
                   wall_min=round((time.time() - t0) / 60, 1))
    print(f"wrote {save_results('deploy_table', figures, vars(a))}")


if __name__ == "__main__":
    main()
