"""What a tuning study leaves in runs/tune/<study>: tune_results.csv, best_hyperparameters.yaml and two plots.

tune_results.csv: one row per trial (number, state, fitness, every parameter, seconds); a pruned trial's
fitness is the last one it reported, a failed or running trial's is empty. best_hyperparameters.yaml: the
parameters of the best complete trial (and the optimizer tune fixed for it), loadable as train.py's cfg=.
tune_fitness.png: fitness per trial and the best so far. param_importance.png: Optuna's PED-ANOVA importance
evaluator (its default, fANOVA, needs scikit-learn), drawn by optuna.visualization.matplotlib.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

from ultralytics.utils import LOGGER
from ultralytics.utils.files import atomic_write_bytes, atomic_write_text


def _cell(v) -> str:
    return "" if v is None else repr(v) if isinstance(v, float) else str(v)


def write_tables(study, out: Path, dists: dict) -> None:
    """tune_results.csv and (once a trial completed) best_hyperparameters.yaml."""
    import yaml
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    names = list(dists) + sorted({k for t in trials for k in t.params} - set(dists))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["number", "state", "fitness", *names, "seconds"])
    for t in trials:
        seconds = f"{t.duration.total_seconds():.1f}" if t.duration is not None else ""
        w.writerow([t.number, t.state.name, _cell(t.value), *(_cell(t.params.get(k)) for k in names), seconds])
    atomic_write_text(out / "tune_results.csv", buf.getvalue())
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    if not done:
        return
    best = max(done, key=lambda t: t.value)
    values = dict(best.params)
    if "optimizer" in best.user_attrs:
        values["optimizer"] = best.user_attrs["optimizer"]  # lr0/momentum act only with it (not with auto)
    head = (f"# Best of study '{study.study_name}': trial {best.number}, fitness {best.value:.6g} (0.1 mAP50 + "
            f"0.9 mAP50-95 of its best epoch), {len(done)} complete trial(s) of {len(trials)}.\n"
            f"# Train with it: python train.py cfg={out / 'best_hyperparameters.yaml'}\n")
    atomic_write_text(out / "best_hyperparameters.yaml", head + yaml.safe_dump(values, sort_keys=False))


def write_plots(study, out: Path) -> None:
    """tune_fitness.png, and param_importance.png when two trials completed (importance needs a spread)."""
    from optuna.trial import TrialState

    from ultralytics.utils.plot_curves import new_figure

    trials = [t for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    if not trials:
        return
    fig, ax = new_figure((6, 4))
    for state, marker, label in ((TrialState.COMPLETE, "o", "complete"), (TrialState.PRUNED, "x", "pruned")):
        sel = [t for t in trials if t.state == state and t.value is not None]
        if sel:
            ax.scatter([t.number for t in sel], [t.value for t in sel], marker=marker, label=label)
    best, xs, ys = None, [], []
    for t in trials:
        if t.state == TrialState.COMPLETE:
            best = t.value if best is None else max(best, t.value)
        if best is not None:
            xs.append(t.number)
            ys.append(best)
    ax.step(xs, ys, where="post", color="k", lw=1, label="best so far")
    ax.set(xlabel="trial", ylabel="fitness (0.1 mAP50 + 0.9 mAP50-95)", title=f"study {study.study_name}")
    ax.legend()
    _save(fig, out / "tune_fitness.png")
    if sum(t.state == TrialState.COMPLETE for t in trials) >= 2:
        _importance_plot(study, out / "param_importance.png")


def _importance_plot(study, path: Path) -> None:
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization.matplotlib import plot_param_importances

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # optuna's matplotlib module is marked experimental
            ax = plot_param_importances(study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
    except (ValueError, RuntimeError, ImportError) as e:  # e.g. every trial sampled the same values
        LOGGER.warning(f"WARNING ⚠️ tune: no parameter importance plot ({e})")
        return
    fig = ax.figure
    fig.set_size_inches(7, 4)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150)
    atomic_write_bytes(path, buf.getvalue())
