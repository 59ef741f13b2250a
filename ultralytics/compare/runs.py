"""Reading a training run directory: args.yaml, results.csv and the model YAML kept in its checkpoint.

A run directory is what the trainer writes to runs/train/<name>: args.yaml (the merged settings),
results.csv (one row per finished epoch, columns named by key: see ultralytics/engine/results_log.py) and
weights/best.pt, weights/last.pt. A directory with neither args.yaml nor results.csv is not a run.
"""

from __future__ import annotations

import csv
import glob
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ultralytics.utils import UserError
from ultralytics.utils.metrics import DetMetrics


def short_name(column: str) -> str:
    """'metrics/mAP50-95(B)' -> 'mAP50-95': the name a metric goes by in the compare tables."""
    name = column.split("/", 1)[-1]
    return name[:-3] if name.endswith("(B)") else name


# results.csv columns the comparison reads (short name -> column), from the one list of metrics (utils/metrics.py);
# a run's own results.csv may add more (Run.metric_columns); missing optional ones read as NaN.
METRIC_COLUMNS = {short_name(k): k for k in DetMetrics.METRICS}
LOSS_COLUMNS = ["train/box_loss", "train/cls_loss", "train/dfl_loss", "val/box_loss", "val/cls_loss", "val/dfl_loss"]
REQUIRED_COLUMNS = ("epoch", METRIC_COLUMNS["mAP50"], METRIC_COLUMNS["mAP50-95"])

# Run status words (shown in tables and used by the ablation to decide skip / resume / start).
FINISHED, EARLY_STOPPED, IN_PROGRESS, NO_RESULTS = "finished", "early-stopped", "in progress", "no results yet"


class NotARunError(UserError):
    """A path given to compare is not a training run directory (or cannot be read as one)."""


@dataclass
class Run:
    """One training run: its settings, per-epoch results and where its weights are.

    rows: {column name: (E,) float array} for the E epochs finished so far (E may be 0).
    """

    path: Path
    args: dict
    rows: dict[str, np.ndarray]
    weights: Path | None = None  # best.pt, else last.pt, else None
    name: str = ""
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.name = self.name or self.path.name

    # --- settings ---------------------------------------------------------------------------------
    @property
    def model_file(self) -> str:
        return str(self.args.get("model") or "?")

    @property
    def model_name(self) -> str:
        """The model YAML's stem ('yolov10n-LSKA'), the name a reader knows the architecture by."""
        return Path(self.model_file.replace("\\", "/")).stem

    @property
    def seed(self) -> int | None:
        s = self.args.get("seed")
        return int(s) if isinstance(s, (int, float)) and not isinstance(s, bool) else None

    @property
    def epochs(self) -> int:
        """Epochs the run was asked to train (args.yaml 'epochs')."""
        e = self.args.get("epochs")
        return int(e) if isinstance(e, (int, float)) and not isinstance(e, bool) else 0

    # --- progress ---------------------------------------------------------------------------------
    @property
    def epochs_done(self) -> int:
        return len(self.rows.get("epoch", ()))

    @property
    def status(self) -> str:
        """finished / early-stopped / in progress / no results yet."""
        n = self.epochs_done
        if n == 0:
            return NO_RESULTS
        if n >= self.epochs:
            return FINISHED
        patience = self.args.get("patience") or 0
        if isinstance(patience, (int, float)) and patience > 0:
            # EarlyStopping: the best epoch is the last one whose fitness reached the running maximum (>=);
            # epochs without validation count as fitness 0, as in the trainer
            fit = np.where(self.validated(), self.fitness(), 0.0)
            best_epoch = int(np.flatnonzero(fit >= np.maximum.accumulate(fit))[-1]) + 1
            if n - best_epoch >= patience:
                return EARLY_STOPPED
        return IN_PROGRESS

    @property
    def done(self) -> bool:
        return self.status in (FINISHED, EARLY_STOPPED)

    # --- metrics ----------------------------------------------------------------------------------
    @property
    def metric_columns(self) -> dict[str, str]:
        """{short name: column} of the metrics this run logged (its results.csv 'metrics/...' columns, in their
        order), or METRIC_COLUMNS when it has no rows yet."""
        own = {short_name(c): c for c in self.rows if c.startswith("metrics/")}
        return own or dict(METRIC_COLUMNS)

    @property
    def loss_columns(self) -> list[str]:
        """The run's train/<loss> and val/<loss> columns (LOSS_COLUMNS when it has no rows yet)."""
        return [c for c in self.rows if c.startswith(("train/", "val/"))] or list(LOSS_COLUMNS)

    def column(self, name: str) -> np.ndarray:
        """(E,) values of a results.csv column (a metric's short name works too); NaN when absent."""
        key = self.metric_columns.get(name) or METRIC_COLUMNS.get(name, name)
        return self.rows.get(key, np.full(self.epochs_done, np.nan))

    def validated(self) -> np.ndarray:
        """(E,) bool: epochs that were validated (with val=False the trainer logs zero val losses)."""
        val = [c for c in self.loss_columns if c.startswith("val/")]
        vl = np.stack([self.column(c) for c in val], 0) if self.epochs_done and val else np.zeros((1, 0))
        return ~np.all(vl == 0, axis=0)

    def fitness(self) -> np.ndarray:
        """(E,) the trainer's fitness, 0.1 * mAP50 + 0.9 * mAP50-95, the score best.pt is chosen by."""
        return 0.1 * np.nan_to_num(self.column("mAP50")) + 0.9 * np.nan_to_num(self.column("mAP50-95"))

    @property
    def best_index(self) -> int | None:
        """Row of the best epoch (the first with the highest fitness, as best.pt is saved); None if no rows."""
        return int(np.argmax(self.fitness())) if self.epochs_done else None

    def best(self, name: str) -> float:
        """Value of a metric at the best epoch (the epoch of best.pt); NaN without results."""
        i = self.best_index
        return float(self.column(name)[i]) if i is not None else math.nan

    def final(self, name: str) -> float:
        """Value of a metric at the last finished epoch; NaN without results."""
        return float(self.column(name)[-1]) if self.epochs_done else math.nan

    @property
    def train_seconds(self) -> float:
        """Cumulative training time (results.csv 'time' of the last row, seconds); NaN when absent."""
        return self.final("time")


def read_results_csv(path: Path) -> dict[str, np.ndarray]:
    """results.csv -> {column: (E,) float array}; UserError naming the file, row and column when unreadable."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"{path}: cannot be read as CSV ({e})") from None
    if not lines:
        return {}
    header = [h.strip() for h in lines[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise UserError(f"{path}: not a results.csv of a training run: column(s) {', '.join(missing)} missing "
                        f"(header is {', '.join(header[:6])}{', ...' if len(header) > 6 else ''})")
    data = np.full((len(lines) - 1, len(header)), np.nan)
    for r, row in enumerate(lines[1:], start=2):
        if len(row) != len(header):
            raise UserError(f"{path}, row {r}: {len(row)} values for {len(header)} columns (a truncated write?)")
        for c, cell in enumerate(row):
            try:
                data[r - 2, c] = float(cell)
            except ValueError:
                raise UserError(f"{path}, row {r}, column '{header[c]}': {cell!r} is not a number") from None
    return {h: data[:, j] for j, h in enumerate(header)}


def read_args(path: Path) -> dict:
    """args.yaml -> dict; UserError naming the file when it is not a YAML mapping."""
    try:
        d = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise UserError(f"{path}: cannot be read as YAML ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict):
        raise UserError(f"{path}: expected a mapping of settings, got {type(d).__name__}")
    return d


def read_run(path: str | Path) -> Run:
    """Read a run directory; NotARunError (a UserError) saying why when it is not one."""
    path = Path(path)
    if not path.exists():
        raise NotARunError(f"{path}: not found")
    if not path.is_dir():
        raise NotARunError(f"{path}: not a directory (give a run directory such as runs/train/exp)")
    args_file, csv_file = path / "args.yaml", path / "results.csv"
    if not args_file.is_file() and not csv_file.is_file():
        raise NotARunError(f"{path}: not a training run (no args.yaml and no results.csv)")
    if not args_file.is_file():
        raise NotARunError(f"{path}: has results.csv but no args.yaml, so its model and settings are unknown")
    args = read_args(args_file)
    rows = read_results_csv(csv_file) if csv_file.is_file() else {}
    run = Run(path=path, args=args, rows=rows)
    if not csv_file.is_file():
        run.notes.append("no results.csv yet")
    wdir = path / "weights"
    run.weights = next((p for p in (wdir / "best.pt", wdir / "last.pt") if p.is_file()), None)
    return run


def expand_paths(patterns: list[str]) -> tuple[list[Path], list[str]]:
    """Run directories from paths and globs (sorted per pattern, duplicates dropped) and problems found.

    Returns (paths, problems): a glob that matches nothing is a problem; existing non-directories are
    returned as well and rejected by read_run with a message.
    """
    out, seen, problems = [], set(), []
    for pat in patterns:
        matches = sorted(glob.glob(pat)) if glob.has_magic(pat) else [pat]
        if not matches:
            problems.append(f"{pat}: matched nothing")
        for m in matches:
            key = Path(m).resolve()
            if key not in seen:
                seen.add(key)
                out.append(Path(m))
    return out, problems


def read_runs(patterns: list[str]) -> tuple[list[Run], list[str]]:
    """Read every run the patterns name; (runs, problems) where each problem is one line naming a path.

    Runs with the same directory name (runs/a/exp, runs/b/exp) are named parent/name to tell them apart.
    """
    paths, problems = expand_paths(patterns)
    runs = []
    for p in paths:
        try:
            runs.append(read_run(p))
        except NotARunError as e:
            problems.append(f"{e} - skipped")
        except UserError as e:
            problems.append(f"{p}: {e} - skipped")
    names = [r.path.name for r in runs]
    for r in runs:
        if names.count(r.path.name) > 1:
            r.name = f"{r.path.parent.name}/{r.path.name}"
    return runs, problems
