"""What pruning saves: the same small tuning study on the built-in shapes dataset, with and without pruning.

The study tunes the fine-tuning of a small YOLOv10 already trained on shapes (tests/data/yolov10t-shapes.pt,
334k parameters) on a fresh draw of the shapes generator: its fitness is far from 0 after one epoch, and a
bad learning rate wrecks it, so the pruner has something to tell apart within a short CPU budget.

Two fresh studies with the same sampler seed: Optuna's TPE samples its first 10 trials at random from that
seed, so with --trials <= 10 both studies try the very same settings and training is deterministic (seed 0),
so the only difference is that the median pruner ends trials whose fitness after an epoch is below the
median of the earlier trials at that epoch. Counted from each study's files: trials complete / pruned,
epochs trained (rows of the trials' results.csv), wall time, the best fitness found and which trial.

    python benchmarks/tune_pruning.py --out runs/tune_pruning      (the defaults; about 15 min on 2 busy cores)
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as train.py: spinning OpenMP threads starve a busy CPU

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import markdown_table  # noqa: E402
from benchmarks._results import save_results  # noqa: E402

SPACE = {"lr0": (1e-4, 1e-1), "momentum": (0.7, 0.98), "box": (1.0, 20.0), "cls": (0.2, 4.0)}
MODEL = ROOT / "tests" / "data" / "yolov10t-shapes.pt"  # a very small YOLOv10 trained on shapes (tests/data)


def make_data(out: Path, n_train: int, n_val: int) -> str:
    import yaml

    from ultralytics.data import ensure_builtin_dataset
    from ultralytics.data.builtin import CLASSES

    ds = ensure_builtin_dataset(root=out / "datasets", name="shapes", n_train=n_train, n_val=n_val, seed=0)
    f = out / "shapes_small.yaml"
    f.write_text(yaml.safe_dump({"path": str(ds.resolve()), "train": "images/train", "val": "images/val",
                                 "names": dict(enumerate(CLASSES))}))
    return str(f)


def study(out: Path, data: str, prune: bool, a) -> dict:
    """Run one study; count what it did from tune_results.csv and the trials' results.csv."""
    from ultralytics import YOLO

    name = "pruned" if prune else "unpruned"
    t0 = time.time()
    YOLO(str(MODEL)).tune(data=data, epochs=a.epochs, iterations=a.trials, space=SPACE, study=name, prune=prune,
                          project=str(out), imgsz=a.imgsz, batch=16, nbs=16, workers=0, device="cpu", plots=False,
                          tensorboard=False, close_mosaic=0, warmup_epochs=1, seed=0)
    wall = time.time() - t0
    with open(out / name / "tune_results.csv") as f:
        rows = list(csv.DictReader(f))
    epochs = 0
    for r in rows:
        with open(out / name / f"trial_{r['number']}" / "results.csv") as f:
            epochs += sum(1 for _ in csv.DictReader(f))
    done = [r for r in rows if r["state"] == "COMPLETE"]
    best = max(done, key=lambda r: float(r["fitness"]))
    return {"trials": len(rows), "complete": len(done), "pruned": sum(r["state"] == "PRUNED" for r in rows),
            "epochs": epochs, "minutes": round(wall / 60, 1), "best_fitness": round(float(best["fitness"]), 4),
            "best_trial": int(best["number"]), "params": [(r["lr0"], r["box"]) for r in rows]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/tune_pruning", help="folder of the data and both studies (made fresh)")
    p.add_argument("--trials", type=int, default=10, help="trials per study (<= 10: both sample the same)")
    p.add_argument("--epochs", type=int, default=4, help="epochs per trial")
    p.add_argument("--imgsz", type=int, default=128)
    p.add_argument("--n-train", type=int, default=48)
    p.add_argument("--n-val", type=int, default=16)
    a = p.parse_args()
    out = Path(a.out)
    for name in ("pruned", "unpruned"):
        if (out / name).exists():
            sys.exit(f"{out / name} exists: give a fresh --out (a study there would be continued, not rerun)")
    data = make_data(out, a.n_train, a.n_val)
    res = {"unpruned": study(out, data, False, a), "pruned": study(out, data, True, a)}
    same = res["pruned"].pop("params") == res["unpruned"].pop("params")
    keys = ("trials", "complete", "pruned", "epochs", "minutes", "best_fitness", "best_trial")
    table = markdown_table(["study", *keys], [[k, *(r[x] for x in keys)] for k, r in res.items()])
    print(table)
    u, q = res["unpruned"], res["pruned"]
    figures = {f"{k}_{x}": r[x] for k, r in res.items() for x in keys}
    figures.update(table_md=table, same_trials=str(same),
                   epochs_saved_pct=round(100 * (1 - q["epochs"] / u["epochs"]), 1),
                   time_saved_pct=round(100 * (1 - q["minutes"] / u["minutes"]), 1))
    save_results("tune_pruning", figures, {**vars(a), "space": {k: list(v) for k, v in SPACE.items()},
                                           "model": MODEL.name})


if __name__ == "__main__":
    main()
