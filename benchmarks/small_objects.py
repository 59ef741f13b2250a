"""The small-object study (issue 24 item 6): whole scenes at 640, sliced validation, P2, and training on tiles.

On the built-in small-shapes data (scenes of 2000-4000 px with 200-600 shapes of 6-30 px; made at a reduced
scene count in --out), for each seed, from scratch and at an EQUAL TRAINING BUDGET:

  whole          yolov10n trained on whole scenes letterboxed to imgsz, validated unsliced (full scenes at imgsz)
  whole_sliced   the same weights validated sliced (slice, overlap) on the full-size val scenes
  p2             yolov10n-p2 trained and validated as `whole`
  tiles_sliced   yolov10n trained on tiles of the train scenes (`convert_dataset(tile=slice)`), validated sliced
  tiles_on_tiles the same weights validated unsliced on the tiles of the val scenes (tiles are cut per split)

The budget is the number of training images seen (= optimizer steps: batch images per step and nbs=batch, one
step per batch), every image fed at the same imgsz, so every run does the same forward/backward work per step
(P2 aside: it costs more per step, which its wall time shows). Whole-scene runs see n_train scenes for `epochs`
epochs. The tile run sees the same number of tile images: a random subset (per seed) of the train scenes' tiles,
for as few epochs as make up the budget. The learning rate is constant (lrf=1, no warmup), so a run's schedule
does not depend on its epoch count and the only difference between `whole` and `tiles_*` is what the images are.
Mosaic is off by default (--mosaic 1 turns it on for every run): a mosaic of four whole scenes holds ~1500
objects shrunk to 1-6 px, while a tile's mosaic holds tile-sized objects, so mosaic would change the two arms
unequally. Validation keeps boxes down to conf 0.001 with max_det 1000
(scenes hold up to 600 objects); sliced validation therefore merges by NMS/IOU (sliced.py, as SAHI does).

At the default budget (400 images = 200 steps per run: 2-6 minutes of a 2-core CPU per training, about 12
minutes per seed) the models are far from trained: absolute mAP is low, and only the comparison between rows,
against the seed-to-seed spread, says anything.

    OMP_NUM_THREADS=2 python benchmarks/small_objects.py --threads 2 --out /tmp/small_objects   # results/small_objects.json
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import markdown_table  # noqa: E402
from benchmarks._results import save_results  # noqa: E402

NAMES = ["circle", "square", "triangle", "cross"]  # cfg/datasets/small-shapes.yaml
ROWS = {  # key -> (model, trained on, validated on, sliced?)
    "whole": ("yolov10n", "whole scenes", "whole scenes", False),
    "whole_sliced": ("yolov10n", "whole scenes", "whole scenes", True),
    "p2": ("yolov10n-p2", "whole scenes", "whole scenes", False),
    "tiles_sliced": ("yolov10n", "tiles", "whole scenes", True),
    "tiles_on_tiles": ("yolov10n", "tiles", "val tiles", False),
}
METRICS = ("map50", "map", "map_small")
DEFAULTS = dict(n_train=8, n_val=2, epochs=50, imgsz=640, slice=640, overlap=0.2, batch=2, seeds=[0, 1, 2],
                lr0=0.002, mosaic=0.0, rows=list(ROWS), data_seed=0)


def make_data(out: Path, n_train: int, n_val: int, tile: int, overlap: float, seed: int = 0) -> dict:
    """Generate the scenes (<out>/small-shapes) and their tiles (<out>/small-tiles, split kept per scene).

    -> {'scenes': data YAML, 'tiles': data YAML, 'tiles_root', 'n_tiles_train', 'val_boxes' (labels of the val
    scenes), 'val_images'}.
    """
    import yaml

    from ultralytics.data.convert import convert_dataset
    from ultralytics.data.utils import check_det_dataset

    out.mkdir(parents=True, exist_ok=True)
    scenes = out / "small-shapes.yaml"
    d = {"path": str(out / "small-shapes"), "train": "images/train", "val": "images/val", "builtin": "small-shapes",
         "builtin_args": {"n_train": n_train, "n_val": n_val, "seed": seed}, "names": dict(enumerate(NAMES))}
    scenes.write_text(yaml.safe_dump(d, sort_keys=False))
    check_det_dataset(str(scenes))  # generates the scenes (once per settings)
    tiles_root = out / "small-tiles"
    shutil.rmtree(tiles_root, ignore_errors=True)
    tiles = convert_dataset(str(out / "small-shapes"), str(tiles_root), tile=tile, tile_overlap=overlap,
                            names=NAMES, seed=seed)
    val_labels = sorted((out / "small-shapes" / "labels" / "val").glob("*.txt"))
    return {"scenes": str(scenes), "tiles": str(tiles), "tiles_root": str(tiles_root),
            "n_tiles_train": len(list((tiles_root / "images" / "train").iterdir())),
            "val_boxes": sum(len(f.read_text().split("\n")) - 1 for f in val_labels), "val_images": len(val_labels)}


def tile_budget(images_seen: int, n_tiles: int) -> tuple[int, int]:
    """(epochs, tiles per epoch) of the tile run: the fewest epochs over a subset of at most n_tiles tiles whose
    epochs x tiles equals images_seen (or falls short of it by less than one epoch's rounding)."""
    if n_tiles < 1:
        raise ValueError("the train scenes gave no tiles")
    epochs = math.ceil(images_seen / n_tiles)
    return epochs, images_seen // epochs


def tile_subset(data: dict, k: int, seed: int, out: Path) -> str:
    """A data YAML whose train split is k tiles drawn at random (seed) from the train tiles (hard links), val
    the val tiles."""
    import yaml

    root = Path(data["tiles_root"])
    files = sorted((root / "images" / "train").iterdir())
    pick = random.Random(seed).sample(files, k)
    sub = out / f"tiles-subset-s{seed}"
    shutil.rmtree(sub, ignore_errors=True)
    for kind in ("images", "labels"):
        (sub / kind / "train").mkdir(parents=True)
    for f in pick:
        lab = root / "labels" / "train" / (f.stem + ".txt")
        for src, dst in ((f, sub / "images" / "train" / f.name), (lab, sub / "labels" / "train" / lab.name)):
            if src.exists():
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copy2(src, dst)
    y = out / f"tiles-subset-s{seed}.yaml"
    y.write_text(yaml.safe_dump({"path": str(sub), "train": "images/train", "val": str(root / "images" / "val"),
                                 "names": dict(enumerate(NAMES))}, sort_keys=False))
    return str(y)


def train(model: str, data: str, epochs: int, cfg: dict, seed: int, project: Path, name: str) -> tuple[str, float]:
    """Train `model` from scratch; -> (last.pt, seconds). Settings equal for every run but data and epochs."""
    from ultralytics import YOLO

    t0 = time.perf_counter()
    YOLO(f"{model}.yaml").train(data=data, epochs=epochs, imgsz=cfg["imgsz"], batch=cfg["batch"], nbs=cfg["batch"],
                                optimizer="AdamW", lr0=cfg["lr0"], lrf=1.0, warmup_epochs=0, mosaic=cfg["mosaic"],
                                workers=0, device="cpu", plots=False, val=False, seed=seed, deterministic=True,
                                project=str(project), name=name, exist_ok=True, verbose=False, tensorboard=False)
    return str(project / name / "weights" / "last.pt"), time.perf_counter() - t0


def validate(weights: str, data: str, cfg: dict, sliced: bool, project: Path, name: str) -> dict:
    """Score weights on data's val split (sliced or not) -> mAP50, mAP50-95, mAP_small, seconds, images, boxes."""
    from ultralytics import YOLO

    seen = {}
    model = YOLO(weights)
    model.add_callback("on_val_end", lambda v: seen.update(images=int(v.seen), boxes=int(v.nt_per_class.sum())))
    extra = {"slice": cfg["slice"], "overlap": cfg["overlap"]} if sliced else {}
    t0 = time.perf_counter()
    m = model.val(data=data, imgsz=cfg["imgsz"], batch=cfg["batch"], workers=0, device="cpu", plots=False,
                  max_det=1000, project=str(project), name=name, exist_ok=True, verbose=False, **extra)
    return {"map50": float(m.box.map50), "map": float(m.box.map), "map_small": float(m.box.map_small),
            "val_s": time.perf_counter() - t0, **seen}


def run_seed(cfg: dict, data: dict, seed: int, out: Path) -> dict:
    """Every row of ROWS (those in cfg['rows']) for one seed -> {row: scores + train_s, val_s}."""
    rows, proj = cfg["rows"], out / "runs"
    seen_images = cfg["epochs"] * cfg["n_train"]
    res: dict = {}
    if {"whole", "whole_sliced"} & set(rows):
        pt, ts = train("yolov10n", data["scenes"], cfg["epochs"], cfg, seed, proj, f"whole-s{seed}")
        for r in ("whole", "whole_sliced"):
            if r in rows:
                res[r] = {**validate(pt, data["scenes"], cfg, r == "whole_sliced", proj, f"val-{r}-s{seed}"),
                          "train_s": ts}
    if "p2" in rows:
        pt, ts = train("yolov10n-p2", data["scenes"], cfg["epochs"], cfg, seed, proj, f"p2-s{seed}")
        res["p2"] = {**validate(pt, data["scenes"], cfg, False, proj, f"val-p2-s{seed}"), "train_s": ts}
    if {"tiles_sliced", "tiles_on_tiles"} & set(rows):
        epochs, k = tile_budget(seen_images, data["n_tiles_train"])
        sub = tile_subset(data, k, seed, out)
        pt, ts = train("yolov10n", sub, epochs, cfg, seed, proj, f"tiles-s{seed}")
        if "tiles_sliced" in rows:
            res["tiles_sliced"] = {**validate(pt, data["scenes"], cfg, True, proj, f"val-tiles_sliced-s{seed}"),
                                   "train_s": ts}
        if "tiles_on_tiles" in rows:
            res["tiles_on_tiles"] = {**validate(pt, sub, cfg, False, proj, f"val-tiles_on_tiles-s{seed}"),
                                     "train_s": ts}
    return res


def study(out: str | Path, **overrides) -> dict:
    """Run the study (DEFAULTS <- overrides) in `out` -> {'settings', 'data', 'runs': {seed: {row: ...}},
    'figures'} (figures: flat numbers and the markdown table, as save_results takes them)."""
    cfg = {**DEFAULTS, **overrides}
    bad = sorted(set(overrides) - set(DEFAULTS))
    if bad:
        raise ValueError(f"unknown study settings {bad}; known: {sorted(DEFAULTS)}")
    out = Path(out).resolve()
    t0 = time.perf_counter()
    data = make_data(out, cfg["n_train"], cfg["n_val"], cfg["slice"], cfg["overlap"], cfg["data_seed"])
    runs = {}
    for seed in cfg["seeds"]:
        runs[seed] = run_seed(cfg, data, seed, out)
        print(f"seed {seed}: " + ", ".join(f"{r} mAP50 {v['map50']:.4f}" for r, v in runs[seed].items()), flush=True)
    figs = figures(cfg, data, runs, time.perf_counter() - t0)
    return {"settings": cfg, "data": {k: v for k, v in data.items() if k not in ("scenes", "tiles", "tiles_root")},
            "runs": runs, "figures": figs}


COMPARISONS = [("whole_sliced", "whole"), ("p2", "whole"), ("tiles_sliced", "whole"), ("tiles_sliced", "whole_sliced")]


def figures(cfg: dict, data: dict, runs: dict, wall_s: float) -> dict:
    """Flat figures: per row the mean and std over seeds of each metric ({row}_{metric}, {row}_{metric}_std), mean
    train and val seconds, the images and boxes its validation scored; Welch p of mAP50 for COMPARISONS
    (p_{a}_vs_{b}, 'n/a' with one seed); the budget; the markdown table."""
    from ultralytics.compare.stats import spread, welch_test

    epochs, k = tile_budget(cfg["epochs"] * cfg["n_train"], data["n_tiles_train"])
    figs: dict = {"images_seen": cfg["epochs"] * cfg["n_train"], "steps": cfg["epochs"] * math.ceil(
        cfg["n_train"] / cfg["batch"]), "tile_epochs": epochs, "tiles_per_epoch": k, "tile_steps": epochs * math.ceil(
        k / cfg["batch"]), "tiles_train": data["n_tiles_train"], "val_scenes": data["val_images"],
        "val_boxes": data["val_boxes"], "seeds": len(runs), "wall_min": round(wall_s / 60, 1)}
    rows = []
    present = [r for r in ROWS if all(r in v for v in runs.values()) and runs]
    for r in present:
        per = [runs[s][r] for s in runs]
        cells = []
        for m in METRICS:
            sp = spread([p[m] for p in per])
            figs[f"{r}_{m}"] = round(sp.mean, 4)
            figs[f"{r}_{m}_std"] = round(sp.std, 4) if math.isfinite(sp.std) else "n/a"
            cells.append(sp.text(4))
        figs[f"{r}_train_s"] = round(sum(p["train_s"] for p in per) / len(per), 1)
        figs[f"{r}_val_s"] = round(sum(p["val_s"] for p in per) / len(per), 1)
        figs[f"{r}_images"], figs[f"{r}_boxes"] = per[0].get("images", -1), per[0].get("boxes", -1)
        model, trained, on, sliced = ROWS[r]
        rows.append([r, model, trained, on + (f" sliced {cfg['slice']}/{cfg['overlap']}" if sliced else
                                               f" at {cfg['imgsz']}"), *cells, round(figs[f"{r}_train_s"]),
                     round(figs[f"{r}_val_s"])])
    figs["table_md"] = markdown_table(["run", "model", "trained on", "validated on", "mAP50", "mAP50-95",
                                       "mAP_small", "train s", "val s"], rows)
    for a, b in COMPARISONS:
        if a in present and b in present:
            x, y = [runs[s][b]["map50"] for s in runs], [runs[s][a]["map50"] for s in runs]
            p = welch_test(x, y)[1] if len(runs) >= 2 else math.nan
            figs[f"p_{a}_vs_{b}"] = round(p, 3) if math.isfinite(p) else "n/a"
    return figs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/small_objects", help="study folder: scenes, tiles, runs")
    ap.add_argument("--n-train", type=int, default=DEFAULTS["n_train"], help="train scenes")
    ap.add_argument("--n-val", type=int, default=DEFAULTS["n_val"], help="val scenes")
    ap.add_argument("--epochs", type=int, default=DEFAULTS["epochs"], help="epochs of the whole-scene runs")
    ap.add_argument("--imgsz", type=int, default=DEFAULTS["imgsz"])
    ap.add_argument("--slice", type=int, default=DEFAULTS["slice"], help="slice of validation and tile of training")
    ap.add_argument("--overlap", type=float, default=DEFAULTS["overlap"])
    ap.add_argument("--batch", type=int, default=DEFAULTS["batch"], help="batch size, and nbs (a step per batch)")
    ap.add_argument("--seeds", nargs="+", type=int, default=DEFAULTS["seeds"])
    ap.add_argument("--mosaic", type=float, default=DEFAULTS["mosaic"], help="mosaic probability of every run")
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--save", default="small_objects", help="results name ('' = do not write the JSON)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    res = study(args.out, n_train=args.n_train, n_val=args.n_val, epochs=args.epochs, imgsz=args.imgsz,
                slice=args.slice, overlap=args.overlap, batch=args.batch, seeds=args.seeds, rows=args.rows,
                mosaic=args.mosaic)
    print(res["figures"]["table_md"])
    print({k: v for k, v in res["figures"].items() if k != "table_md"})
    if args.save:
        settings = {**res["settings"], "data": res["data"], "threads": args.threads,
                    "per_seed": {str(s): {r: {m: round(v[m], 4) for m in METRICS} for r, v in rr.items()}
                                 for s, rr in res["runs"].items()}}
        print(save_results(args.save, res["figures"], settings, script="small_objects.py"))


if __name__ == "__main__":
    main()
