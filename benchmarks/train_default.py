"""The README's headline figures: `python train.py` as a new user runs it, on a clean clone.

    python benchmarks/train_default.py              # clone HEAD to a temp folder, time `python train.py` there

Clones the committed HEAD (uncommitted changes are not measured; the JSON records the commit and whether the
working tree differed), runs `python train.py` in the clone exactly as the README's first line does (the
built-in dataset is generated there, so its time is included), and writes benchmarks/results/train_default.json:
wall time, the per-epoch mAP50-95 the README quotes, best.pt's final validation (P, R, mAP50, mAP50-95 and
COCO's size APs from best_metrics.json), the best epoch, and the val set's image and object counts. The time to
generate the built-in dataset alone is measured too (a second, fresh generation in a temporary folder).
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__" and not __package__:
    sys.path.insert(0, str(ROOT))

from benchmarks._results import save_results  # noqa: E402

EPOCHS_QUOTED = (3, 6, 12)  # the README's "learns steadily" epochs


def minutes(seconds: float) -> str:
    """'10 min 54 s' (as the README writes a wall time)."""
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s} s" if m else f"{s} s"


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def read_results_csv(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as f:
        return [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="keep the clone (its runs/train/exp) and print its path")
    ap.add_argument("overrides", nargs="*", help="key=value passed to train.py (then not the README's default run)")
    a = ap.parse_args()
    commit, dirty = git("rev-parse", "HEAD"), bool(git("status", "--porcelain", "--untracked-files=no"))
    work = Path(tempfile.mkdtemp(prefix="train_default_"))
    clone = work / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "checkout", "--quiet", commit], cwd=clone, check=True)
    print(f"clone of {commit[:10]}{' (working tree differs: not measured)' if dirty else ''} in {clone}", flush=True)

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "train.py", *a.overrides], cwd=clone, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    exp = clone / "runs" / "train" / "exp"
    rows = read_results_csv(exp / "results.csv")
    best = json.loads((exp / "best_metrics.json").read_text())
    fit = [0.1 * r["metrics/mAP50(B)"] + 0.9 * r["metrics/mAP50-95(B)"] for r in rows]
    best_epoch = max(range(len(rows)), key=lambda i: fit[i]) + 1
    val_labels = sorted((clone / "datasets" / "shapes" / "labels" / "val").glob("*.txt"))
    n_obj = sum(len([ln for ln in p.read_text().splitlines() if ln.strip()]) for p in val_labels)

    sys.path.insert(0, str(clone))
    from ultralytics.data.builtin import ensure_builtin_dataset

    gen_dir = Path(tempfile.mkdtemp(prefix="shapes_gen_"))
    t1 = time.perf_counter()
    ensure_builtin_dataset(gen_dir)
    gen_s = time.perf_counter() - t1
    shutil.rmtree(gen_dir, ignore_errors=True)

    figures = {
        "wall": minutes(wall), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "dataset_gen_s": round(gen_s, 1),
        "epochs": len(rows), "best_epoch": best_epoch,
        "map50": best["metrics/mAP50(B)"], "map": best["metrics/mAP50-95(B)"],
        "precision": best["metrics/precision(B)"], "recall": best["metrics/recall(B)"],
        "map_small": best["metrics/mAP50-95(S)"], "map_medium": best["metrics/mAP50-95(M)"],
        "map_large": best["metrics/mAP50-95(L)"], "head": best.get("head", ""),
        "val_images": len(val_labels), "val_objects": n_obj,
        **{f"map_epoch{e}": rows[e - 1]["metrics/mAP50-95(B)"] for e in EPOCHS_QUOTED if e <= len(rows)},
        "map_last": rows[-1]["metrics/mAP50-95(B)"],
    }
    for k in [k for k in figures if k.startswith("map_epoch")] + ["map_last"]:
        figures[k] = round(figures[k], 4)
    settings = {"command": "python train.py " + " ".join(a.overrides), "commit": commit, "tree_dirty": dirty,
                "args": (exp / "args.yaml").read_text()}
    path = save_results("train_default" if not a.overrides else "train_custom", figures, settings)
    print(json.dumps(figures, indent=1))
    print(f"wrote {path}")
    if a.keep:
        print(f"kept {clone}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
