"""The effective receptive field (ERF) as RepLKNet measures it, and its high-contribution area ratios.

For a feature map y (B, C, h, w) computed from the input x (B, 3, H, W), the ERF of its centre unit is
the mean over images of |d(sum_c y[:, c, h//2, w//2]) / dx|, summed over the colour channels: an (H, W) map.
Displayed as log10(m + 1) normalised to [0, 1]. The area ratio r(t) is the area of the smallest square
centred on the centre pixel that holds a fraction t of the (log-scaled) map's total, divided by H * W
(RepLKNet's analysis script; larger r = larger ERF). Thresholds 0.2, 0.3, 0.5, 0.99.

    from ultralytics.analysis import erf
    result = erf.run(model="yolov10n-LSKA.yaml", source="datasets/shapes/images/val", n=20, imgsz=512)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ultralytics.utils import LOGGER, UserError

THRESHOLDS = (0.2, 0.3, 0.5, 0.99)


def erf_map(fn: Callable[[torch.Tensor], torch.Tensor | list[torch.Tensor]], images: torch.Tensor,
            batch: int = 4) -> list[np.ndarray]:
    """Sum over images of |d centre unit / d input| for each feature map fn returns.

    fn: x (B, 3, H, W) -> a feature map (B, C, h, w) or a list of them (the samples must be independent,
    e.g. a model in eval mode). images: (N, 3, H, W) float. Returns one (H, W) float64 array per map: the
    |gradient| summed over colour channels and over the N images (divide by N for the mean).
    """
    sums = None
    for k in range(0, len(images), batch):
        x = images[k: k + batch].clone().requires_grad_(True)
        outs = fn(x)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        if sums is None:
            sums = [np.zeros(tuple(images.shape[2:]), dtype=np.float64) for _ in outs]
        for j, y in enumerate(outs):
            h, w = y.shape[2:]
            centre = y[:, :, h // 2, w // 2].sum()  # summed over channels and (independent) images
            (g,) = torch.autograd.grad(centre, x, retain_graph=j < len(outs) - 1)
            sums[j] += g.abs().sum(dim=(0, 1)).double().cpu().numpy()
    return sums


def log_normalise(m: np.ndarray) -> np.ndarray:
    """log10(m + 1) scaled to [0, 1] (all zeros stay zeros)."""
    m = np.log10(np.asarray(m, dtype=np.float64) + 1)
    top = m.max()
    return m / top if top > 0 else m


def area_ratio(m: np.ndarray, t: float) -> float:
    """Area of the smallest centred square holding a fraction t of m's total, over the map's area.

    m: (H, W) non-negative (log-normalise it first to follow RepLKNet). The square has side 2i + 1 around
    (H // 2, W // 2), clipped to the map. A map that is all zeros gives NaN.
    """
    m = np.asarray(m, dtype=np.float64)
    h, w = m.shape
    total = m.sum()
    if total <= 0:
        return float("nan")
    cy, cx = h // 2, w // 2
    for i in range(max(h, w)):
        sq = m[max(cy - i, 0): cy + i + 1, max(cx - i, 0): cx + i + 1]
        if sq.sum() >= t * total * (1 - 1e-12):
            return sq.size / (h * w)
    return 1.0


def support(m: np.ndarray, eps: float = 0.0) -> tuple[int, int]:
    """(height, width) of the bounding box of the pixels of m above eps: the exact receptive field of a map."""
    ys, xs = np.nonzero(np.asarray(m) > eps)
    return (0, 0) if not len(ys) else (int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1))


def load_images(source, n: int, imgsz: int) -> tuple[torch.Tensor, list[str]]:
    """The first n images of a folder / glob / list, each resized to (imgsz, imgsz): ((N, 3, S, S) 0..1, paths)."""
    from ultralytics.analysis.rows import resize_square, to_tensor
    from ultralytics.data.image_io import ImageReadError, imread
    from ultralytics.data.utils import get_img_files

    if source is None:
        raise UserError("erf needs source= a folder (or glob) of images, e.g. source=datasets/shapes/images/val")
    files = get_img_files(source)  # UserError naming the path when it does not exist or holds no image
    ims, used = [], []
    for f in files:
        if len(ims) >= n:
            break
        try:
            ims.append(to_tensor(resize_square(imread(f), imgsz)))
            used.append(f)
        except ImageReadError as e:
            LOGGER.warning(f"WARNING: skipping {e}")
    if not ims:
        raise UserError(f"no readable images in {source}")
    if len(ims) < n:
        LOGGER.warning(f"WARNING: n={n} but {source} has only {len(ims)} readable images; using {len(ims)}")
    return torch.cat(ims), used


def model_erf(model, images: torch.Tensor, layers=None, batch: int = 4) -> dict:
    """ERF maps of a DetectionModel's rows: {row: (mean |grad| map (H, W), level name, stride)}.

    images: (N, 3, H, W) on the model's device. layers: row indices (default: the rows the head reads).
    """
    from ultralytics.analysis.rows import check_layers, level_name, run_rows

    rows = sorted(set(check_layers(model, layers)))
    sums = erf_map(lambda x: [o for _, o in sorted(run_rows(model, x, rows).items())], images, batch)
    with torch.no_grad():
        shapes = {i: o.shape[2:] for i, o in run_rows(model, images[:1], rows).items()}
    out = {}
    for (row, hw), s in zip(sorted(shapes.items()), sums):
        stride = images.shape[2] / hw[0]
        out[row] = (s / len(images), level_name(model, row, stride), stride)
    return out


def run(model="yolov10n-LSKA.yaml", model2=None, source=None, n: int = 50, imgsz: int = 512, device="",
        layers=None, batch: int = 4, project: str = "runs/erf", name: str = "exp", exist_ok: bool = False,
        plot: bool = True) -> dict:
    """Measure the ERF of one or two models; write erf.csv, erf.png (plot=True) and erf.npz to project/nameN.

    Returns {'save_dir', 'rows': [{model, level, threshold, area_ratio}], 'maps': {(model, level): (H, W)},
    'seconds'}. Works with untrained (YAML) and trained (.pt) weights; `layers` applies to both models.
    """
    from ultralytics.analysis.rows import load_detection_model, model_label
    from ultralytics.utils.files import atomic_write_text, increment_path
    from ultralytics.utils.torch_utils import select_device

    for key, v in (("n", n), ("imgsz", imgsz), ("batch", batch)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise UserError(f"{key}={v!r} must be a positive int")
    if imgsz < 32:
        raise UserError(f"imgsz={imgsz} is too small for the stride-32 maps; use imgsz >= 64 (RepLKNet: 1024)")
    dev = select_device(device, verbose=False)
    images, _ = load_images(source, n, imgsz)
    images = images.to(dev)
    rows, maps, t0 = [], {}, time.perf_counter()
    labels = []
    for given in [m for m in (model, model2) if m is not None]:
        det = load_detection_model(given, dev)
        label = model_label(det, given)
        label = label if label not in labels else f"{label}#{len(labels) + 1}"
        labels.append(label)
        for row, (m, level, _) in model_erf(det, images, layers, batch).items():
            maps[(label, level)] = m
            norm = log_normalise(m)
            for t in THRESHOLDS:
                rows.append({"model": label, "level": level, "threshold": t, "area_ratio": area_ratio(norm, t)})
    seconds = time.perf_counter() - t0
    save_dir = increment_path(Path(project) / name, exist_ok=exist_ok)
    lines = ["model,level,threshold,area_ratio"] + [f"{r['model']},{r['level']},{r['threshold']},{r['area_ratio']:.6f}"
                                                     for r in rows]
    atomic_write_text(save_dir / "erf.csv", "\n".join(lines) + "\n")
    np.savez_compressed(save_dir / "erf.npz", **{f"{m}|{lv}": a.astype(np.float32) for (m, lv), a in maps.items()})
    if plot:
        plot_erf(maps, rows, save_dir / "erf.png")
    LOGGER.info(format_table(rows) + f"\n{len(images)} images at {imgsz}x{imgsz}, {seconds:.1f}s; "
                f"results in {save_dir}")
    return {"save_dir": save_dir, "rows": rows, "maps": maps, "seconds": seconds}


def format_table(rows: list[dict]) -> str:
    """Area ratios as text: one line per (model, level), one column per threshold."""
    keys = list(dict.fromkeys((r["model"], r["level"]) for r in rows))
    w = max([len(m) for m, _ in keys] + [5])
    head = f"{'model':<{w}} level " + " ".join(f"r({t:g})".rjust(8) for t in THRESHOLDS)
    lines = [head]
    for m, lv in keys:
        vals = {r["threshold"]: r["area_ratio"] for r in rows if (r["model"], r["level"]) == (m, lv)}
        lines.append(f"{m:<{w}} {lv:<5} " + " ".join(f"{vals.get(t, float('nan')):8.4f}" for t in THRESHOLDS))
    return "\n".join(lines)


def plot_erf(maps: dict, rows: list[dict], path: Path) -> Path:
    """erf.png: one log-normalised map per model (row of the grid) and level (column), r(0.2)/r(0.5) in titles."""
    from matplotlib.figure import Figure

    models = list(dict.fromkeys(m for m, _ in maps))
    levels = list(dict.fromkeys(lv for _, lv in maps))
    fig = Figure(figsize=(3.2 * len(levels), 3.3 * len(models)), dpi=100)
    axes = fig.subplots(len(models), len(levels), squeeze=False)
    im = None
    ratio = {(r["model"], r["level"], r["threshold"]): r["area_ratio"] for r in rows}
    for a, m in enumerate(models):
        for b, lv in enumerate(levels):
            ax = axes[a][b]
            ax.set_xticks([])
            ax.set_yticks([])
            if (m, lv) not in maps:
                ax.set_title(f"{m} {lv}: n/a", fontsize=9)
                continue
            im = ax.imshow(log_normalise(maps[(m, lv)]), cmap="RdYlGn", vmin=0, vmax=1)
            ax.set_title(f"{m} {lv}\nr(0.2)={ratio[(m, lv, 0.2)]:.3f} r(0.5)={ratio[(m, lv, 0.5)]:.3f}", fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="log10(|grad| + 1), normalised")
    fig.savefig(path)
    return Path(path)
