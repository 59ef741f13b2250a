"""k-fold training: `python train.py data=out/folds` trains every fold, then prints mean ± std of the mAPs.

The folds come from `python dataset.py ... folds=K` (ultralytics/data/convert/folds.py). Fold k trains a
fresh model from make_model() (train.py passes copies of its model, so every fold starts from the same
weights) on out/folds/<k>/data.yaml into a run named `<name>-fold<k>`. Each fold's figure is its best epoch's (the epoch of best.pt, highest
fitness 0.1 mAP50 + 0.9 mAP50-95, as compare.py reads runs), and the spread is the sample std (ddof=1).
`python compare.py runs/train/*-fold*` groups the fold runs as it groups seeds.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Callable

import numpy as np

from ultralytics.data.convert.folds import fold_yamls
from ultralytics.utils import LOGGER, UserError

MAP50, MAP = "metrics/mAP50(B)", "metrics/mAP50-95(B)"


def best_epoch_maps(results_csv: Path) -> tuple[float, float]:
    """(mAP50, mAP50-95) of the first row with the highest fitness in a run's results.csv; NaNs without rows."""
    try:
        with open(results_csv, newline="", encoding="utf-8") as f:
            rows = [(float(r[MAP50]), float(r[MAP])) for r in csv.DictReader(f) if r.get(MAP50) not in (None, "")]
    except (OSError, KeyError, ValueError):
        rows = []
    if not rows:
        return math.nan, math.nan
    return max(rows, key=lambda r: 0.1 * r[0] + 0.9 * r[1])  # max keeps the first of equal rows


def mean_std(values: list[float]) -> str:
    """'0.4123 ± 0.0051' over the finite values (sample std); one value alone; '-' for none."""
    v = np.array([x for x in values if math.isfinite(x)], dtype=np.float64)
    if not v.size:
        return "-"
    return f"{v.mean():.4f}" + (f" ± {v.std(ddof=1):.4f}" if v.size > 1 else "")


def train_folds(make_model: Callable[[], object], settings: dict) -> list[dict]:
    """Train each fold of settings['data'] (a folds folder) one after another -> one row per fold.

    make_model() returns a fresh YOLO for each fold; settings are train settings (name: the runs' base name).
    Row: {fold, run (save dir), mAP50, mAP50-95}. Logs each fold and the mean ± std at the end.
    """
    yamls = fold_yamls(settings.get("data"))
    if not yamls:
        raise UserError(f"data={settings.get('data')!r} is not a folds folder (out/folds from dataset.py folds=K)")
    if settings.get("resume"):
        raise UserError("resume= with data=<folds folder>: resume the unfinished fold's run itself, e.g. "
                        "python train.py resume=runs/train/exp-fold2/weights/last.pt")
    name = settings.get("name") or "exp"
    rows = []
    for k, y in enumerate(yamls):
        LOGGER.info(f"fold {k + 1}/{len(yamls)}: data={y} name={name}-fold{k}")
        model = make_model()
        model.train(**{**settings, "data": str(y), "name": f"{name}-fold{k}"})
        save_dir = Path(model.trainer.save_dir)
        m50, m = best_epoch_maps(save_dir / "results.csv")
        rows.append({"fold": k, "run": str(save_dir), "mAP50": m50, "mAP50-95": m})
    LOGGER.info(fold_summary(rows))
    return rows


def fold_summary(rows: list[dict]) -> str:
    """The closing lines: one per fold, then mean ± std of mAP50 and mAP50-95 over the folds."""
    lines = [f"{len(rows)}-fold cross-validation (best epoch of each fold):"]
    lines += [f"  fold {r['fold']}: mAP50 {r['mAP50']:.4f}  mAP50-95 {r['mAP50-95']:.4f}  {r['run']}" for r in rows]
    lines.append(f"  mean ± std: mAP50 {mean_std([r['mAP50'] for r in rows])}  "
                 f"mAP50-95 {mean_std([r['mAP50-95'] for r in rows])}")
    return "\n".join(lines)
