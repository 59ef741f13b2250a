"""LSKA versus 2-D large kernel attention (LKA) of the same receptive field, for k in 7 ... 53.

For each kernel size k (geometry (k0, k1, d) from LSKA_GEOMETRY) and each neck level of yolov10n-LSKA
(channels and feature size read off the model at --imgsz), it reports parameters, GFLOPs (2 x MACs,
counted by ultralytics.nn.summary.count_flops on the module alone), time (--stat of the timed passes)
and peak memory of LSKA(dim, k) and LKA(dim, k). Time and memory: a fresh process per (module, k, level).
It ends with least-squares fits of growth in k: LSKA's depthwise cost is linear in k, LKA's quadratic.
The tables and fits go to benchmarks/results/lska_scaling.json (docs/11-attention-baselines.md cites them).

    python benchmarks/lska_scaling.py --threads 1         # 1.5 to 7 min (machine load); 1 thread is steadier
    python benchmarks/lska_scaling.py --iters 50 --device cuda
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from benchmarks._common import (add_device_args, device_banner, markdown_table, MemoryProbe, run_isolated,
                                script_main, select_device, setup_threads, time_fn)
from benchmarks._results import save_results
from ultralytics.nn.Addmodules.LKA import LKA  # VAN's LKA; LKA(dim, k) takes LSKA's geometry for k
from ultralytics.nn.Addmodules.LSKA import LSKA, LSKA_GEOMETRY, lska_geometry

KERNELS = (7, 11, 23, 35, 41, 53)
PRIME_SIZE = 16  # a pass at this size before measuring, so code pages faulted in do not count as memory

MODULES = {"LSKA": LSKA, "LKA": LKA}


def neck_levels(imgsz: int) -> list[tuple[int, int, int]]:
    """(channels, H, W) at the input of each LSKA of yolov10n-LSKA for a (1, 3, imgsz, imgsz) image."""
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolov10n-LSKA.yaml", verbose=False).eval()
    seen: list[tuple[int, int, int]] = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape[1:])))
             for m in model.modules() if isinstance(m, LSKA)]
    with torch.inference_mode():
        model(torch.zeros(1, 3, imgsz, imgsz))
    for h in hooks:
        h.remove()
    return seen


def measure(cfg: dict) -> dict:
    """Time and peak memory of one module in this process: {'ms', 'peak_mb', 'exact'}."""
    setup_threads(cfg.get("threads"))
    device = select_device(cfg["device"])
    module = MODULES[cfg["module"]](cfg["dim"], cfg["k"]).eval().to(device)
    x = torch.rand(1, cfg["dim"], cfg["h"], cfg["w"], generator=torch.Generator().manual_seed(0)).to(device)
    with torch.inference_mode():
        module(torch.zeros(1, cfg["dim"], PRIME_SIZE, PRIME_SIZE, device=device))  # page in the kernels' code
        with MemoryProbe(device) as mem:  # the first full-size pass: its peak, and the first warm-up pass
            module(x)
        ms = time_fn(lambda: module(x), max(cfg["warmup"] - 1, 0), cfg["iters"], device, cfg["stat"])
    return {"ms": ms, "peak_mb": mem.peak_mb, "exact": mem.exact}


def static_cost(name: str, dim: int, k: int, h: int, w: int) -> tuple[int, float]:
    """(parameters, GFLOPs) of module `name` at input (1, dim, h, w), counted as the model summary does."""
    from ultralytics.nn.summary import count_flops

    module = MODULES[name](dim, k)
    return sum(p.numel() for p in module.parameters()), count_flops(module, (h, w), ch=dim)


def depthwise_per_channel(name: str, k: int) -> int:
    """Parameters per channel of the k-dependent depthwise convs (weights + biases; the 1x1 conv excluded)."""
    k0, k1, _ = lska_geometry(k)
    return 2 * (k0 + 1) + 2 * (k1 + 1) if name == "LSKA" else (k0 * k0 + 1) + (k1 * k1 + 1)


def growth_lines(kernels: list[int], results: dict) -> list[str]:
    """Least-squares growth fits in k of the depthwise parameters per channel and the GFLOPs and times."""
    if len(kernels) < 3:
        return ["(the growth fits need at least 3 kernel sizes)"]
    ks = np.array(kernels, dtype=float)
    lines = []

    def r2(y: np.ndarray, deg: int) -> tuple[np.ndarray, float]:
        coef = np.polyfit(ks, y, deg)
        res = y - np.polyval(coef, ks)
        return coef, 1 - float(res @ res) / float(((y - y.mean()) ** 2).sum())

    def exponent(y: np.ndarray) -> float:
        return float(np.polyfit(np.log(ks), np.log(y), 1)[0])

    pc = {n: np.array([depthwise_per_channel(n, k) for k in kernels], dtype=float) for n in MODULES}
    for n in MODULES:
        (b, a), r2_lin = r2(pc[n], 1)
        (c, _, _), r2_quad = r2(pc[n], 2)
        lines.append(f"{n} depthwise params per channel vs k: linear fit {a:.1f} + {b:.2f}*k (R^2 {r2_lin:.4f}); "
                     f"quadratic fit k^2 coefficient {c:.4f} (R^2 {r2_quad:.4f}); log-log exponent "
                     f"{exponent(pc[n]):.2f}.")
    ratio = ", ".join(f"k={k}: {q:.1f}x" for k, q in zip(kernels, pc["LKA"] / pc["LSKA"]))
    lines.append(f"Depthwise params (and depthwise FLOPs per pixel) LKA/LSKA: {ratio}.")
    for level, rows in results.items():
        g = {n: np.array([rows[k][n]["gflops"] for k in kernels]) for n in MODULES}
        t = {n: np.array([rows[k][n]["ms"] for k in kernels]) for n in MODULES}
        (gb, _), gr2 = r2(g["LSKA"], 1)
        (gc, _, _), gq2 = r2(g["LKA"], 2)
        lines.append(f"{level}: GFLOPs slope LSKA {gb * 1e3:.3f} MFLOPs per unit k (linear R^2 {gr2:.4f}); "
                     f"LKA k^2 coefficient {gc * 1e3:.4f} MFLOPs (quadratic R^2 {gq2:.4f}); "
                     f"GFLOPs ratio LKA/LSKA {g['LKA'][0] / g['LSKA'][0]:.2f}x at k={kernels[0]} -> "
                     f"{g['LKA'][-1] / g['LSKA'][-1]:.2f}x at k={kernels[-1]}; time ratio "
                     f"{t['LKA'][0] / t['LSKA'][0]:.2f}x -> {t['LKA'][-1] / t['LSKA'][-1]:.2f}x.")
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--k", nargs="+", type=int, default=list(KERNELS), help=f"kernel sizes, of {list(LSKA_GEOMETRY)}")
    p.add_argument("--imgsz", type=int, default=640, help="image size whose neck levels are measured")
    p.add_argument("--iters", type=int, default=20, help="timed passes per module")
    p.add_argument("--warmup", type=int, default=3, help="untimed passes before timing")
    add_device_args(p)
    args = p.parse_args(argv)
    bad = [k for k in args.k if k not in LSKA_GEOMETRY]
    if bad:
        p.error(f"--k {bad} not supported; choose from {list(LSKA_GEOMETRY)}")
    if args.iters < 1 or args.warmup < 0 or args.imgsz < 32 or args.imgsz % 32:
        p.error("--iters must be >= 1, --warmup >= 0 and --imgsz a positive multiple of 32")
    return args


def main(argv: list[str] | None = None) -> None:
    """Measure LSKA and LKA at every (level, k), print one table per neck level and the growth fits."""
    args = parse_args(argv)
    device = select_device(args.device)
    kernels = sorted(set(args.k))
    t_start, exact, results, tables = time.perf_counter(), True, {}, []
    for dim, h, w in neck_levels(args.imgsz):
        level = f"{dim} ch at {h}x{w}"
        results[level], rows = {}, []
        for k in kernels:
            res = {}
            for name in MODULES:
                params, gflops = static_cost(name, dim, k, h, w)
                cfg = {"module": name, "dim": dim, "k": k, "h": h, "w": w, "warmup": args.warmup,
                       "iters": args.iters, "device": args.device, "threads": args.threads, "stat": args.stat}
                r = run_isolated(Path(__file__).resolve(), cfg)
                exact &= r["exact"]
                res[name] = {"params": params, "gflops": gflops, **r}
            results[level][k] = res
            s, l = res["LSKA"], res["LKA"]
            rows.append([k, "({}, {}, {})".format(*lska_geometry(k)), s["params"], l["params"],
                         l["params"] / s["params"], s["gflops"], l["gflops"], l["gflops"] / s["gflops"],
                         s["ms"], l["ms"], l["ms"] / s["ms"], s["peak_mb"], l["peak_mb"]])
            print(f"  done {level} k={k}", file=sys.stderr, flush=True)
        tables.append((level, rows))
    mem = "CUDA max_memory_allocated" if device.type == "cuda" else "RSS high-water mark"
    print(f"### LSKA vs LKA (same receptive field) at the yolov10n-LSKA neck levels, imgsz {args.imgsz}, "
          f"batch 1 — {device_banner(device, args.threads)}\n")
    approx = "" if exact else " (approximate: the high-water mark could not be reset)"
    notes = [f"Time: the {args.stat} of {args.iters} timed passes after {args.warmup} warm-up passes, "
             f"torch.inference_mode, a fresh process per cell.",
             f"peak +MB: {mem} growth during the first full-size pass (warm-up pass 1) over the state with module "
             f"and input built and one 16x16 pass run{approx}.",
             "GFLOPs = 2 x conv MACs (bias counted, the gating product x*attn not), as the model summary counts."]
    print(" ".join(notes))
    headers = ["k", "(k0, k1, d)", "LSKA params", "LKA params", "params LKA/LSKA", "LSKA GFLOPs", "LKA GFLOPs",
               "GFLOPs LKA/LSKA", "LSKA ms", "LKA ms", "ms LKA/LSKA", "LSKA peak +MB", "LKA peak +MB"]
    figures = {}
    for level, rows in tables:
        print(f"\n#### {level}\n")
        figures[f"table_c{level.split()[0]}"] = markdown_table(headers, rows)
        print(figures[f"table_c{level.split()[0]}"])
    print("\nGrowth in k:")
    growth = [f"- {line}" for line in growth_lines(kernels, results)]
    print("\n".join(growth))
    figures["growth_md"] = "\n".join(growth)
    figures["notes"] = " ".join(notes)
    print(f"\nTotal wall time {time.perf_counter() - t_start:.0f} s.")
    save_results("lska_scaling", figures, {**vars(args), "device_banner": device_banner(device, args.threads)})


if __name__ == "__main__":
    script_main(__file__, measure, main)
