"""Matplotlib figures of a run: PR / F1 / P / R curves, the confusion matrix heatmap and results.png.

Figures use the object-oriented API (matplotlib.figure.Figure, Agg canvas): no pyplot, no global backend
switch, nothing left open after saving.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from ultralytics.utils import UserError

MEAN_COLOUR = "#1f3b99"  # the thick "all classes" line


def new_figure(figsize: tuple[float, float], nrows: int = 1, ncols: int = 1):
    """A constrained-layout Figure on an Agg canvas and its axes (a single Axes or an (nrows, ncols) array)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=True)
    return fig, axes


def save_figure(fig, path: str | Path, dpi: int = 200) -> Path:
    """Save a figure (format from the suffix), creating the folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def _names(names, n: int) -> list[str]:
    """Class display names for n curves from a list/tuple/dict (falls back to the index)."""
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    names = list(names or [])
    return [str(names[i]) if i < len(names) else str(i) for i in range(n)]


def _line_colour(i: int, n: int):
    """Colour of curve i of n: the default cycle up to 10 curves, tab20 up to 20 (no repeats)."""
    if n <= 10:
        return f"C{i}"
    from matplotlib import colormaps

    return colormaps["tab20"](i % 20)


def _style_unit_axes(ax, xlabel: str, ylabel: str, title: str) -> None:
    """Axis labels, [0, 1] limits with a little headroom, grid and title."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.set_title(title)


def _legend(ax, n_entries: int) -> None:
    """Legend outside the axes on the right (many entries) or inside (few)."""
    if n_entries > 6:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    else:
        ax.legend(loc="lower left", fontsize=9)


def plot_pr_curve(px, py, ap, save_path: str | Path = "PR_curve.png", names=()) -> Path:
    """Precision-recall curves: px (1000,) recall grid, py (c, 1000) precision, ap (c, 10) or (c,) AP.

    One thin line per class (labelled with its AP50 when c <= 20), the class mean thick with mAP@0.5.
    """
    px, py, ap = np.asarray(px), np.atleast_2d(np.asarray(py, dtype=float)), np.asarray(ap, dtype=float)
    ap50 = ap[:, 0] if ap.ndim == 2 else ap.reshape(-1)
    c = len(ap50)
    py = py[:c] if c else np.zeros((0, len(px)))
    fig, ax = new_figure((9, 6))
    labels = _names(names, c)
    per_class = 0 < c <= 20
    for i in range(c):
        kw = (dict(lw=1, color=_line_colour(i, c), label=f"{labels[i]} {ap50[i]:.3f}") if per_class
              else dict(lw=0.8, color="grey", alpha=0.5))
        ax.plot(px, py[i], **kw)
    mean = py.mean(0) if c else np.zeros_like(px)
    map50 = ap50.mean() if c else 0.0
    ax.plot(px, mean, lw=3, color=MEAN_COLOUR, label=f"all classes {map50:.3f} mAP@0.5")
    _style_unit_axes(ax, "Recall", "Precision", "Precision-Recall Curve")
    _legend(ax, c + 1 if per_class else 1)
    return save_figure(fig, save_path, dpi=250)


def plot_mc_curve(px, py, save_path: str | Path = "mc_curve.png", names=(), xlabel: str = "Confidence",
                  ylabel: str = "Metric") -> Path:
    """Metric-confidence curve (F1, Precision or Recall): px (1000,) thresholds, py (c, 1000) per class.

    The thick mean line is lightly smoothed; its legend gives the best mean value and the threshold.
    """
    from ultralytics.utils.metrics import smooth

    px, py = np.asarray(px), np.asarray(py, dtype=float).reshape(-1, len(px))
    c = len(py)
    fig, ax = new_figure((9, 6))
    labels = _names(names, c)
    per_class = 0 < c <= 20
    for i in range(c):
        kw = (dict(lw=1, color=_line_colour(i, c), label=labels[i]) if per_class
              else dict(lw=0.8, color="grey", alpha=0.5))
        ax.plot(px, py[i], **kw)
    mean = np.zeros_like(px, dtype=float)
    defined = np.isfinite(py).any(0) if c else np.zeros(len(px), dtype=bool)  # NaN = undefined, not drawn
    if defined.any():
        mean[:] = np.nan
        mean[defined] = smooth(np.nanmean(py[:, defined], 0), 0.05)
    i = int(np.nanargmax(mean)) if np.isfinite(mean).any() else 0
    ax.plot(px, mean, lw=3, color=MEAN_COLOUR, label=f"all classes {mean[i]:.2f} at {px[i]:.3f}")
    _style_unit_axes(ax, xlabel, ylabel, f"{ylabel}-{xlabel} Curve")
    _legend(ax, c + 1 if per_class else 1)
    return save_figure(fig, save_path, dpi=250)


def plot_confusion_matrix(matrix, labels: list[str], save_path: str | Path, normalize: bool = True) -> Path:
    """Heatmap of a (k, k) confusion matrix (rows predicted, columns true) with the numbers in the cells.

    normalize: divide each column by its sum (fraction of each true class); cells under 0.005 (or 0 counts)
    are left blank. Numbers are written when k <= 30, tick labels when k <= 60.
    """
    m = np.asarray(matrix, dtype=float)
    k = m.shape[0]
    if normalize:
        m = m / (m.sum(0, keepdims=True) + 1e-9)
    shown = np.where(m < (0.005 if normalize else 0.5), np.nan, m)
    side = float(np.clip(0.45 * k + 3.5, 6, 16))
    fig, ax = new_figure((side * 1.15, side))
    vmax = 1.0 if normalize else max(float(np.nanmax(shown)) if np.isfinite(shown).any() else 1.0, 1.0)
    im = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    fontsize = float(np.clip(11 - 0.15 * k, 5, 10))
    if k <= 30:
        for r, c in zip(*np.nonzero(np.isfinite(shown))):
            v = shown[r, c]
            text = f"{v:.2f}" if normalize else f"{int(round(v))}"
            ax.text(c, r, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if v > 0.6 * vmax else "black")
    if k <= 60:
        ax.set_xticks(range(k), labels, rotation=90, fontsize=fontsize)
        ax.set_yticks(range(k), labels, fontsize=fontsize)
    ax.set_xticks(np.arange(-0.5, k, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, k, 1), minor=True)
    ax.grid(which="minor", color="#d0d0d0", linewidth=0.5)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel("True")
    ax.set_ylabel("Predicted")
    ax.set_title("Confusion Matrix Normalized" if normalize else "Confusion Matrix")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    return save_figure(fig, save_path, dpi=200)


# results.png panels: (title when several columns match, regex on the stripped column name)
RESULT_PANELS = (
    ("train/box", r"^train/box"), ("train/cls", r"^train/cls"), ("train/dfl", r"^train/dfl"),
    ("metrics/precision(B)", r"^metrics/precision"), ("metrics/recall(B)", r"^metrics/recall"),
    ("val/box", r"^val/box"), ("val/cls", r"^val/cls"), ("val/dfl", r"^val/dfl"),
    ("metrics/mAP50(B)", r"^metrics/mAP50(\(|$)"), ("metrics/mAP50-95(B)", r"^metrics/mAP50-95"),
)


def save_confusion_matrix(cm, save_dir: str | Path = ".", names: dict | list | None = None,
                          normalize: bool = True) -> Path:
    """Write confusion_matrix_normalized.png (columns sum to 1) or confusion_matrix.png of a ConfusionMatrix.

    cm: ultralytics.utils.confusion_matrix.ConfusionMatrix (its .nc and (nc + 1, nc + 1) .matrix); returns the path.
    """
    names = names or {}
    names = names if isinstance(names, dict) else dict(enumerate(names))
    labels = [str(names.get(i, i)) for i in range(cm.nc)] + ["background"]
    fname = "confusion_matrix_normalized.png" if normalize else "confusion_matrix.png"
    return plot_confusion_matrix(cm.matrix, labels, Path(save_dir) / fname, normalize=normalize)


def read_results_csv(csv_file: str | Path) -> tuple[list[str], np.ndarray]:
    """Read a results.csv: (stripped column names, (rows, cols) float array, NaN where not a number)."""
    path = Path(csv_file)
    if not path.is_file():
        raise UserError(f"plot_results: results CSV not found: {path}")
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise UserError(f"plot_results: {path} has no data rows (a header and at least one row are needed)")
    header = [h.strip() for h in rows[0]]

    def number(cell: str) -> float:
        try:
            return float(cell)
        except ValueError:
            return float("nan")

    data = np.full((len(rows) - 1, len(header)), np.nan)
    for i, row in enumerate(rows[1:]):
        vals = [number(cell) for cell in row[: len(header)]]
        data[i, : len(vals)] = vals
    return header, data


def gaussian_smooth(y: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    """Gaussian filter of a 1-D series, y (n,) -> (n,); the kernel is truncated and renormalised at the ends.

    No mirrored padding, so the smoothed line never bends against a trend at the edges.
    """
    y = np.asarray(y, dtype=float)
    r = int(4 * sigma + 0.5)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    num = np.convolve(y, k)[r : r + len(y)]
    den = np.convolve(np.ones_like(y), k)[r : r + len(y)]
    return num / den


def plot_results(csv_file: str | Path = "results.csv", save_path: str | Path | None = None) -> Path:
    """results.png beside the CSV: 2x5 panels (train losses, P, R, val losses, mAP50, mAP50-95) per epoch.

    Each panel draws the raw values and, from 3 points on, a Gaussian-smoothed dotted line. Columns are
    found by name (spaces stripped); a panel whose column is missing says so.
    """
    from matplotlib.ticker import MaxNLocator

    header, data = read_results_csv(csv_file)
    x = data[:, header.index("epoch")] if "epoch" in header else np.arange(1, len(data) + 1, dtype=float)
    fig, axes = new_figure((16, 6.5), 2, 5)
    for ax, (title, pattern) in zip(axes.ravel(), RESULT_PANELS):
        cols = [i for i, h in enumerate(header) if re.search(pattern, h)]
        ax.set_title(header[cols[0]] if len(cols) == 1 else title, fontsize=11)
        ax.grid(True, alpha=0.3)
        ax.set_xlabel("epoch", fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for j, col in enumerate(cols):
            ok = np.isfinite(data[:, col]) & np.isfinite(x)
            xs, ys = x[ok], data[ok, col]
            colour = f"C{j}"
            ax.plot(xs, ys, marker=".", markersize=5, lw=1.5, color=colour, label=header[col])
            if len(ys) >= 3:
                sigma = min(3.0, max(len(ys) / 15, 0.5))  # gentler on short runs
                ax.plot(xs, gaussian_smooth(ys, sigma), ":", lw=2, color=colour, alpha=0.9, label="smooth")
        if not cols:
            ax.text(0.5, 0.5, "not in CSV", ha="center", va="center", transform=ax.transAxes, color="grey")
        elif len(cols) > 1 or ax is axes[0, 0]:
            ax.legend(fontsize=7)
    out = Path(save_path) if save_path else Path(csv_file).with_name("results.png")
    return save_figure(fig, out, dpi=200)


def plot_metric_curves(box, save_dir: str | Path, names: dict | None = None, prefix: str = "") -> list[Path]:
    """Draw PR_curve.png, F1_curve.png, P_curve.png and R_curve.png of a metrics `.box` (Metric) into save_dir.

    box: ultralytics.utils.metrics.Metric after DetMetrics.process (curves (c, 1000) over the grid px).
    The precision curve is left blank past the highest confidence at which a class keeps any prediction.
    """
    names = names or {}
    labels = [str(names.get(int(c), int(c))) for c in box.ap_class_index]
    save_dir, x = Path(save_dir), box.px
    kept = (box.p_curve > 0) | (box.r_curve > 0)  # (c, 1000): something is kept at this confidence
    last = np.where(kept.any(1), kept.shape[1] - 1 - kept[:, ::-1].argmax(1), -1)
    p_kept = np.where(np.arange(len(x))[None] <= last[:, None], box.p_curve, np.nan)
    return [plot_pr_curve(x, box.prec_values, box.all_ap, save_dir / f"{prefix}PR_curve.png", labels),
            plot_mc_curve(x, box.f1_curve, save_dir / f"{prefix}F1_curve.png", labels, ylabel="F1"),
            plot_mc_curve(x, p_kept, save_dir / f"{prefix}P_curve.png", labels, ylabel="Precision"),
            plot_mc_curve(x, box.r_curve, save_dir / f"{prefix}R_curve.png", labels, ylabel="Recall")]
