"""compare.png: the per-epoch curves of every run overlaid, one colour per group of seeds.

Panels: mAP50-95, mAP50, the three train losses, the three val losses. A group of several seeds is drawn
as thin lines per seed, its mean as a thick line and mean ± std as a band; runs in progress are dashed.
Epochs that were not validated (val=False) are left out of the metric and val-loss panels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ultralytics.compare.core import Comparison
from ultralytics.compare.runs import LOSS_COLUMNS, METRIC_COLUMNS, Run
from ultralytics.utils.plot_curves import new_figure, save_figure

PANELS = [METRIC_COLUMNS["mAP50-95"], METRIC_COLUMNS["mAP50"], *LOSS_COLUMNS]


def _series(run: Run, col: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs (E,), values (E,)) of a column; unvalidated epochs are NaN for metrics and val losses."""
    x = run.column("epoch").astype(np.float64)
    y = run.column(col).astype(np.float64).copy()
    if not col.startswith("train/"):
        y[~run.validated()] = np.nan
    return x, y


def _mean_std(runs: list[Run], col: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-epoch (epochs, mean, std, count) over the runs that reached each epoch: all (K,)."""
    n = max(r.epochs_done for r in runs)
    stack = np.full((len(runs), n), np.nan)
    for i, r in enumerate(runs):
        _, y = _series(r, col)
        stack[i, : len(y)] = y
    count = np.isfinite(stack).sum(0)
    with np.errstate(invalid="ignore"):
        mean = np.where(count > 0, np.nansum(stack, 0) / np.maximum(count, 1), np.nan)
        dev = np.where(np.isfinite(stack), stack - mean, 0.0)
        std = np.where(count > 1, np.sqrt((dev**2).sum(0) / np.maximum(count - 1, 1)), np.nan)
    return np.arange(1, n + 1, dtype=np.float64), mean, std, count


def _use_log(ax_values: list[np.ndarray]) -> bool:
    """Log scale for a loss panel whose positive values span more than 50x (a diverging run)."""
    v = np.concatenate([a[np.isfinite(a)] for a in ax_values]) if ax_values else np.zeros(0)
    return bool(v.size and (v > 0).all() and v.max() / v.min() > 50)


def plot_curves(comp: Comparison, path: str | Path) -> Path:
    """Draw every run of the comparison into one PNG (2 x 4 panels); returns the path."""
    from matplotlib.ticker import MaxNLocator

    fig, axes = new_figure((17, 7.5), 2, 4)
    groups = [g for g in comp.groups if any(r.epochs_done for r in g.runs)]
    n_epochs = max((r.epochs_done for r in comp.runs), default=1)
    for ax, col in zip(axes.ravel(), PANELS):
        drawn = []
        for gi, g in enumerate(groups):
            colour = f"C{gi % 10}"
            runs = [r for r in g.runs if r.epochs_done]
            many = len(g.used) >= 2
            for r in runs:
                x, y = _series(r, col)
                drawn.append(y)
                style = "-" if r.done else "--"
                if many:
                    ax.plot(x, y, style, color=colour, lw=0.8, alpha=0.35)
                else:
                    ax.plot(x, y, style, color=colour, lw=1.8, marker="." if len(x) < 40 else None,
                            label=f"{g.label} ({r.name})")
            if many:
                x, mean, std, count = _mean_std(g.used, col)
                ax.plot(x, mean, "-", color=colour, lw=2.2, marker="." if len(x) < 40 else None,
                        label=f"{g.label} (mean of {len(g.used)} seeds)")
                band = count > 1
                ax.fill_between(x[band], (mean - std)[band], (mean + std)[band], color=colour, alpha=0.18, lw=0)
        ax.set_title(col, fontsize=11)
        ax.set_xlabel("epoch", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0.5, max(n_epochs, 2) + 0.5)
        if "loss" in col and _use_log(drawn):
            ax.set_yscale("log")
        if not drawn:
            ax.text(0.5, 0.5, "no results yet", ha="center", va="center", transform=ax.transAxes, color="grey")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=9, frameon=False)
    fig.suptitle(f"{len(comp.runs)} runs, {len(groups)} groups: thick line and band = mean ± std over seeds, "
                 f"dashed = in progress; baseline {comp.baseline_group.label}", fontsize=11)
    return save_figure(fig, path, dpi=110)
