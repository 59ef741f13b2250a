"""Training throughput: images/s of the step alone and of whole epochs, and the share of time spent waiting for data.

Each configuration runs in a fresh subprocess on the built-in dataset (400 images), validation and plots off:
- epoch img/s: images per second over the epochs after the first (which includes start-up),
- wait %: of that epoch time, the share the loop spent blocked on the data loader (the input pipeline's cost
  that the workers did not hide),
- step img/s: `steps` training steps (forward, loss, backward, optimizer step, EMA) on one batch already on
  the device, so no data loading at all: the ceiling the input pipeline can be compared with.

    python benchmarks/train_speed.py                                      # CPU, imgsz 320, batch 16
    python benchmarks/train_speed.py --device 0 --imgsz 640 --batch 32 --workers 8 --amp
    python benchmarks/train_speed.py --set compile=True                   # any training setting
    python benchmarks/train_speed.py --root /path/to/other/checkout       # the same measurement of another tree
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(cfg: dict) -> dict:
    """Train cfg['model'] for cfg['epochs'] epochs, timing epochs and loader waits; then time the step alone."""
    sys.path.insert(0, cfg["root"])
    import tempfile

    import torch

    from ultralytics import YOLO
    from ultralytics.data import build as build_mod
    from ultralytics.engine import trainer as trainer_mod
    from ultralytics.utils.torch_utils import autocast, de_parallel

    stamps, waits = [], [0.0]
    real_save, real_iter = trainer_mod.BaseTrainer.save_model, build_mod.InfiniteDataLoader.__iter__

    def stamp(self, epoch, improved, row):
        stamps.append(time.perf_counter())
        waits.append(0.0)
        real_save(self, epoch, improved, row)

    def timed_iter(self):
        it = real_iter(self)
        while True:
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                return
            waits[-1] += time.perf_counter() - t0
            yield batch

    trainer_mod.BaseTrainer.save_model = stamp
    build_mod.InfiniteDataLoader.__iter__ = timed_iter
    settings = dict(data="shapes.yaml", epochs=cfg["epochs"], imgsz=cfg["imgsz"], batch=cfg["batch"],
                    workers=cfg["workers"], device=cfg["device"], val=False, plots=False, close_mosaic=0,
                    optimizer="SGD", amp=cfg["amp"], **cfg["set"])
    with tempfile.TemporaryDirectory() as tmp:
        model = YOLO(cfg["model"])
        t0 = time.perf_counter()
        model.train(project=tmp, name="bench", **settings)
        tr = model.trainer
        n_images = len(tr.train_loader.dataset)
        # the step alone: one batch kept on the device
        batch = tr.preprocess_batch(next(iter(tr.train_loader)))
        crit = getattr(tr, "criterion", None)
        step_model = getattr(tr, "train_model", tr.model)
        if crit is None:  # a tree from before the criterion left the model
            crit = lambda preds, b: de_parallel(tr.model).loss(b, preds)  # noqa: E731
        tr.model.train()

        def step():
            with autocast(tr.amp, tr.device):
                loss, _ = crit(step_model(batch["img"]), batch)
            tr.scaler.scale(loss).backward()
            tr.optimizer_step()

        for _ in range(2):
            step()
        cuda = tr.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        for _ in range(cfg["steps"]):
            step()
        if cuda:
            torch.cuda.synchronize()
        step_s = (time.perf_counter() - t1) / cfg["steps"]
    epochs = [b - a for a, b in zip([t0] + stamps[:-1], stamps)]
    timed = list(zip(epochs, waits[:len(epochs)]))[1:] or list(zip(epochs, waits))
    s_epoch = sum(e for e, _ in timed) / len(timed)
    wait = sum(w for _, w in timed) / len(timed)
    return {"s_epoch": s_epoch, "img_s": n_images / s_epoch, "wait_share": wait / s_epoch,
            "step_img_s": batch["img"].shape[0] / step_s, "first_epoch_s": epochs[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["yolov10n.yaml"])
    ap.add_argument("--imgsz", nargs="+", type=int, default=[320])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=2, help="epochs per configuration (the first is not timed)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps of the step-alone measurement")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    ap.add_argument("--set", nargs="*", default=[], help="more training settings as key=value")
    ap.add_argument("--root", default=str(ROOT), help="the source tree to measure (default: this one)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print("RESULT " + json.dumps(worker(json.loads(a.worker))))
        return
    sys.path.insert(0, a.root)
    from ultralytics.cfg import parse_key_value_args

    extra = parse_key_value_args(a.set)
    print(f"Training speed of {a.root}: batch {a.batch}, {a.workers} workers, device {a.device}, amp {a.amp}, "
          f"built-in dataset (400 images), epochs 2..{a.epochs}, validation off, settings {extra or '-'}\n")
    print("| model | imgsz | epoch img/s | s/epoch | wait % | step img/s | first epoch s |")
    print("|---|---|---|---|---|---|---|")
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    for imgsz in a.imgsz:
        for m in a.models:
            cfg = dict(model=m, imgsz=imgsz, batch=a.batch, epochs=a.epochs, workers=a.workers, device=a.device,
                       amp=a.amp, steps=a.steps, set=extra, root=a.root)
            out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(cfg)], capture_output=True,
                                 text=True, env=env, cwd=a.root)
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(f"| {m} | {imgsz} | failed: {out.stderr.strip().splitlines()[-1:]} |")
                continue
            r = json.loads(line[7:])
            print(f"| {m} | {imgsz} | {r['img_s']:.1f} | {r['s_epoch']:.1f} | {100 * r['wait_share']:.0f} | "
                  f"{r['step_img_s']:.1f} | {r['first_epoch_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
