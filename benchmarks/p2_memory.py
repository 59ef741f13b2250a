"""The memory cost of a P2 level: yolov10{n,s} against yolov10{n,s}-p2 at 640 and 1280, one training step on the CPU.

    python benchmarks/p2_memory.py      # about 15 minutes on 2 busy cores; writes benchmarks/results/p2_memory.json

Per (model, imgsz), in a fresh process each (so the peak RSS is that run's own), batch 1:
- act_mb: the forward activations, the bytes of every row's output in a training-mode forward (float32);
- saved_mb: the tensors autograd keeps for the backward pass of one training step (forward + the v10 detection
  loss on 8 boxes per image), counted once per storage: what a training step must hold, deterministic;
- peak_mb: the process's peak RSS during that step minus its RSS before it (allocator and thread effects
  included: a noisier figure than saved_mb);
- gflops: GFLOPs at that size (the summary's 640 figure times (imgsz / 640)^2).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__" and not __package__:
    sys.path.insert(0, str(ROOT))

from benchmarks._results import save_results  # noqa: E402

MODELS = ("yolov10n", "yolov10n-p2", "yolov10s", "yolov10s-p2")
SIZES = (640, 1280)
BATCH = 1  # batch 2 doubles every figure but act and params; 1 keeps the 1280 s runs to minutes on 2 busy cores


def measure(model_name: str, imgsz: int, batch: int = BATCH) -> dict:
    """One (model, imgsz) in this process: act_mb, saved_mb, peak_mb, gflops (see the module docstring)."""
    import resource

    import torch

    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.loss import v10DetectLoss

    torch.manual_seed(0)
    m = DetectionModel(f"{model_name}.yaml", verbose=False).train()
    gflops = m.info(verbose=False)[3] * (imgsz / 640) ** 2
    x = torch.rand(batch, 3, imgsz, imgsz)
    g = torch.Generator().manual_seed(0)
    n = 8 * batch
    xy = torch.rand(n, 2, generator=g) * 0.8 + 0.1
    wh = torch.rand(n, 2, generator=g) * 0.08 + 0.01
    labels = {"batch_idx": torch.arange(batch).repeat_interleave(8).float(), "cls": torch.zeros(n, 1),
              "bboxes": torch.cat((xy, wh), 1)}
    criterion = v10DetectLoss(m.model[-1], get_cfg())

    sizes: list[int] = []

    def _add(o):
        ts = [o] if isinstance(o, torch.Tensor) else [t for v in (o.values() if isinstance(o, dict) else o)
                                                       for t in (v if isinstance(v, list) else [v])]
        sizes.extend(t.numel() * t.element_size() for t in ts if isinstance(t, torch.Tensor))

    hooks = [r.register_forward_hook(lambda mod, i, o: _add(o)) for r in m.model]
    saved: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        saved[s.data_ptr()] = s.nbytes()
        return t

    rss0 = _rss_mb()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss, _ = criterion(m(x), labels)
    loss.backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    for h in hooks:
        h.remove()
    return {"act_mb": round(sum(sizes) / 2**20, 1), "saved_mb": round(sum(saved.values()) / 2**20, 1),
            "peak_mb": round(peak - rss0, 0), "gflops": round(gflops, 1)}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def main() -> None:
    figures: dict = {}
    lines = ["| model | imgsz | GFLOPs | forward activations (MB) | kept for backward (MB) | step peak RSS (MB) |",
             "|---|---:|---:|---:|---:|---:|"]
    for imgsz in SIZES:
        for name in MODELS:
            code = (f"import torch; torch.set_num_threads(1); import json, sys; sys.path.insert(0, {str(ROOT)!r}); "
                    f"from benchmarks.p2_memory import measure; print(json.dumps(measure({name!r}, {imgsz})))")
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            key = f"{name.replace('-', '_')}_{imgsz}"
            figures.update({f"{key}_{k}": v for k, v in r.items()})
            lines.append(f"| {name} | {imgsz} | {r['gflops']:.1f} | {r['act_mb']:.1f} | {r['saved_mb']:.1f} | "
                         f"{r['peak_mb']:.0f} |")
            print(lines[-1], flush=True)
    for s in "ns":
        for imgsz in SIZES:
            b, p = f"yolov10{s}_{imgsz}", f"yolov10{s}_p2_{imgsz}"
            figures[f"{s}_{imgsz}_saved_ratio"] = round(figures[f"{p}_saved_mb"] / figures[f"{b}_saved_mb"], 2)
            figures[f"{s}_{imgsz}_act_ratio"] = round(figures[f"{p}_act_mb"] / figures[f"{b}_act_mb"], 2)
    figures["table_md"] = "\n".join(lines)
    print(f"wrote {save_results('p2_memory', figures, {'batch': BATCH, 'sizes': list(SIZES), 'device': 'cpu'})}")


if __name__ == "__main__":
    main()
