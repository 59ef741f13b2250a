"""Cost of each attention module at scale n: LSKA and the baselines after rows 16, 19, 22 of yolov10n.

For each module, the model insert_rows("yolov10n.yaml", module, [], after=[16, 19, 22]) builds is summarised
as the summary line prints it (parameters, GFLOPs at 640) and set against the plain yolov10n; the three
module rows alone are timed on their 640-input feature maps ((64, 80, 80), (128, 40, 40), (256, 20, 20)),
batch 1, the median of --iters passes, summed. GFLOPs are thop's count of module operations as the summary
line counts them: elementwise products, poolings written as tensor methods and matmuls in forward code
count zero, so SimAM's cost is all in the time column. The table goes to benchmarks/results/attention_cost.json
(docs/11-attention-baselines.md cites it).

    python benchmarks/attention_cost.py --threads 1        # ~1 min on a loaded 2-core machine
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks._common import device_banner, markdown_table, setup_threads, time_fn
from benchmarks._results import save_results

MODULES = ("LSKA", "SE", "CBAM", "ECA", "CoordAtt", "SimAM", "EMA", "LKA", "TripletAttention")
AFTER = (16, 19, 22)
IMGSZ = 640


def model_cost(cfg) -> tuple[object, int, float]:
    """(model, parameters, GFLOPs at 640) of a model YAML or dict, as the summary line prints them."""
    from ultralytics.nn.tasks import DetectionModel

    m = DetectionModel(cfg, verbose=False)
    _, params, _, gflops = m.info(verbose=False, imgsz=IMGSZ)
    return m, params, gflops


def rows_ms(model, rows: list[int], iters: int) -> float:
    """Summed median ms of the given rows, each run alone on its input recorded from a 640x640 image."""
    inputs = {}
    hooks = [model.model[i].register_forward_pre_hook(lambda mod, a: inputs.__setitem__(mod.i, a[0])) for i in rows]
    model.eval()
    with torch.inference_mode():
        model(torch.zeros(1, 3, IMGSZ, IMGSZ))
        for h in hooks:
            h.remove()
        return sum(time_fn(lambda i=i: model.model[i](inputs[i]), 3, iters) for i in rows)


def main(argv: list[str] | None = None) -> None:
    from ultralytics.nn.yaml_edit import insert_rows

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--iters", type=int, default=20, help="timed passes per module row")
    p.add_argument("--threads", type=int, default=None, help="torch threads (1 is steadier on a shared machine)")
    args = p.parse_args(argv)
    setup_threads(args.threads)
    t0 = time.perf_counter()
    _, base_p, base_g = model_cost("yolov10n.yaml")
    figures, table = {"base_params": base_p, "base_gflops": round(base_g, 3)}, []
    for name in MODULES:
        d = insert_rows("yolov10n.yaml", name, [], list(AFTER))
        model, params, gflops = model_cost(d)
        rows = [i + k + 1 for k, i in enumerate(AFTER)]  # 17, 21, 25
        ms = rows_ms(model, rows, args.iters)
        table.append([name, params - base_p, round(gflops - base_g, 3), round(ms, 2), params, round(gflops, 2)])
        figures.update({f"{name}.d_params": params - base_p, f"{name}.d_gflops": round(gflops - base_g, 3),
                        f"{name}.ms": round(ms, 2)})
        print(f"  {name}: +{params - base_p:,} parameters, +{gflops - base_g:.3f} GFLOPs, {ms:.2f} ms", file=sys.stderr)
    headers = ["module", "Δ params", "Δ GFLOPs", "module ms (3 rows)", "model params", "model GFLOPs"]
    figures["table_md"] = markdown_table(headers, table)
    print(f"### Attention modules after rows 16, 19, 22 of yolov10n (imgsz {IMGSZ}, batch 1) — "
          f"{device_banner(torch.device('cpu'), args.threads)}\n")
    print(figures["table_md"])
    print(f"\nTotal wall time {time.perf_counter() - t0:.0f} s.")
    save_results("attention_cost", figures, {"iters": args.iters, "threads": args.threads, "imgsz": IMGSZ,
                                             "after": list(AFTER), "base": "yolov10n.yaml"})


if __name__ == "__main__":
    main()
