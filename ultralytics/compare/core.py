"""The comparison itself: per-run rows, per-group rows (mean ± std over seeds, test against the baseline).

Rows are plain dicts of numbers and strings (the columns of compare.csv and compare_groups.csv);
report.py formats them, plot.py draws the curves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ultralytics.compare.groups import Group, diff_text, group_runs, not_comparable, settings_diff
from ultralytics.compare.profile import Profiler, arch_signature
from ultralytics.compare.runs import METRIC_COLUMNS, Run
from ultralytics.compare.stats import ALPHA, compare
from ultralytics.utils import UserError

METRICS = ("mAP50-95", "mAP50")  # what --metric may choose; the best-epoch value is compared


@dataclass
class Comparison:
    """Everything a report needs: runs, groups, the baseline, rows for the tables, warnings."""

    runs: list[Run]
    groups: list[Group]
    baseline: Run
    baseline_group: Group
    metric: str
    alpha: float
    run_rows: list[dict] = field(default_factory=list)
    group_rows: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def pick_baseline(runs: list[Run], groups: list[Group], name: str | None) -> tuple[Run, list[str]]:
    """The baseline run: by run name, directory path or group/model name; default the first run with results."""
    with_results = [r for r in runs if r.epochs_done]
    if name is None:
        first = runs[0]
        if first.epochs_done or not with_results:
            return first, []
        return with_results[0], [f"the first run {first.name} has no results yet; baseline is {with_results[0].name}"]
    for r in runs:
        if name in (r.name, str(r.path), r.path.name):
            return r, []
    for g in groups:
        if name in (g.label, g.model_name):
            return next((r for r in g.runs if r.epochs_done), g.runs[0]), []
    choices = ", ".join(dict.fromkeys([r.name for r in runs] + [g.label for g in groups]))
    raise UserError(f"--baseline {name!r} is neither a run nor a group here; choose one of: {choices}")


def build_comparison(runs: list[Run], baseline: str | None = None, metric: str = "mAP50-95",
                     alpha: float = ALPHA, profiler: Profiler | None = None) -> Comparison:
    """Compare runs: profile them, group them by seed, and test each group against the baseline's group."""
    if metric not in METRICS:
        raise UserError(f"--metric {metric!r} is not one of {', '.join(METRICS)}")
    if not runs:
        raise UserError("no runs to compare")
    profiler = profiler or Profiler()

    def arch_of(r: Run) -> str:
        cfg, _ = profiler.model_yaml(r)
        return arch_signature(cfg) if cfg is not None else f"file:{r.model_file}"

    groups, warnings = group_runs(runs, arch_of)
    base, more = pick_baseline(runs, groups, baseline)
    warnings = more + warnings
    base_group = next(g for g in groups if base in g.runs)
    groups = [base_group] + [g for g in groups if g is not base_group]  # tables: the baseline first,
    runs = [r for g in groups for r in g.runs]  # and each group's runs together
    comp = Comparison(runs, groups, base, base_group, metric, alpha, warnings=warnings)
    group_of = {id(r): g for g in groups for r in g.runs}
    comp.run_rows = [_run_row(r, base, group_of[id(r)], profiler) for r in runs]
    comp.group_rows = [_group_row(g, comp, profiler) for g in groups]
    for r, row in zip(runs, comp.run_rows):
        if row["not_comparable"]:
            comp.warnings.append(f"{r.name} is not comparable with the baseline {base.name}: {row['not_comparable']} "
                                 f"(metrics measured on different data or image sizes)")
        comp.warnings += [f"{r.name}: {note}" for note in r.notes if note != "no results.csv yet"]
        if not r.done:
            what = "no epoch finished yet" if not r.epochs_done else f"{r.epochs_done}/{r.epochs} epochs"
            comp.warnings.append(f"{r.name} is in progress ({what}): its numbers are from the epochs done so far")
    return comp


def _run_row(r: Run, base: Run, group: Group, profiler: Profiler) -> dict:
    cost, base_cost = profiler.cost(r), profiler.cost(base)
    n_img = profiler.train_images(r)
    secs = r.train_seconds
    ips = n_img * r.epochs_done / secs if n_img and r.epochs_done and secs and secs > 0 else math.nan
    row = {
        "run": r.name, "path": str(r.path), "model": r.model_name, "model_file": r.model_file, "group": group.label,
        "seed": r.seed, "status": r.status, "epochs_done": r.epochs_done, "epochs": r.epochs,
        "params": cost.params if cost else None, "gflops": cost.gflops if cost else math.nan,
        "best_epoch": (r.best_index + 1) if r.best_index is not None else None,
        "best_mAP50": r.best("mAP50"), "best_mAP50-95": r.best("mAP50-95"),
        **{f"final_{m}": r.final(m) for m in {**METRIC_COLUMNS, **r.metric_columns}},  # results.csv's metrics
        "time_s": secs, "train_images": n_img, "images_per_s": ips,
    }
    for m in ("mAP50", "mAP50-95"):
        row[f"d_best_{m}"] = r.best(m) - base.best(m)
    row["d_params"] = (cost.params - base_cost.params) if cost and base_cost else None
    row["d_gflops"] = (cost.gflops - base_cost.gflops) if cost and base_cost else math.nan
    row["not_comparable"] = diff_text(not_comparable(base.args, r.args))
    row["notes"] = "; ".join(r.notes)
    return row


def _group_row(g: Group, comp: Comparison, profiler: Profiler) -> dict:
    m, base = comp.metric, comp.baseline_group
    row = {"group": g.label, "model": g.model_name, "runs": ", ".join(r.name for r in g.runs),
           "seeds": " ".join(str(s) for s in g.seeds), "n": len(g.used), "in_progress": g.in_progress}
    cost = profiler.cost(g.runs[0])
    row["params"], row["gflops"] = (cost.params, cost.gflops) if cost else (None, math.nan)
    for k in ("mAP50", "mAP50-95"):
        s = g.spread(k)
        row[f"best_{k}_mean"], row[f"best_{k}_std"] = s.mean, s.std
    ips = [x for x in (rr["images_per_s"] for rr in comp.run_rows if rr["group"] == g.label) if math.isfinite(x)]
    row["images_per_s_mean"] = sum(ips) / len(ips) if ips else math.nan
    row["metric"] = m
    if g is base:
        row.update(diff=0.0, ci_low=math.nan, ci_high=math.nan, boot_low=math.nan, boot_high=math.nan,
                   p=math.nan, method="baseline", verdict="baseline", settings_vs_baseline="")
        return row
    v = compare(base.values(m), g.values(m), comp.alpha)
    row.update(diff=v.diff, ci_low=v.ci[0] if v.ci else math.nan, ci_high=v.ci[1] if v.ci else math.nan,
               boot_low=v.bootstrap_ci[0] if v.bootstrap_ci else math.nan,
               boot_high=v.bootstrap_ci[1] if v.bootstrap_ci else math.nan, p=v.p, method=v.method)
    nc = diff_text(not_comparable(base.settings, g.settings))
    row["verdict"] = f"NOT COMPARABLE ({nc}); " + v.text if nc else v.text
    row["settings_vs_baseline"] = diff_text(settings_diff(base.settings, g.settings))
    return row
