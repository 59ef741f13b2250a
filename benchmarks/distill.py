"""Does distillation help? yolov10n-LSKA alone against yolov10n-LSKA taught by a larger model, equal epochs.

A teacher (--teacher, yolov10s by default) is trained once on the built-in shapes data (--teacher-epochs).
Then, for each seed, the student is trained twice with the same settings and --epochs: alone, and with
distill_model=<teacher's best.pt> dis=--dis. The table: mean ± std (sample std over seeds) of the final
mAP50-95 and mAP50 of each arm, and the two-sided Welch t-test p-value of the mAP50-95 difference (the
project's compare/stats.welch_test). Written to benchmarks/results/<--name>.json.

    python benchmarks/distill.py --seeds 0 1 2                      # hours on 2 CPU cores: run it on a quiet machine
    python benchmarks/distill.py --seeds 0 1 --epochs 1 --teacher-epochs 1 --name distill_smoke     # a smoke run
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__" and not __package__:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import markdown_table  # noqa: E402
from benchmarks._results import save_results  # noqa: E402


def final_metrics(run: Path) -> tuple[float, float]:
    """(mAP50-95, mAP50) of the last results.csv row of a run."""
    with open(run / "results.csv") as f:
        row = list(csv.DictReader(f))[-1]
    return float(row["metrics/mAP50-95(B)"]), float(row["metrics/mAP50(B)"])


def mean_std(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--student", default="yolov10n-LSKA.yaml")
    ap.add_argument("--teacher", default="yolov10s.yaml")
    ap.add_argument("--teacher-epochs", type=int, default=60)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--dis", type=float, default=6.0)
    ap.add_argument("--imgsz", type=int, default=128)
    ap.add_argument("--name", default="distill")
    a = ap.parse_args()

    from ultralytics import YOLO
    from ultralytics.compare.stats import welch_test

    out = Path(tempfile.mkdtemp(prefix="distill_"))
    common = dict(data="shapes.yaml", imgsz=a.imgsz, batch=16, workers=2, optimizer="AdamW", lr0=0.002, nbs=16,
                  plots=False, deterministic=True, exist_ok=True, verbose=False, project=str(out))
    YOLO(a.teacher).train(**common, epochs=a.teacher_epochs, seed=0, name="teacher")
    teacher = out / "teacher" / "weights" / "best.pt"
    arms: dict[str, list[tuple[float, float]]] = {"alone": [], "distilled": []}
    for seed in a.seeds:
        for arm in arms:
            extra = {"distill_model": str(teacher), "dis": a.dis} if arm == "distilled" else {}
            YOLO(a.student).train(**common, **extra, epochs=a.epochs, seed=seed, name=f"{arm}_{seed}")
            arms[arm].append(final_metrics(out / f"{arm}_{seed}"))
            print(arm, seed, arms[arm][-1], flush=True)
    _, p, _ = welch_test([m[0] for m in arms["alone"]], [m[0] for m in arms["distilled"]])
    rows = [[arm, len(ms), mean_std([m[0] for m in ms]), mean_std([m[1] for m in ms])] for arm, ms in arms.items()]
    figures = {"table_md": markdown_table(["student", "seeds", "mAP50-95", "mAP50"], rows), "welch_p": round(p, 4)}
    for arm, ms in arms.items():
        figures[f"{arm}_map"] = round(statistics.mean(m[0] for m in ms), 4)
    print(figures["table_md"], f"\nWelch p (mAP50-95) = {p:.3f}")
    print(f"wrote {save_results(a.name, figures, vars(a))}")


if __name__ == "__main__":
    main()
