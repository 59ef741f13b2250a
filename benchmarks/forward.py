"""Forward-pass time and peak memory of yolov10n, yolov10n-LSKA and yolov10n-PSALSKA in eval mode.

Every (model, fused, imgsz, batch) configuration runs in its own fresh Python process under
torch.inference_mode: the model is built (and fused), the input (B, 3, imgsz, imgsz) made, one pass run
on a tiny 64x64 image (so the kernels' code pages are resident), then the peak memory growth over that
state is recorded during the first full-size pass (which counts as the first warm-up pass), then the
remaining warm-up and the timed passes run (time: --stat of the timed passes). CPU memory is the
growth of the resident set (Linux VmHWM, reset just before the passes); CUDA memory is
torch.cuda.max_memory_allocated over what was allocated before the passes.

    python benchmarks/forward.py                       # the full CPU run (2.5 min at --threads 1, 2 cores)
    python benchmarks/forward.py --threads 1           # steadier on a machine shared with other jobs
    python benchmarks/forward.py --imgsz 320 --batch 1 --iters 20 --threads 2
    python benchmarks/forward.py --device cuda --iters 50
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks._common import (add_device_args, device_banner, markdown_table, MemoryProbe, run_isolated,
                                script_main, select_device, setup_threads, time_fn)

DEFAULT_MODELS = ("yolov10n", "yolov10n-LSKA", "yolov10n-PSALSKA")
REFERENCE_PIXELS = 640 * 640  # the workload at which --iters/--warmup apply unscaled on CPU
PRIME_SIZE = 64  # a pass at this size before measuring, so code pages faulted in do not count as memory


def model_file(name: str) -> str:
    """'yolov10n-LSKA' -> 'yolov10n-LSKA.yaml' (a name already ending in .yaml/.yml is kept)."""
    return name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"


def build_model(name: str, fused: bool, device: torch.device) -> torch.nn.Module:
    """The DetectionModel for a model name, in eval mode, fused if asked, on `device`."""
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel(model_file(name), verbose=False).eval()
    if fused:
        model.fuse(verbose=False)
    return model.to(device)


def iterations(batch: int, imgsz: int, warmup: int, iters: int, device: torch.device) -> tuple[int, int]:
    """(warmup, timed) passes: on CPU, workloads above batch 1 at 640 get proportionally fewer (min 1 + 2)."""
    scale = batch * imgsz * imgsz / REFERENCE_PIXELS
    if device.type != "cpu" or scale <= 1:
        return warmup, iters
    return max(1, round(warmup / scale)), max(2, round(iters / scale))  # the memory pass is warm-up 1


def measure(cfg: dict) -> dict:
    """Run one configuration in this process: {'ms', 'base_mb', 'peak_mb', 'total_mb', 'exact'}."""
    setup_threads(cfg.get("threads"))
    device = select_device(cfg["device"])
    model = build_model(cfg["model"], cfg["fused"], device)
    x = torch.rand(cfg["batch"], 3, cfg["imgsz"], cfg["imgsz"], generator=torch.Generator().manual_seed(0))
    x = x.to(device)
    with torch.inference_mode():
        model(torch.zeros(1, 3, PRIME_SIZE, PRIME_SIZE, device=device))  # page in kernels' code, small buffers
        with MemoryProbe(device) as mem:  # the first full-size pass: its peak, and the first warm-up pass
            model(x)
        ms = time_fn(lambda: model(x), max(cfg["warmup"] - 1, 0), cfg["iters"], device, cfg["stat"])
    return {"ms": ms, "base_mb": mem.base_mb, "peak_mb": mem.peak_mb, "total_mb": mem.total_mb, "exact": mem.exact}


def model_stats(name: str, fused: bool, imgsz: int) -> tuple[float, float]:
    """(parameters in millions, GFLOPs per image at imgsz) as the model summary line counts them."""
    model = build_model(name, fused, torch.device("cpu"))
    _, n_p, _, gflops = model.info(verbose=False, imgsz=imgsz)
    return n_p / 1e6, gflops


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="model YAML names (with or without .yaml)")
    p.add_argument("--imgsz", nargs="+", type=int, default=[640, 320], help="square input sizes")
    p.add_argument("--batch", nargs="+", type=int, default=[1, 16], help="batch sizes")
    p.add_argument("--iters", type=int, default=10,
                   help="timed passes at batch 1 x 640 (CPU: fewer for larger work)")
    p.add_argument("--warmup", type=int, default=2, help="untimed passes before timing (CPU: scaled like --iters)")
    p.add_argument("--fused", choices=("both", "yes", "no"), default="both", help="fuse Conv+BN (and RepVGGDW)")
    add_device_args(p)
    args = p.parse_args(argv)
    for key in ("imgsz", "batch"):
        if any(v < 1 or (key == "imgsz" and v % 32) for v in getattr(args, key)):
            p.error(f"--{key} values must be positive{' multiples of 32' if key == 'imgsz' else ''}: "
                    f"{getattr(args, key)}")
    if args.iters < 1 or args.warmup < 0:
        p.error(f"--iters must be >= 1 and --warmup >= 0, got {args.iters} and {args.warmup}")
    return args


def main(argv: list[str] | None = None) -> None:
    """Measure every configuration in its own process and print one markdown table."""
    args = parse_args(argv)
    device = select_device(args.device)
    fused_opts = {"both": (False, True), "yes": (True,), "no": (False,)}[args.fused]
    t_start, rows, exact, stats = time.perf_counter(), [], True, {}
    for imgsz in args.imgsz:
        for batch in args.batch:
            warmup, iters = iterations(batch, imgsz, args.warmup, args.iters, device)
            for name in args.models:
                for fused in fused_opts:
                    if (name, fused, imgsz) not in stats:
                        stats[name, fused, imgsz] = model_stats(name, fused, imgsz)
                    params, gflops = stats[name, fused, imgsz]
                    cfg = {"model": name, "fused": fused, "imgsz": imgsz, "batch": batch, "warmup": warmup,
                           "iters": iters, "device": args.device, "threads": args.threads, "stat": args.stat}
                    r = run_isolated(Path(__file__).resolve(), cfg)
                    exact &= r["exact"]
                    row = [name, "yes" if fused else "no", imgsz, batch, round(params, 3), gflops,
                           f"{warmup}+{iters}", r["ms"], r["ms"] / batch, r["base_mb"], r["peak_mb"]]
                    rows.append(row + ([r["total_mb"]] if device.type == "cuda" else []))
                    print(f"  done {name} fused={fused} imgsz={imgsz} batch={batch}: {r['ms']:.1f} ms",
                          file=sys.stderr, flush=True)
    mem = "CUDA max_memory_allocated" if device.type == "cuda" else "resident set (RSS)"
    headers = ["model", "fused", "imgsz", "batch", "params (M)", "GFLOPs/img", "warmup+timed", "ms/batch",
               "ms/img", "base MB", "peak +MB"] + (["peak total MB"] if device.type == "cuda" else [])
    print(f"### Forward pass, eval mode, torch.inference_mode — {device_banner(device, args.threads)}\n")
    approx = "" if exact else " (approximate: the high-water mark could not be reset, ru_maxrss used)"
    notes = [f"Time: the {args.stat} over the timed passes; on CPU, work above batch 1 x 640 gets proportionally "
             f"fewer passes (see warmup+timed), so rows with 2 timed passes are rough.",
             "Each row is a fresh process.",
             f"base MB: {mem} after building the model and input and one 64x64 pass.",
             f"peak +MB: the highest {mem} above base during the first full-size pass (warm-up pass 1){approx}.",
             "GFLOPs/img as the model summary counts them (unfused: both head branches)."]
    print(" ".join(notes) + "\n")
    print(markdown_table(headers, rows))
    print(f"\nTotal wall time {time.perf_counter() - t_start:.0f} s.")


if __name__ == "__main__":
    script_main(__file__, measure, main)
