"""docs/14's pruning table: mAP50-95 and CPU latency of yolov10n and yolov10n-LSKA pruned at 0.2, 0.3 and 0.5.

For each model: train it on the built-in shapes data (--epochs), then for each ratio prune a copy (l1),
validate it (after pruning), fine-tune it (--ft-epochs, AdamW lr0 0.001, no warmup) and validate again.
Latency: the fused model (one-to-one head), batch 1 at --imgsz, on the CPU with --threads threads, the
median of --runs timed forwards after 5 warm-up ones. The budget is short on purpose (a CPU machine):
the figures rank ratios, they are not converged accuracies.

    python benchmarks/prune_table.py                 # defaults: 30 + 10 epochs at 128 px, about 1.5 h on 2 cores
    python benchmarks/prune_table.py --epochs 1 --ft-epochs 1 --models yolov10n.yaml --ratios 0.3 --name prune_smoke
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__" and not __package__:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import markdown_table  # noqa: E402
from benchmarks._results import save_results  # noqa: E402

MODELS = ("yolov10n.yaml", "yolov10n-LSKA.yaml")
RATIOS = (0.2, 0.3, 0.5)


def latency_ms(model, imgsz: int, runs: int) -> float:
    """Median milliseconds of one forward of the fused model (batch 1, CPU)."""
    import torch

    m = copy.deepcopy(model).cpu().eval().fuse(verbose=False)
    x = torch.zeros(1, 3, imgsz, imgsz)
    times = []
    with torch.inference_mode():
        for i in range(runs + 5):
            t = time.perf_counter()
            m(x)
            if i >= 5:
                times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30, help="training epochs of the unpruned models")
    ap.add_argument("--ft-epochs", type=int, default=10, help="fine-tuning epochs after pruning")
    ap.add_argument("--imgsz", type=int, default=128)
    ap.add_argument("--runs", type=int, default=50, help="timed forwards per latency")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads for the latency")
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--ratios", nargs="+", type=float, default=list(RATIOS))
    ap.add_argument("--name", default="prune_table", help="results name (benchmarks/results/<name>.json)")
    a = ap.parse_args()

    import torch

    from ultralytics import YOLO

    torch.set_num_threads(a.threads)
    train = dict(data="shapes.yaml", imgsz=a.imgsz, batch=16, workers=2, optimizer="AdamW", lr0=0.002, nbs=16,
                 device="cpu", plots=False, seed=0, deterministic=True, exist_ok=True, verbose=False)
    tune = {**train, "lr0": 0.001, "warmup_epochs": 0, "close_mosaic": 0}
    val = dict(data="shapes.yaml", imgsz=a.imgsz, batch=16, device="cpu", plots=False, verbose=False)
    rows, figures = [], {}
    out = Path(tempfile.mkdtemp(prefix="prune_table_"))
    for yaml_name in a.models:
        key = yaml_name.removesuffix(".yaml").replace("-", "_")
        base = YOLO(yaml_name)
        base.train(**train, epochs=a.epochs, project=str(out), name=key)
        base_map = float(base.val(**val).box.map)
        params0 = sum(p.numel() for p in base.model.parameters())
        lat0 = latency_ms(base.model, a.imgsz, a.runs)
        rows.append([yaml_name.removesuffix(".yaml"), "0", f"{params0:,}", round(base_map, 3), "-", round(lat0, 1)])
        figures.update({f"{key}_r0_map": round(base_map, 4), f"{key}_r0_ms": round(lat0, 2)})
        for r in a.ratios:
            m = YOLO(yaml_name)
            m.model = copy.deepcopy(base.model)
            m.model.has_weights = True  # fine-tuning starts from the pruned weights
            report = m.prune(ratio=r, verbose=False)
            pruned_map = float(m.val(**val).box.map)
            m.train(**tune, epochs=a.ft_epochs, project=str(out), name=f"{key}_r{r}")
            tuned_map = float(m.val(**val).box.map)
            lat = latency_ms(m.model, a.imgsz, a.runs)
            tag = f"{key}_r{int(r * 100)}"
            figures.update({f"{tag}_params": report["params"][1], f"{tag}_map_pruned": round(pruned_map, 4),
                            f"{tag}_map_tuned": round(tuned_map, 4), f"{tag}_ms": round(lat, 2)})
            rows.append([yaml_name.removesuffix(".yaml"), str(r), f"{report['params'][1]:,}", round(pruned_map, 3),
                         round(tuned_map, 3), round(lat, 1)])
            print(rows[-1], flush=True)
    figures["table_md"] = markdown_table(
        ["model", "ratio", "parameters", "mAP50-95 after pruning", f"mAP50-95 after {a.ft_epochs} epochs",
         f"CPU ms ({a.imgsz} px, {a.threads} thread)"], rows)
    print(figures["table_md"])
    print(f"wrote {save_results(a.name, figures, vars(a))}")


if __name__ == "__main__":
    main()
