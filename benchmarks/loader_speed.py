"""Training-loader throughput: images per second delivered after the collate (uint8 tensors ready for the model).

Each configuration runs in a fresh subprocess: the train dataset and loader are built as the trainer builds them
(default settings, seed 0), then two passes over the data are timed:
- cold: the first pass, including worker start-up and the first decode of every image (the OS file cache is not
  dropped: that needs root),
- warm: the second pass (workers alive, files in the OS cache).
With cache=ram the seconds and memory of filling the cache are reported apart (the dataset build holds them).

Datasets: `big` is a generated set of 1920x1080 JPEGs (photo-like: gradients, shapes, grain; quality 90) written
once under datasets/loader_bench_1920x1080 (git-ignored); any other value is a data YAML (e.g. shapes.yaml, the
built-in dataset). `--roots A B` measures other source trees (e.g. a checkout of an older commit) with the same
script, interleaved round by round (A B A B ...) so that they share the machine's load; the table gives each
tree's mean and the ratio of the last tree to the first.

    python benchmarks/loader_speed.py                                        # big set, mosaic, batch 32, 2 workers
    python benchmarks/loader_speed.py --data big shapes.yaml --cache none ram --mosaic 1 0
    python benchmarks/loader_speed.py --roots /tmp/base . --rounds 2 --save  # before/after, writes the JSON
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIG = ROOT / "datasets" / "loader_bench_1920x1080"
FIELDS = ("data", "mosaic", "cache", "tree", "round", "images", "cold_img_s", "warm_img_s", "cpu_ms_img", "cache_s",
          "cache_mb")


def make_big_dataset(n: int, root: Path = BIG, seed: int = 0) -> Path:
    """Write n 1920x1080 JPEGs with YOLO labels under root (once) and return the data YAML's path."""
    import cv2
    import numpy as np

    yaml_file = root / "data.yaml"
    img_dir, lb_dir = root / "images" / "train", root / "labels" / "train"
    if yaml_file.is_file() and len(list(img_dir.glob("*.jpg"))) == n:
        return yaml_file
    img_dir.mkdir(parents=True, exist_ok=True)
    lb_dir.mkdir(parents=True, exist_ok=True)
    for old in img_dir.glob("*.jpg"):
        old.unlink()
    rng = np.random.default_rng(seed)
    h, w = 1080, 1920
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for k in range(n):
        a, b, c = rng.uniform(0.5, 4, 3)
        img = np.stack([np.sin(xx / w * a * 3 + c) * 60 + 120, np.cos(yy / h * b * 3) * 50 + 110,
                        (xx + yy) / (w + h) * 120 + 60], 2)
        rows = []
        for _ in range(int(rng.integers(2, 9))):
            bw, bh = rng.uniform(60, 500, 2)
            x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            colour = rng.uniform(0, 255, 3).tolist()
            if rng.random() < 0.5:
                cv2.rectangle(img, (int(x0), int(y0)), (int(x0 + bw), int(y0 + bh)), colour, -1)
            else:
                cv2.ellipse(img, (int(x0 + bw / 2), int(y0 + bh / 2)), (int(bw / 2), int(bh / 2)), 0, 0, 360,
                            colour, -1)
            rows.append(f"{int(rng.integers(0, 3))} {(x0 + bw / 2) / w:.6f} {(y0 + bh / 2) / h:.6f} "
                        f"{bw / w:.6f} {bh / h:.6f}")
        img = img + rng.normal(0, 6, img.shape).astype(np.float32)  # sensor grain: realistic JPEG sizes
        img = cv2.GaussianBlur(np.clip(img, 0, 255).astype(np.uint8), (3, 3), 0)
        cv2.imwrite(str(img_dir / f"{k:05d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        (lb_dir / f"{k:05d}.txt").write_text("\n".join(rows) + "\n")
    tmp = yaml_file.with_suffix(".yaml.tmp")
    tmp.write_text(f"path: {root}\ntrain: images/train\nval: images/train\nnames: {{0: a, 1: b, 2: c}}\n")
    os.replace(tmp, yaml_file)
    return yaml_file


def worker(cfg: dict) -> dict:
    """Build the train loader of cfg['root'] as the trainer does and time a cold and a warm pass."""
    sys.path.insert(0, cfg["root"])
    from ultralytics.cfg import get_cfg
    from ultralytics.data.build import build_dataloader, build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset, get_img_files

    data = check_det_dataset(cfg["data"])
    n_files = len(get_img_files(data["train"]))
    frac = min(1.0, cfg["images"] / n_files) if cfg["images"] else 1.0
    extra = {"augment_device": cfg["augment_device"]} if cfg.get("augment_device") else {}
    args = get_cfg(overrides=dict(imgsz=cfg["imgsz"], mosaic=cfg["mosaic"], cache=cfg["cache"] or False,
                                  seed=0, fraction=frac, workers=cfg["workers"], **extra))
    t0 = time.perf_counter()
    ds = build_yolo_dataset(args, data["train"], cfg["batch"], data, "train")
    cache_s = time.perf_counter() - t0 if cfg["cache"] else 0.0
    ims = [im for im in getattr(ds, "ims", []) if im is not None]
    cache_mb = sum(im.nbytes for im in ims) / 2**20
    loader = build_dataloader(ds, cfg["batch"], cfg["workers"], shuffle=True, seed=0)
    rates, n_all = [], 0
    cpu0 = _cpu_seconds()
    for epoch in range(2):
        t = time.perf_counter()
        loader.set_epoch(epoch)
        n = 0
        for batch in loader:
            n += int(batch["img"].shape[0])
        rates.append(n / (time.perf_counter() - t))
        n_all += n
    if hasattr(loader._it, "_shutdown_workers"):
        loader._it._shutdown_workers()  # joins the workers: their CPU time now counts as finished children's
    cpu_ms = 1000 * (_cpu_seconds() - cpu0) / n_all
    return {"images": len(ds), "cold_img_s": rates[0], "warm_img_s": rates[1], "cpu_ms_img": cpu_ms,
            "cache_s": cache_s, "cache_mb": cache_mb}


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its finished (joined) children, e.g. loader workers."""
    import resource

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def run_one(cfg: dict, in_process: bool = False) -> dict:
    """Run worker(cfg) in a fresh Python process (cwd: the measured tree), or here, and return its result."""
    if in_process:
        return worker(cfg)
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(cfg)],
                         capture_output=True, text=True, env=env, cwd=cfg["root"])
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"loader benchmark worker failed for {cfg}:\n{(out.stderr or out.stdout)[-2000:]}")
    return json.loads(line[7:])


def summarise(rows: list[dict], trees: list[str]) -> tuple[list[list], dict]:
    """Mean per (data, mosaic, cache, tree) over rounds -> table rows and flat figures (ratio last/first tree)."""
    from statistics import mean

    keys = sorted({(r["data"], r["mosaic"], r["cache"]) for r in rows}, key=lambda k: (k[0], -k[1], k[2]))
    table, figures = [], {}
    for d, m, c in keys:
        per = {}
        for tree in trees:
            sel = [r for r in rows if (r["data"], r["mosaic"], r["cache"], r["tree"]) == (d, m, c, tree)]
            per[tree] = {f: mean(r[f] for r in sel) for f in ("cold_img_s", "warm_img_s", "cpu_ms_img", "cache_mb")}
            tag = f"{d}_{'mosaic' if m else 'plain'}_{c}_{tree}"
            figures[f"{tag}_warm"] = round(per[tree]["warm_img_s"], 1)
            figures[f"{tag}_cold"] = round(per[tree]["cold_img_s"], 1)
            figures[f"{tag}_cpu_ms"] = round(per[tree]["cpu_ms_img"], 1)
            if c == "ram":
                figures[f"{tag}_cache_mb"] = round(per[tree]["cache_mb"], 1)
        ratio = cpu_ratio = None
        if len(trees) > 1:  # per-round ratios (same minutes, same load), then their mean
            pairs = [[[r for r in rows if (r["data"], r["mosaic"], r["cache"], r["tree"], r["round"]) ==
                       (d, m, c, t, k)] for t in (trees[0], trees[-1])] for k in sorted({r["round"] for r in rows})]
            ratio = mean(b[0]["warm_img_s"] / a[0]["warm_img_s"] for a, b in pairs if a and b)
            cpu_ratio = mean(a[0]["cpu_ms_img"] / b[0]["cpu_ms_img"] for a, b in pairs if a and b)
            figures[f"{d}_{'mosaic' if m else 'plain'}_{c}_ratio"] = round(ratio, 2)
            figures[f"{d}_{'mosaic' if m else 'plain'}_{c}_cpu_ratio"] = round(cpu_ratio, 2)
        for tree in trees:
            p = per[tree]
            last = ratio is not None and tree == trees[-1]
            table.append([d, "on" if m else "off", c, tree, round(p["cold_img_s"], 1), round(p["warm_img_s"], 1),
                          round(p["cpu_ms_img"], 1), round(p["cache_mb"], 1) if c == "ram" else "-",
                          f"{ratio:.2f}x" if last else "-", f"{cpu_ratio:.2f}x" if last else "-"])
    return table, figures


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", default=["big"], help="'big' (generated 1920x1080 JPEGs) or data YAMLs")
    ap.add_argument("--big-images", type=int, default=512, help="images in the generated set")
    ap.add_argument("--images", type=int, default=0, help="use only the first N images of each dataset (0: all)")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", nargs="+", default=["none"], choices=["none", "ram"])
    ap.add_argument("--mosaic", nargs="+", type=float, default=[1.0], help="mosaic probabilities to measure")
    ap.add_argument("--roots", nargs="+", default=[str(ROOT)], help="source trees to measure, interleaved")
    ap.add_argument("--names", nargs="+", help="a short name per root for the table (default: folder names)")
    ap.add_argument("--augment-device", nargs="+", help="augment_device per root (e.g. '' cuda: the loader then "
                    "sends canvases and parameters; the batched augmentation itself is not timed here)")
    ap.add_argument("--name", default="loader_speed", help="results name for --save")
    ap.add_argument("--rounds", type=int, default=1, help="rounds over all configurations and trees")
    ap.add_argument("--csv", default=str(ROOT / "runs" / "loader_speed.csv"), help="CSV of every run")
    ap.add_argument("--save", action="store_true", help="write benchmarks/results/loader_speed.json")
    ap.add_argument("--in-process", action="store_true", help="measure in this process (this tree only; tests)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        print("RESULT " + json.dumps(worker(json.loads(a.worker))), flush=True)
        return
    roots = [str(Path(r).resolve()) for r in a.roots]
    names = a.names or [Path(r).name for r in roots]
    aug = a.augment_device or [""] * len(roots)
    if len(names) != len(roots) or len(aug) != len(roots):
        sys.exit("loader_speed.py: error: give one --names (and --augment-device) entry per --roots entry")
    if a.in_process and roots != [str(ROOT)]:
        sys.exit("loader_speed.py: error: --in-process measures this tree only (no --roots)")
    datas = {d: str(make_big_dataset(a.big_images)) if d == "big" else d for d in a.data}
    rows = []
    print(f"Loader speed: imgsz {a.imgsz}, batch {a.batch}, {a.workers} workers, "
          f"load average {os.getloadavg()[0]:.1f} on {len(os.sched_getaffinity(0))} CPUs", flush=True)
    for k in range(a.rounds):
        for d, path in datas.items():
            for m in a.mosaic:
                for c in a.cache:
                    order = list(zip(roots, names, aug))
                    for root, name, dev in (order if k % 2 == 0 else order[::-1]):  # A B, then B A: no order bias
                        cfg = dict(root=root, data=path, imgsz=a.imgsz, batch=a.batch, workers=a.workers,
                                   mosaic=m, cache="" if c == "none" else c, images=a.images, augment_device=dev)
                        r = run_one(cfg, a.in_process)
                        rows.append({"data": Path(d).stem, "mosaic": m, "cache": c, "tree": name, "round": k, **r})
                        print(f"round {k} {d} mosaic={m} cache={c} {name}: cold {r['cold_img_s']:.1f} img/s, "
                              f"warm {r['warm_img_s']:.1f} img/s", flush=True)
    out = Path(a.csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, out)
    sys.path.insert(0, str(ROOT))
    from benchmarks._common import markdown_table

    table, figures = summarise(rows, names)
    md = markdown_table(["data", "mosaic", "cache", "tree", "cold img/s", "warm img/s", "CPU ms/img", "cache MB",
                         "warm ratio", "CPU ratio"], table)
    print("\n" + md + f"\n\nCSV: {out}")
    if a.save:
        from benchmarks._results import save_results

        figures["table_md"] = md
        figures["loadavg_1m"] = round(os.getloadavg()[0], 2)
        save_results(a.name, figures, dict(vars(a), roots=names, csv=None))


if __name__ == "__main__":
    main()
