"""results.csv: one row per finished epoch, rewritten atomically after that epoch's checkpoint is saved."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ultralytics.utils.files import atomic_write_text

COLUMNS = ["epoch", "train/box_loss", "train/cls_loss", "train/dfl_loss", "metrics/precision(B)",
           "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)", "val/box_loss", "val/cls_loss",
           "val/dfl_loss", "lr/pg0", "lr/pg1", "lr/pg2", "time"]


class ResultsLog:
    """The rows of a run's results.csv; the checkpoint carries them too, so resume rewrites them exactly."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows: list[dict] = []

    @staticmethod
    def make_row(epoch: int, train_loss: list, metrics, val_loss: list, lr: dict, seconds: float) -> dict:
        mean = metrics.mean_results() if metrics is not None else [0.0] * 4
        values = [epoch, *train_loss, *mean, *val_loss, lr["lr/pg0"], lr["lr/pg1"], lr["lr/pg2"], seconds]
        return {k: (int(v) if k == "epoch" else float(v)) for k, v in zip(COLUMNS, values)}

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
        w.writerow(COLUMNS)
        for r in self.rows:
            w.writerow([r["epoch"]] + [f"{r[k]:.6g}" for k in COLUMNS[1:]])
        atomic_write_text(self.path, buf.getvalue())
