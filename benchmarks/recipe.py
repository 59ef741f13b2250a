"""The recipe study: the classic vs the scheduled YOLOv10 dual-assignment loss (setting v10_loss), same settings.

For each dataset (the built-in 'shapes' and the second built-in 'icons', each made at a reduced size in
--out), each recipe and each seed, one training run from scratch in its own process, scored by the
project's validator (one-to-one head) on that dataset's val split: the final results.csv row (the trainer
validates the final epoch's EMA weights, the weights last.pt holds), or with --rescore each last.pt again
after training. The table prints mean ± std (sample std over seeds) of mAP50-95 and mAP50 per dataset and recipe, with Welch's t-test
p-value (scipy) for the difference of the mAP50-95 means. Results go to <out>/results.json as runs finish,
so an interrupted study continues where it stopped; --score-only re-scores the saved last.pt files (e.g.
with a newer validator) without training.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/recipe.py --out runs/recipe --jobs 2     # the study (defaults)
    python benchmarks/recipe.py --out runs/recipe --score-only                              # re-score last.pt
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import markdown_table, run_isolated, script_main  # noqa: E402
from benchmarks._results import save_results  # noqa: E402

DATASETS = {"shapes": "shapes.yaml", "icons": "icons.yaml"}  # study name -> the shipped data YAML it shrinks
RECIPES = ("classic", "scheduled")


def study_yaml(out: Path, name: str, n_train: int, n_val: int) -> Path:
    """Write <out>/data/<name>.yaml: the shipped YAML's classes and generator, n_train/n_val images under <out>."""
    import yaml

    from ultralytics.data.utils import check_det_dataset

    shipped = yaml.safe_load((ROOT / "ultralytics" / "cfg" / "datasets" / DATASETS[name]).read_text())
    d = {"path": str((out / "datasets" / name).resolve()), "train": "images/train", "val": "images/val",
         "builtin": shipped["builtin"], "builtin_args": {"n_train": n_train, "n_val": n_val, "seed": 0},
         "names": shipped["names"]}
    f = out / "data" / f"{name}.yaml"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(yaml.safe_dump(d, sort_keys=False))
    check_det_dataset(str(f))  # generate it now, once, before the runs start in parallel
    return f


def train_settings(args, data: Path, recipe: str, seed: int, project: Path) -> dict:
    """The settings of one run: identical for both recipes except v10_loss."""
    return dict(data=str(data), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, nbs=args.batch, optimizer="AdamW",
                lr0=0.002, workers=0, device="cpu", plots=False, val=False, close_mosaic=args.close_mosaic,
                seed=seed, deterministic=True, v10_loss=recipe, project=str(project), name=f"{recipe}-s{seed}",
                exist_ok=True, verbose=False)


def worker(cfg: dict) -> dict:
    """Train one run (cfg['settings']) in this process; return its final results.csv row and wall time."""
    import csv

    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from ultralytics import YOLO

    t0 = time.time()
    YOLO(cfg["model"]).train(**cfg["settings"])
    run = Path(cfg["settings"]["project"]) / cfg["settings"]["name"]
    with open(run / "results.csv") as f:
        last = list(csv.DictReader(f))[-1]
    return {"run": str(run), "train_s": time.time() - t0, "final_row": {k: float(v) for k, v in last.items()}}


def score(last_pt: str, data: str, imgsz: int, project: Path) -> dict:
    """Validate a last.pt on its dataset's val split: mAP50-95, mAP50, P, R of the one-to-one head."""
    from ultralytics import YOLO

    m = YOLO(last_pt).val(data=data, imgsz=imgsz, batch=16, workers=0, device="cpu", plots=False, verbose=False,
                          project=str(project), name="val", exist_ok=True)
    return {"map": float(m.box.map), "map50": float(m.box.map50), "mp": float(m.box.mp), "mr": float(m.box.mr)}


def welch_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances) for mean(a) != mean(b); nan when undefined."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def table(results: dict, key: str = "map") -> str:
    """Markdown table: per dataset and recipe, mean ± std over seeds of mAP50-95 and mAP50; Welch p per dataset."""
    rows = []
    for name in DATASETS:
        per = {r: [v for v in results.values() if v["dataset"] == name and v["recipe"] == r and "score" in v]
               for r in RECIPES}
        if not all(per.values()):
            continue
        maps = {r: [v["score"][key] for v in per[r]] for r in RECIPES}
        p = welch_p(maps["classic"], maps["scheduled"])
        for r in RECIPES:
            m50 = [v["score"]["map50"] for v in per[r]]
            rows.append([name, r, len(per[r]), _pm(maps[r]), _pm(m50),
                         " ".join(f"{x:.3f}" for x in maps[r]), f"{p:.3f}" if r == "scheduled" else ""])
    return markdown_table(["dataset", "recipe", "seeds", "mAP50-95", "mAP50", "mAP50-95 per seed",
                           "Welch p (mAP50-95)"], rows)


def _pm(xs: list[float]) -> str:
    """'mean ± sample std' with 3 decimals (std 0 for a single value)."""
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.fmean(xs):.3f} ± {sd:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/recipe", help="study folder: datasets, runs, results.json")
    ap.add_argument("--model", default="yolov10n.yaml")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--close-mosaic", type=int, default=5, help="epochs at the end trained without mosaic")
    ap.add_argument("--imgsz", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8, help="batch size, and nbs (one optimizer step per batch)")
    ap.add_argument("--n-train", type=int, default=128, help="train images per dataset")
    ap.add_argument("--n-val", type=int, default=60, help="val images per dataset")
    ap.add_argument("--jobs", type=int, default=2, help="runs at once (each in its own process)")
    ap.add_argument("--save", metavar="NAME", default="",
                    help="write benchmarks/results/NAME.json (the table, means, p-values, wall time) for the docs")
    ap.add_argument("--score-only", action="store_true", help="re-score the saved last.pt files; no training")
    ap.add_argument("--rescore", action="store_true",
                    help="score each last.pt again with the validator after training (default: the final results.csv "
                         "row, which the trainer's validator wrote for the final epoch's EMA weights, as last.pt holds)")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    res_file = out / "results.json"
    results = json.loads(res_file.read_text()) if res_file.exists() else {}
    lock = threading.Lock()

    def save() -> None:
        with lock:
            tmp = res_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(results, indent=1))
            tmp.replace(res_file)

    yamls = {n: study_yaml(out, n, args.n_train, args.n_val) for n in args.datasets}
    if not args.score_only:
        todo = []
        for name in args.datasets:
            for seed in args.seeds:
                for recipe in RECIPES:
                    key = f"{name}/{recipe}-s{seed}"
                    if key not in results:
                        cfg = {"model": args.model,
                               "settings": train_settings(args, yamls[name], recipe, seed, out / "runs" / name)}
                        todo.append((key, name, recipe, seed, cfg))

        def one(item) -> None:
            key, name, recipe, seed, cfg = item
            r = run_isolated(__file__, cfg, timeout=3600)
            r.update(dataset=name, recipe=recipe, seed=seed, settings=cfg["settings"], model=args.model)
            with lock:
                results[key] = r
            save()
            print(f"{key}: trained in {r['train_s']:.0f} s, final row mAP50-95 {r['final_row']['metrics/mAP50-95(B)']:.4f}",
                  flush=True)

        t0 = time.time()
        with ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
            list(pool.map(one, todo))
        wall = time.time() - t0
        print(f"{len(todo)} runs in {wall:.0f} s", flush=True)
    for key, r in sorted(results.items()):
        last = Path(r["run"]) / "weights" / "last.pt"
        if (args.rescore or args.score_only) and r["dataset"] in yamls and last.is_file():
            r["score"] = score(str(last), str(yamls[r["dataset"]]), r["settings"]["imgsz"], out / "val")
        elif "score" not in r:
            row = r["final_row"]
            r["score"] = {"map": row["metrics/mAP50-95(B)"], "map50": row["metrics/mAP50(B)"],
                          "mp": row["metrics/precision(B)"], "mr": row["metrics/recall(B)"]}
    save()
    print(table(results))
    if args.save:
        save_results(args.save, study_figures(results, args), {k: v for k, v in vars(args).items() if k != "save"})


def study_figures(results: dict, args) -> dict:
    """Figures for the docs: the table, each dataset/recipe's mean mAP50-95 and mAP50, the Welch p per dataset,
    how many runs of each recipe stalled (final mAP50-95 under 0.01) and the runs' summed and longest wall time."""
    figs: dict = {"table_md": table(results)}
    for name in args.datasets:
        per = {r: [v for v in results.values() if v["dataset"] == name and v["recipe"] == r and "score" in v]
               for r in RECIPES}
        for r in RECIPES:
            if per[r]:
                figs[f"{name}_{r}_map"] = round(statistics.fmean(v["score"]["map"] for v in per[r]), 3)
                figs[f"{name}_{r}_map50"] = round(statistics.fmean(v["score"]["map50"] for v in per[r]), 3)
                figs[f"{name}_{r}_stalled"] = sum(v["score"]["map"] < 0.01 for v in per[r])
        if all(per.values()):
            figs[f"{name}_p"] = round(welch_p(*([v["score"]["map"] for v in per[r]] for r in RECIPES)), 3)
    pairs = [(results.get(f"{n}/classic-s{s}"), results.get(f"{n}/scheduled-s{s}"))
             for n in args.datasets for s in args.seeds]
    pairs = [(a, b) for a, b in pairs if a and b and "score" in a and "score" in b]
    figs["seed_pairs"] = len(pairs)
    figs["seed_pairs_classic_ahead"] = sum(a["score"]["map"] > b["score"]["map"] for a, b in pairs)
    train_s = [v["train_s"] for v in results.values() if "train_s" in v]
    if train_s:
        figs["run_minutes_max"] = round(max(train_s) / 60, 1)
        figs["runs"] = len(train_s)
    return figs


if __name__ == "__main__":
    script_main(__file__, worker, main)
