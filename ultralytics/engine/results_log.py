"""results.csv: one row per finished epoch, rewritten atomically after that epoch's checkpoint is saved.

A row is a dict made from keys, never from a column list by position: `epoch`, `train/<loss>` for each name of
the trainer's `loss_names`, the validation metrics' `results_dict` keys (utils/metrics.py DetMetrics.METRICS, less
`fitness`), `val/<loss>`, `lr/pg<i>` per parameter group and `time`. The header is the union of the rows' keys in
the order first seen (a key that first appears in a later row, e.g. the metrics after unvalidated epochs, goes
after the key it follows in that row); a row without a column's key shows 0 there.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ultralytics.utils.files import atomic_write_text
from ultralytics.utils.metrics import DetMetrics


def columns(loss_names, metric_keys, lr_groups: int = 3) -> list[str]:
    """The header of a run whose trainer has these loss names and whose validator these metric keys."""
    return (["epoch", *(f"train/{n}" for n in loss_names), *metric_keys, *(f"val/{n}" for n in loss_names),
             *(f"lr/pg{j}" for j in range(lr_groups)), "time"])


# The detect trainer's header with the default metrics (DetectionTrainer.loss_names; tests and readers use it)
COLUMNS = columns(("box_loss", "cls_loss", "dfl_loss"), DetMetrics.METRICS)


def merge_columns(known: list[str], row: dict) -> list[str]:
    """`known` plus the keys of `row` it lacks, each placed right after the key it follows in `row`."""
    out = list(known)
    prev = None
    for k in row:
        if k not in out:
            out.insert(out.index(prev) + 1 if prev is not None else 0, k)
        prev = k
    return out


class ResultsLog:
    """The rows of a run's results.csv; the checkpoint carries them too, so resume rewrites them exactly."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows: list[dict] = []

    @staticmethod
    def make_row(epoch: int, train_loss: dict, metrics: dict, val_loss: dict, lr: dict, seconds: float) -> dict:
        """{column: value}: train_loss/val_loss {loss name: value}, metrics {key: value} ('fitness' left out)."""
        row = {"epoch": int(epoch)}
        row.update({f"train/{k}": float(v) for k, v in train_loss.items()})
        row.update({k: float(v) for k, v in metrics.items() if k != "fitness"})
        row.update({f"val/{k}": float(v) for k, v in val_loss.items()})
        row.update({k: float(v) for k, v in lr.items()})
        row["time"] = float(seconds)
        return row

    @property
    def columns(self) -> list[str]:
        """The header: every key of every row, in the order first seen."""
        cols: list[str] = []
        for r in self.rows:
            cols = merge_columns(cols, r)
        return cols

    def elapsed(self) -> float:
        """Training seconds of the rows already logged (a resumed run adds its time to them)."""
        return self.rows[-1]["time"] if self.rows else 0.0

    def restore(self, rows: list[dict]) -> None:
        """Take the rows saved in a checkpoint and rewrite the file from them (no lost or repeated epoch)."""
        self.rows = [dict(r) for r in rows]
        self._write()

    def append(self, row: dict) -> None:
        self.rows.append(row)
        self._write()

    def _write(self) -> None:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        cols = self.columns
        w.writerow(cols)
        for r in self.rows:
            w.writerow([int(r.get(k, 0)) if k == "epoch" else f"{float(r.get(k, 0.0)):.6g}" for k in cols])
        atomic_write_text(self.path, buf.getvalue())
