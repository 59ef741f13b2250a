"""The cost of one `model.predict(image)` call against the forward pass alone, and under CPU load with and without
OMP_WAIT_POLICY=PASSIVE (issue 24 item 5, issue 26 item 6).

One 512x640 BGR image (random pixels), yolov10n with random weights (speed does not depend on them), batch 1,
imgsz 320 and 640. Each configuration runs in a fresh process:

- Each figure is the lowest of --rounds medians, the configurations interleaved (other jobs' load bursts then hit
  every configuration alike, and the quietest round of each is kept).
- predict: median wall time of `model.predict(im, imgsz=s, verbose=False)` over --calls calls, after --warmup calls
  (the first call, which prepares the model, is reported apart as first_call_ms).
- forward: median time of the fused model's forward alone on the letterboxed input (1, 3, 256, 320) / (1, 3, 512,
  640), the floor a predict call cannot go below; overhead = predict - forward.
- --base DIR also measures the tree at DIR (e.g. the base commit, `git archive ca600b2 | tar -x -C DIR`): before the
  prepared-model cache, its predictor ran the unfused model on fewer than 32 images.
- --load: one busy Python loop per core runs while predict at 320 is measured, twice: the package imported before
  torch (it sets OMP_WAIT_POLICY=PASSIVE) and torch imported first with the variable unset (OpenMP's default
  spin-waiting threads: what a user's script got before the package set it).

    python benchmarks/predict_call.py --base /tmp/base --load --save    # writes benchmarks/results/predict_call.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (512, 640)  # the image: letterboxed to (256, 320) at imgsz 320 and (512, 640) at 640, no padding


def worker(cfg: dict) -> dict:
    """One configuration in this process: cfg = tree, imgsz, calls, warmup, threads, torch_first."""
    sys.path.insert(0, cfg["tree"])
    import warnings

    warnings.simplefilter("ignore")
    if cfg["torch_first"]:
        import torch  # noqa: F401 - before the package: it cannot set OMP_WAIT_POLICY any more
    from ultralytics import YOLO  # before torch otherwise: the package sets OMP_WAIT_POLICY=PASSIVE

    import copy

    import numpy as np
    import torch

    torch.set_num_threads(cfg["threads"])
    model = YOLO("yolov10n.yaml")
    im = np.random.default_rng(0).integers(0, 255, (*SHAPE, 3), dtype=np.uint8)
    s = cfg["imgsz"]
    t0 = time.perf_counter()
    model.predict(im, imgsz=s, verbose=False)
    first = time.perf_counter() - t0
    for _ in range(cfg["warmup"]):
        model.predict(im, imgsz=s, verbose=False)
    predict = []
    for _ in range(cfg["calls"]):
        t0 = time.perf_counter()
        model.predict(im, imgsz=s, verbose=False)
        predict.append(time.perf_counter() - t0)
    fused = copy.deepcopy(model.model).eval().fuse(verbose=False)
    x = torch.rand(1, 3, SHAPE[0] * s // SHAPE[1], s)
    forward = []
    with torch.no_grad():
        for i in range(cfg["warmup"] + cfg["calls"]):
            t0 = time.perf_counter()
            fused(x)
            if i >= cfg["warmup"]:
                forward.append(time.perf_counter() - t0)
    return {"first_call_ms": first * 1e3, "predict_ms": statistics.median(predict) * 1e3,
            "forward_ms": statistics.median(forward) * 1e3, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}


def run(cfg: dict, load: bool = False) -> dict:
    """worker(cfg) in a fresh process with OMP_WAIT_POLICY unset (the package or nobody sets it), optionally beside
    one busy loop per core."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)] \
        if load else []
    try:
        out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(cfg)], env=env, cwd=cfg["tree"],
                             capture_output=True, text=True, timeout=1800)
    finally:
        for p in busy:
            p.kill()
            p.wait()
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode or not lines:
        raise RuntimeError(f"worker failed for {cfg}:\n{out.stderr[-2000:]}")
    return json.loads(lines[-1][7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="", help="another tree to measure the same way (e.g. the base commit)")
    ap.add_argument("--calls", type=int, default=30, help="timed calls per configuration (median)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="rounds over all configurations; the lowest median is kept")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    ap.add_argument("--load-threads", type=int, default=os.cpu_count() or 1,
                    help="torch threads for --load (all cores: OpenMP threads wait on each other there)")
    ap.add_argument("--load", action="store_true", help="also measure predict at 320 beside busy loops")
    ap.add_argument("--save", action="store_true", help="write benchmarks/results/predict_call.json")
    a = ap.parse_args()
    trees = {"this": str(ROOT), **({"base": str(Path(a.base).resolve())} if a.base else {})}
    figures, rows, best = {}, [], {}
    for _ in range(a.rounds):  # the trees interleaved, the fastest median kept: other jobs' bursts fall on all
        for label, tree in trees.items():
            for s in (320, 640):
                cfg = dict(tree=tree, imgsz=s, calls=a.calls, warmup=a.warmup, threads=a.threads, torch_first=False)
                r = run(cfg)
                old = best.get((label, s))
                best[(label, s)] = {k: min(v, old[k]) if old else v for k, v in r.items() if k.endswith("_ms")}
    for label in trees:
        for s in (320, 640):
            r = best[(label, s)]
            over = r["predict_ms"] - r["forward_ms"]
            figures.update({f"{label}_{s}_predict_ms": round(r["predict_ms"], 1),
                            f"{label}_{s}_forward_ms": round(r["forward_ms"], 1),
                            f"{label}_{s}_overhead_ms": round(over, 1),
                            f"{label}_{s}_first_call_ms": round(r["first_call_ms"], 1)})
            rows.append(f"| {label} | {s} | {r['predict_ms']:.1f} | {r['forward_ms']:.1f} | {over:.1f} | "
                        f"{r['first_call_ms']:.0f} |")
            print(rows[-1], flush=True)
    table = "\n".join(["| tree | imgsz | predict ms | forward ms | overhead ms | first call ms |",
                       "|---|---:|---:|---:|---:|---:|", *rows])
    figures["table_md"] = table
    if a.load:
        for _ in range(a.rounds):
            for name, torch_first in (("passive", False), ("unset", True)):
                cfg = dict(tree=str(ROOT), imgsz=320, calls=a.calls, warmup=a.warmup, threads=a.load_threads,
                           torch_first=torch_first)
                r = run(cfg, load=True)
                key = f"load_320_{name}_predict_ms"
                figures[key] = round(min(r["predict_ms"], figures.get(key, float("inf"))), 1)
                print(f"under load, {name} (OMP_WAIT_POLICY={r['omp_wait_policy']}): predict at 320 "
                      f"{r['predict_ms']:.1f} ms", flush=True)
    print(table)
    if a.save:
        sys.path.insert(0, str(ROOT))
        from benchmarks._results import save_results

        print(save_results("predict_call", figures, {**vars(a), "image": list(SHAPE), "model": "yolov10n"}))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--worker":
        print("RESULT " + json.dumps(worker(json.loads(sys.argv[2]))), flush=True)
    else:
        main()
