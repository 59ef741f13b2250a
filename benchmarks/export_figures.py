"""Figures of export and deployment: export time and file sizes, ONNX/TorchScript vs PyTorch differences,
the latency table (PyTorch, ONNX Runtime, TorchScript), and video frames/s.

    python benchmarks/export_figures.py                         # CPU, imgsz 640, batch 1 (about 5 min on 2 cores)
    python benchmarks/export_figures.py --imgsz 320 --timed 20 --threads 1

Models are the n, n-LSKA and n-PSALSKA YAMLs with random weights (they run as fast as trained ones). The
exports are dynamic (batch and image size), written to a temporary folder. Differences are measured on a
random image at imgsz; the table goes to runs/benchmark/expN/benchmark.csv as `python benchmark.py` writes it,
and every figure the README quotes to benchmarks/results/export_figures.json.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

MODELS = ("yolov10n.yaml", "yolov10n-LSKA.yaml", "yolov10n-PSALSKA.yaml")


def compact_table(rows: list[dict]) -> str:
    """One row per model: params, GFLOPs and 'median ± std' ms for PyTorch, ONNX Runtime and TorchScript."""
    from benchmarks._common import markdown_table as md

    cols = {"pytorch": "PyTorch ms", "onnx": "ONNX Runtime ms", "torchscript": "TorchScript ms"}
    models: dict[str, dict] = {}
    for r in rows:
        m = models.setdefault(r["model"], {"params": r["params"], "gflops": r["gflops"]})
        m[r["format"]] = f"{r['ms_median']:.1f} ± {r['ms_std']:.1f}"
    return md(["model", "params", "GFLOPs", *cols.values()],
              [[name, f"{m['params']:,}" if isinstance(m["params"], int) else m["params"], f"{float(m['gflops']):.2f}",
                *(m.get(f, "-") for f in cols)] for name, m in models.items()])


def main() -> None:
    from ultralytics import YOLO
    from ultralytics.analysis.benchmark import benchmark, markdown_table
    from ultralytics.engine.exporter import Exporter
    from ultralytics.nn.backend import load_inference_model

    from benchmarks._results import save_results

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--timed", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--video-frames", type=int, default=60)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    tmp = Path(tempfile.mkdtemp(prefix="export_figures_"))
    files, lines, figures = [], [], {}
    seconds, sizes, diffs = {"onnx": [], "torchscript": []}, {"onnx": [], "torchscript": []}, {"onnx": [], "torchscript": []}
    torch.manual_seed(0)
    for name in MODELS:
        model = YOLO(name)
        pt = model.save(tmp / name.replace(".yaml", ".pt"))
        for fmt in ("onnx", "torchscript"):
            ex = Exporter(dict(format=fmt, imgsz=a.imgsz, dynamic=True, device="cpu"))
            f = ex(model.model, pt)
            files.append(f)
            x = torch.rand(2, 3, a.imgsz, a.imgsz, generator=torch.Generator().manual_seed(0))
            fused = copy.deepcopy(model.model).eval().fuse(verbose=False)
            with torch.no_grad():
                y, o = fused(x), load_inference_model(f)(x)
            ds = (y[..., 4] - o[..., 4]).abs().max().item()
            mb = Path(f).stat().st_size / 2**20
            seconds[fmt].append(ex.seconds)
            sizes[fmt].append(mb)
            diffs[fmt].append(ds)
            lines.append(f"{name:24s} {fmt:12s} export {ex.seconds:5.1f} s  size {mb:5.1f} MB"
                         f"  max |score diff| vs PyTorch at batch 2, {a.imgsz}: {ds:.2e}")
    print("\n".join(lines))
    rows = benchmark(list(MODELS) + files, imgsz=a.imgsz, batch=a.batch, device=a.device, warmup_runs=a.warmup,
                     timed_runs=a.timed, verbose=False)
    table = markdown_table(rows)
    print(table)
    figures["latency_table_md"] = table
    figures["latency_compact_md"] = compact_table(rows)
    print(figures["latency_compact_md"])
    for fmt in seconds:
        figures[f"{fmt}_export_s_max"] = round(max(seconds[fmt]), 1)
        figures[f"{fmt}_mb_min"], figures[f"{fmt}_mb_max"] = round(min(sizes[fmt]), 1), round(max(sizes[fmt]), 1)
        worst = max(diffs[fmt])
        figures[f"{fmt}_score_diff_max"] = f"{worst:.0e}" if worst else "0"  # a string: '3e-08' as the README shows it
    # video: predict + annotate + write, yolov10n at imgsz 640, a 640x360 synthetic clip
    import cv2

    clip = tmp / "clip.mp4"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 360))
    rng = np.random.default_rng(0)
    for i in range(a.video_frames):
        im = np.full((360, 640, 3), 90, np.uint8)
        cv2.circle(im, (40 + 9 * i % 600, 180), 30, tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
        w.write(im)
    w.release()
    for f in (files[0].replace(".onnx", ".pt"), files[0]):
        m = YOLO(f)
        t0 = time.perf_counter()
        n = sum(1 for _ in m.predict(str(clip), imgsz=a.imgsz, stream=True, save=True, project=str(tmp / "runs"),
                                     verbose=False))
        dt = time.perf_counter() - t0
        print(f"video {a.video_frames} frames 640x360, {Path(f).suffix} model, save=True: {n / dt:.1f} frames/s")
        figures[f"video_fps_{Path(f).suffix[1:]}"] = round(n / dt, 1)
    print(f"wrote {save_results('export_figures', figures, vars(a))}")


if __name__ == "__main__":
    main()
