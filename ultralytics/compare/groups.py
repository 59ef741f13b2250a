"""Grouping runs by seed: same architecture and same settings except the bookkeeping ones form one group.

The folds of a k-fold split (data=<dataset>/folds/<k>/data.yaml, from train.py data=<dataset>/folds) group
as seeds do: one group per model and folds folder, one sample per (seed, fold).

Also: which settings differ between two runs, and whether two runs are comparable at all (trained and
validated on the same data at the same image size).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

from ultralytics.compare.runs import Run
from ultralytics.data.convert.folds import fold_of
from ultralytics.compare.stats import Spread, spread

# Settings that do not define an experiment: the seed (what a group varies), where the run was written,
# how it was run (device, workers: the data order and augmentation derive from the seed, not the workers),
# and output switches. Runs differing only in these are seeds of one experiment. A model YAML is compared
# by its contents (the architecture signature), not its path; a .pt model (the starting weights) is a setting.
IGNORED_SETTINGS = ("seed", "name", "project", "exist_ok", "resume", "device", "workers", "verbose", "plots",
                    "save", "save_period", "mode", "model")
# Settings that change what the metrics are measured on: runs differing in these are not comparable.
COMPARABILITY_SETTINGS = ("data", "imgsz", "single_cls", "fraction", "split")


def experiment_settings(args: dict) -> dict:
    """The settings that define an experiment: args.yaml minus IGNORED_SETTINGS (a .pt 'model' is kept).

    A fold's data YAML (<dataset>/folds/<k>/data.yaml) counts as its folds folder: the folds of one k-fold
    split are samples of one experiment, as seeds are (sample_key tells them apart).
    """
    out = {k: v for k, v in args.items() if k not in IGNORED_SETTINGS}
    if str(args.get("model") or "").endswith(".pt"):
        out["model"] = args["model"]
    fold = fold_of(args.get("data"))
    if fold:
        out["data"] = fold[0]
    return out


def sample_key(r: Run) -> tuple:
    """What makes a run an independent sample of its group: (seed, fold); fold is None outside k-fold."""
    fold = fold_of(r.args.get("data"))
    return r.seed, fold[1] if fold else None


def sample_label(key: tuple) -> str:
    """'0' for seed 0, '0/fold2' for seed 0 on fold 2."""
    seed, fold = key
    return str(seed) if fold is None else f"{seed}/fold{fold}"


def settings_diff(a: dict, b: dict, keys: tuple[str, ...] | None = None) -> dict[str, tuple]:
    """{key: (a value, b value)} for experiment settings that differ (a key missing on one side shows None)."""
    a, b = experiment_settings(a), experiment_settings(b)
    keys = keys or tuple(dict.fromkeys([*a, *b]))
    return {k: (a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)}


def not_comparable(a: dict, b: dict) -> dict[str, tuple]:
    """The COMPARABILITY_SETTINGS that differ between two runs' args ({} when comparable)."""
    return settings_diff(a, b, COMPARABILITY_SETTINGS)


def diff_text(diff: dict[str, tuple], limit: int = 4) -> str:
    """'imgsz 64 vs 320, data a.yaml vs b.yaml' (first `limit` keys, then '+N more')."""
    parts = [f"{k} {_short(va)} vs {_short(vb)}" for k, (va, vb) in list(diff.items())[:limit]]
    more = len(diff) - limit
    return ", ".join(parts) + (f", +{more} more" if more > 0 else "")


def _short(v) -> str:
    s = str(v)
    return s if len(s) <= 40 else "..." + s[-37:]


@dataclass
class Group:
    """Runs of one experiment (same architecture and settings), one per seed in the statistics."""

    label: str
    runs: list[Run]
    arch: str
    settings: dict
    used: list[Run] = field(default_factory=list)  # one run per seed, with results: the statistics' samples

    @property
    def model_name(self) -> str:
        return self.runs[0].model_name

    @property
    def seeds(self) -> list:
        """Seed of each sample; 'seed/fold<k>' for fold runs."""
        return [r.seed if fold_of(r.args.get("data")) is None else sample_label(sample_key(r)) for r in self.used]

    @property
    def in_progress(self) -> bool:
        return any(not r.done for r in self.used)

    def values(self, metric: str) -> list[float]:
        """Best-epoch value of `metric` of each run in the statistics (one per seed)."""
        return [r.best(metric) for r in self.used]

    def spread(self, metric: str) -> Spread:
        return spread(self.values(metric))


def group_runs(runs: list[Run], arch_of: Callable[[Run], str]) -> tuple[list[Group], list[str]]:
    """Group runs (in order of first appearance); returns (groups, warnings).

    arch_of(run) -> a signature of the run's architecture (e.g. profile.arch_signature of its YAML).
    Two runs of a group with the same seed are repeats, not independent samples: only one (the one with
    most epochs, then the later one) enters the statistics, and a warning names the others.
    """
    groups: dict[tuple, Group] = {}
    for r in runs:
        settings = experiment_settings(r.args)
        key = (arch_of(r), json.dumps(settings, sort_keys=True, default=str))
        if key not in groups:
            groups[key] = Group(label=r.model_name, runs=[], arch=key[0], settings=settings)
        groups[key].runs.append(r)
    out, warnings = list(groups.values()), []
    for g in out:
        by_seed: dict = {}
        for r in g.runs:
            if r.epochs_done:
                by_seed.setdefault(sample_key(r), []).append(r)
        for key, rs in by_seed.items():
            keep = max(rs, key=lambda r: (r.epochs_done, _mtime(r)))
            g.used.append(keep)
            dropped = [r.name for r in rs if r is not keep]
            if dropped:
                what = f"seed {key[0]}" + (f" and fold {key[1]}" if key[1] is not None else "")
                warnings.append(f"{', '.join([keep.name, *dropped])} have the same {what} and settings: repeats "
                                f"are not independent samples, so only {keep.name} enters the statistics")
    _label(out)
    return out, warnings


def _mtime(r: Run) -> float:
    p = r.path / "results.csv"
    return p.stat().st_mtime if p.exists() else 0.0


def _label(groups: list[Group]) -> None:
    """Name groups by model; groups sharing a model name get the settings that tell them apart."""
    for g in groups:
        same = [h for h in groups if h.model_name == g.model_name]
        if len(same) > 1 and g is not same[0]:
            diff = settings_diff(same[0].settings, g.settings)
            extra = ", ".join(f"{k}={vb}" for k, (_, vb) in list(diff.items())[:3]) or f"arch {g.arch[:6]}"
            g.label = f"{g.model_name} [{extra}]"
