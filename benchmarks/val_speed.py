"""Validation throughput (images/s) and prediction latency (ms/image) of yolov10n and yolov10n-LSKA.

Random weights (speed does not depend on them; the one-to-one head always returns its top 300 boxes, so
matching and metrics work on full-size outputs), the built-in shapes dataset (val split, 256-416 px images),
imgsz 640 and 320. Every (model, imgsz) runs in its own fresh process:

- val: DetectionValidator over the first --val-images val images (rect batches of --batch, --workers loader
  processes, no plots), after one untimed warm-up pass over a single batch. Reported: images/s of the whole
  pass (wall clock, loading included), the validator's own ms/image split, and the ms/image it waited for
  the loader (0 = the loader kept up).
- predict: DetectionPredictor (fused model) on --predict-images val image files at batch 1 (latency) and
  batch 8 (throughput), after one warm-up call; ms/image of wall time (reading included) and of the forward
  pass alone.

    python benchmarks/val_speed.py                          # CPU, torch's default threads
    python benchmarks/val_speed.py --threads 1 --workers 2  # steadier on a machine shared with other jobs
    python benchmarks/val_speed.py --device cuda --val-images 100 --predict-images 64
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as train.py: spinning OpenMP threads stall on shared cores

from benchmarks._common import (add_device_args, device_banner, emit_result, markdown_table,  # noqa: E402
                                run_isolated, select_device, setup_threads, worker_config)

DEFAULT_MODELS = ("yolov10n", "yolov10n-LSKA")


def _subset_data(n: int, tmp: Path) -> tuple[dict, list[str]]:
    """(the shapes dataset dict with 'val' = a .txt list of its first n val images, those image paths)."""
    from ultralytics.data import check_det_dataset
    from ultralytics.data.utils import get_img_files

    data = check_det_dataset("shapes.yaml")
    files = get_img_files(data["val"])[:n]
    tmp.mkdir(exist_ok=True)
    (tmp / "val.txt").write_text("\n".join(files) + "\n")
    return {**data, "val": str(tmp / "val.txt")}, files


def measure(cfg: dict) -> dict:
    """One (model, imgsz) configuration: validation and prediction timings."""
    from ultralytics.models.yolo.detect import DetectionPredictor, DetectionValidator
    from ultralytics.nn.tasks import DetectionModel

    setup_threads(cfg["threads"])
    device = select_device(cfg["device"])
    model = DetectionModel(f"{cfg['model']}.yaml", nc=6, verbose=False).eval()
    common = dict(imgsz=cfg["imgsz"], device=str(device) if device.type == "cuda" else "cpu", verbose=False)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data, files = _subset_data(cfg["val_images"], tmp)
        warm, _ = _subset_data(cfg["batch"], tmp / "warm")
        val_args = dict(batch=cfg["batch"], workers=cfg["workers"], plots=False, project=str(tmp), **common)
        v = DetectionValidator(overrides=val_args)
        v.data = warm
        v(model=model)  # warm-up: one batch
        v = DetectionValidator(overrides=val_args)
        v.data = data
        t0 = time.perf_counter()
        metrics = v(model=model)
        wall = time.perf_counter() - t0
        out = {"val_img_s": v.seen / wall, "val_ms": metrics.speed, "val_wait_ms": v.dataloader_wait,
               "val_seen": v.seen}
        pred_files = files[: cfg["predict_images"]]
        fused = model.fuse(verbose=False)  # as the validator and large predictions use it
        for bs in (1, 8):
            p = DetectionPredictor(overrides=dict(batch=bs, **common))
            p(source=pred_files[:bs], model=fused)  # warm-up
            t0 = time.perf_counter()
            res = p(source=pred_files, model=fused)
            out[f"pred{bs}_ms"] = (time.perf_counter() - t0) * 1e3 / len(res)
            out[f"pred{bs}_inf_ms"] = sum(r.speed["inference"] for r in res) / len(res)
    return out


def main(argv: list[str]) -> None:
    cfg = worker_config(argv)
    if cfg is not None:
        emit_result(measure(cfg))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    ap.add_argument("--imgsz", nargs="+", type=int, default=[640, 320])
    ap.add_argument("--batch", type=int, default=16, help="validation batch size")
    ap.add_argument("--workers", type=int, default=2, help="validation loader worker processes")
    ap.add_argument("--val-images", type=int, default=48, help="val images per validation pass (<= 100)")
    ap.add_argument("--predict-images", type=int, default=16, help="images per prediction run")
    add_device_args(ap)
    a = ap.parse_args(argv)
    device = select_device(a.device)
    rows = []
    for name in a.models:
        for imgsz in a.imgsz:
            cfg = dict(model=name, imgsz=imgsz, batch=a.batch, workers=a.workers, val_images=a.val_images,
                       predict_images=a.predict_images, device=a.device, threads=a.threads)
            r = run_isolated(__file__, cfg)
            s = r["val_ms"]
            rows.append([name, imgsz, r["val_img_s"], s["preprocess"], s["inference"], s["postprocess"],
                         r["val_wait_ms"], r["pred1_ms"], r["pred1_inf_ms"], r["pred8_ms"], r["pred8_inf_ms"]])
            print(f"done {name} {imgsz}: {r['val_img_s']:.1f} img/s val, {r['pred1_ms']:.1f} ms/img predict",
                  flush=True)
    print(f"\n{device_banner(device, a.threads)}; val: {a.val_images} images, batch {a.batch}, "
          f"{a.workers} workers; predict: {a.predict_images} images\n")
    print(markdown_table(
        ["model", "imgsz", "val img/s", "val pre ms", "val infer ms", "val post ms", "val wait ms",
         "predict b1 ms/img", "b1 infer ms", "predict b8 ms/img", "b8 infer ms"], rows))


if __name__ == "__main__":
    main(sys.argv[1:])
