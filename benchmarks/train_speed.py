"""Training throughput: images/s, s/epoch and peak RSS for yolov10n and yolov10n-LSKA.

Each configuration runs in a fresh subprocess (so peak RSS is its own) on the built-in dataset, with
validation and plots off, and times whole epochs after a warm-up epoch.

    python benchmarks/train_speed.py                       # CPU, imgsz 320 and 640, batch 16
    python benchmarks/train_speed.py --imgsz 320 --epochs 2 --device 0
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(cfg: dict) -> dict:
    """Train cfg['model'] for cfg['epochs'] epochs; return timings of the epochs after the first."""
    sys.path.insert(0, str(ROOT))
    import tempfile

    from ultralytics import YOLO
    from ultralytics.engine import trainer as trainer_mod

    stamps = []
    original = trainer_mod.BaseTrainer.save_model

    def stamp(self, epoch, improved, row):
        stamps.append(time.perf_counter())
        original(self, epoch, improved, row)

    trainer_mod.BaseTrainer.save_model = stamp
    with tempfile.TemporaryDirectory() as tmp:
        model = YOLO(cfg["model"])
        t0 = time.perf_counter()
        model.train(data="shapes.yaml", epochs=cfg["epochs"], imgsz=cfg["imgsz"], batch=cfg["batch"],
                    workers=cfg["workers"], device=cfg["device"], val=False, plots=False, project=tmp,
                    name="bench", verbose=False, close_mosaic=0, optimizer="SGD")
        n_images = len(model.trainer.train_loader.dataset)
    epochs = [b - a for a, b in zip([t0] + stamps[:-1], stamps)]
    timed = epochs[1:] or epochs  # the first epoch includes start-up and warm-up
    s_epoch = sum(timed) / len(timed)
    return {"s_epoch": s_epoch, "img_s": n_images / s_epoch,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "first_epoch_s": epochs[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["yolov10n.yaml", "yolov10n-LSKA.yaml"])
    ap.add_argument("--imgsz", nargs="+", type=int, default=[320, 640])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=2, help="epochs per configuration (the first is not timed)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print("RESULT " + json.dumps(worker(json.loads(a.worker))))
        return
    print(f"Training speed, batch {a.batch}, {a.workers} workers, device {a.device}, built-in dataset "
          f"(400 images), mean of epochs 2..{a.epochs}, validation off\n")
    print("| model | imgsz | images/s | s/epoch | first epoch s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    for imgsz in a.imgsz:
        for m in a.models:
            cfg = dict(model=m, imgsz=imgsz, batch=a.batch, epochs=a.epochs, workers=a.workers, device=a.device)
            out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(cfg)], capture_output=True,
                                 text=True, env=env, cwd=ROOT)
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(f"| {m} | {imgsz} | failed: {out.stderr.strip().splitlines()[-1:]} |")
                continue
            r = json.loads(line[7:])
            print(f"| {m} | {imgsz} | {r['img_s']:.1f} | {r['s_epoch']:.1f} | {r['first_epoch_s']:.1f} | "
                  f"{r['peak_rss_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
