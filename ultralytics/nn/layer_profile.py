"""The per-layer profile: one line per YAML row (index, from, module, args, output shape, parameters, GFLOPs, ms).

GFLOPs per row are thop's count taken the way the summary line takes it (ultralytics/nn/summary.py
count_flops: eval mode, both head branches run, a stride-size square input, scaled to imgsz by area), with
thop run on each row and its recorded input, so that the products thop counts outside modules (the
attention matmuls) land in the row that ran them and the rows add up to the summary line's total. ms per row is measured on the
model's device with the inference forward (eval mode: the one-to-one branch and its top-k), the median of
`runs` passes after one warm-up.

    YOLO("yolov10n-LSKA.yaml").info(detailed=True)       # the table, then the summary line
    yolo profile model=yolov10n-LSKA.yaml imgsz=640 device=cpu   # ultralytics/analysis/profile.py
"""

from __future__ import annotations

import copy
import statistics
import time

import torch
import torch.nn as nn

from ultralytics.utils import UserError


class _Call(nn.Module):
    """Calls one row on its recorded input (the head with raw=True: the eval forward then runs both branches)."""

    def __init__(self, row: nn.Module, raw: bool):
        super().__init__()
        self.row, self.raw = row, raw

    def forward(self, x):
        return self.row(x, raw=True) if self.raw else self.row(x)


def _hw(imgsz) -> tuple[int, int]:
    if isinstance(imgsz, int) and not isinstance(imgsz, bool):
        return imgsz, imgsz
    if isinstance(imgsz, (list, tuple)) and len(imgsz) in (1, 2):
        return (int(imgsz[0]), int(imgsz[-1]))
    raise UserError(f"imgsz={imgsz!r} must be an int or [h, w]")


def row_gflops(model: nn.Module, imgsz=640, ch: int = 3) -> list[float]:
    """GFLOPs of each row of model.model at imgsz (thop's count; 0.0 each when thop is not installed)."""
    try:
        import thop
    except ImportError:  # pragma: no cover - thop is a listed dependency
        return [0.0] * len(model.model)
    h, w = _hw(imgsz)
    stride = max(int(getattr(model, "stride", torch.tensor([32])).max()), 32)
    m = copy.deepcopy(model).eval()
    head = m.model[-1]
    both = getattr(head, "cv2", None) is not None  # unfused: the one-to-many branch runs too
    p = next(m.parameters())
    inputs = {}
    hooks = [r.register_forward_pre_hook(lambda mod, args: inputs.__setitem__(mod.i, args[0])) for r in m.model]
    with torch.no_grad():
        m(torch.zeros(1, ch, stride, stride, device=p.device, dtype=p.dtype), raw=both)
    for hk in hooks:
        hk.remove()
    scale = (h / stride) * (w / stride)
    out = []
    for r in m.model:  # row by row, so that products thop counts outside modules land in the row that ran them
        with torch.no_grad():
            macs = thop.profile(_Call(r, both and r is head), inputs=(inputs[r.i],), verbose=False)[0]
        out.append(2 * macs / 1e9 * scale)
    return out


def _shape(o) -> str:
    if isinstance(o, torch.Tensor):
        return str(tuple(o.shape))
    if isinstance(o, (list, tuple)) and o and isinstance(o[0], torch.Tensor):
        return "[" + ", ".join(str(tuple(t.shape)) for t in o) + "]"
    return type(o).__name__


def row_times(model: nn.Module, imgsz=640, runs: int = 5, ch: int = 3) -> tuple[list[float], list[str], float]:
    """(median ms of each row, output shape of each row, median ms of the whole forward) on the model's device."""
    h, w = _hw(imgsz)
    p = next(model.parameters())
    dev = p.device
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    x = torch.zeros(1, ch, h, w, device=dev, dtype=p.dtype)
    n = len(model.model)
    start, times, shapes = [0.0] * n, [[] for _ in range(n)], [""] * n
    hooks = []
    for i, m in enumerate(model.model):
        def pre(_m, _inp, i=i):
            sync()
            start[i] = time.perf_counter()

        def post(_m, _inp, out, i=i):
            sync()
            times[i].append((time.perf_counter() - start[i]) * 1e3)
            shapes[i] = _shape(out)

        hooks += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    was_training = model.training
    model.eval()
    total = []
    try:
        with torch.no_grad():
            for k in range(runs + 1):
                t0 = time.perf_counter()
                model(x)
                sync()
                total.append((time.perf_counter() - t0) * 1e3)
    finally:
        for hk in hooks:
            hk.remove()
        model.train(was_training)
    return [statistics.median(t[1:]) for t in times], shapes, statistics.median(total[1:])


def profile_rows(model: nn.Module, imgsz=640, runs: int = 5) -> tuple[list[dict], dict]:
    """(one dict per row: i, from, n, module, args, shape, params, gflops, ms;  totals: params, gflops, ms, forward_ms)."""
    yaml = getattr(model, "yaml", None) or {}
    spec = list(yaml.get("backbone", [])) + list(yaml.get("head", []))
    flops = row_gflops(model, imgsz)
    ms, shapes, fwd = row_times(model, imgsz, runs)
    rows = []
    for i, m in enumerate(model.model):
        f, n, name, args = spec[i] if i < len(spec) else (getattr(m, "f", -1), 1, type(m).__name__, [])
        rows.append({"i": i, "from": getattr(m, "f", f), "n": n, "module": getattr(m, "type", name), "args": args,
                     "shape": shapes[i], "params": sum(p.numel() for p in m.parameters()), "gflops": flops[i],
                     "ms": ms[i]})
    totals = {"params": sum(r["params"] for r in rows), "gflops": sum(flops), "ms": sum(ms), "forward_ms": fwd}
    return rows, totals


def profile_table(model: nn.Module, imgsz=640, runs: int = 5) -> str:
    """The per-row table as text, with a totals line (ms on the model's device, batch 1, imgsz)."""
    rows, totals = profile_rows(model, imgsz, runs)
    return format_table(rows, totals, imgsz, next(model.parameters()).device, runs)


def format_table(rows: list[dict], tot: dict, imgsz, device, runs: int) -> str:
    """Text of profile_rows' output: a title, one line per row, a totals line."""
    h, w = _hw(imgsz)
    head = f"{'':>3} {'from':>14} {'n':>2} {'params':>10} {'GFLOPs':>7} {'ms':>7}  {'module':<16} {'output':<26} args"
    lines = [f"Per-layer profile at {h}x{w}, batch 1, {device} (ms: median of {runs} inference passes; GFLOPs: "
             f"thop, both head branches)", head]
    for r in rows:
        lines.append(f"{r['i']:>3} {str(r['from']):>14} {r['n']:>2} {r['params']:>10,} {r['gflops']:>7.3f} "
                     f"{r['ms']:>7.2f}  {r['module']:<16} {r['shape']:<26} {r['args']}")
    lines.append(f"{'total':>3} {'':>14} {'':>2} {tot['params']:>10,} {tot['gflops']:>7.3f} {tot['ms']:>7.2f}  "
                 f"(whole forward {tot['forward_ms']:.2f} ms)")
    return "\n".join(lines)
