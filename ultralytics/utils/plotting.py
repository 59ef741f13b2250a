"""Images with boxes: class colours, annotated predictions, batch mosaics and the label statistics figure.

Curve figures (PR/F1/P/R, confusion matrix, results.png) live in plot_curves.py and are re-exported here.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch

from ultralytics.utils.ops import xywh2xyxy
from ultralytics.utils.plot_curves import (  # noqa: F401  (re-exported)
    new_figure,
    plot_confusion_matrix,
    plot_mc_curve,
    plot_pr_curve,
    plot_results,
    save_figure,
)

# 20 well-separated colours (RGB hex), cycled by class id
PALETTE_HEX = (
    "E6194B", "3CB44B", "4363D8", "F58231", "911EB4", "42D4F4", "F032E6", "9A6324", "469990", "800000",
    "BFEF45", "000075", "FFE119", "808000", "DCBEFF", "AAFFC3", "FABED4", "FFD8B1", "A9A9A9", "1B5E20",
)
PALETTE_RGB = tuple(tuple(int(h[i : i + 2], 16) for i in (0, 2, 4)) for h in PALETTE_HEX)
MAX_MOSAIC_SIDE = 1920


def colors(i: int, bgr: bool = False) -> tuple[int, int, int]:
    """Colour of class i from the fixed palette, RGB (or BGR for cv2)."""
    c = PALETTE_RGB[int(i) % len(PALETTE_RGB)]
    return c[::-1] if bgr else c


def _np(x) -> np.ndarray:
    """Tensor / sequence -> numpy array on the CPU."""
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _label_name(names, c: int) -> str:
    """Display name of class c from a dict or list of names (the id when unknown)."""
    if isinstance(names, dict):
        return str(names.get(c, c))
    return str(names[c]) if names is not None and 0 <= c < len(names) else str(c)


def box_label(img: np.ndarray, box, label: str, colour: tuple[int, int, int], lw: int, font_scale: float) -> None:
    """Draw one xyxy box and its label (filled background) on a BGR image in place, clipped to the image.

    The label sits above the box, or just inside its top edge when there is no room above; it is shifted
    left when it would run past the right edge.
    """
    h, w = img.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, x2 = max(0, min(x1, w - 1)), max(0, min(x2, w - 1))
    y1, y2 = max(0, min(y1, h - 1)), max(0, min(y2, h - 1))
    cv2.rectangle(img, (x1, y1), (x2, y2), colour, lw, cv2.LINE_AA)
    if not label:
        return
    thick = max(lw - 1, 1)
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
    pad = max(2, lw)
    bw, bh = tw + 2 * pad, th + base + pad
    lx = max(0, min(x1, w - bw))
    top = y1 - bh if y1 - bh >= 0 else min(y1, max(h - bh, 0))
    cv2.rectangle(img, (lx, top), (lx + bw, top + bh), colour, -1, cv2.LINE_AA)
    luminance = 0.299 * colour[2] + 0.587 * colour[1] + 0.114 * colour[0]
    text_colour = (0, 0, 0) if luminance > 150 else (255, 255, 255)
    cv2.putText(img, label, (lx + pad, top + th + pad // 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale, text_colour,
                thick, cv2.LINE_AA)


def draw_detections(img: np.ndarray, boxes, cls, conf=None, names=None, line_width: int | None = None) -> np.ndarray:
    """Annotated copy of a BGR image: img (H, W, 3) uint8, boxes (N, 4) pixel xyxy, cls (N,), conf (N,) or None.

    Each box in its class colour with a "name 0.87" label on a filled background.
    """
    out = np.ascontiguousarray(img).copy()
    boxes, cls = _np(boxes).reshape(-1, 4), _np(cls).reshape(-1).astype(int)
    conf = None if conf is None else _np(conf).reshape(-1)
    lw = line_width or max(round(sum(out.shape[:2]) / 2 * 0.003), 2)
    font_scale = max(lw / 3, 0.4)
    for i in range(len(boxes)):
        label = _label_name(names, cls[i]) + ("" if conf is None else f" {conf[i]:.2f}")
        box_label(out, boxes[i], label, colors(cls[i], bgr=True), lw, font_scale)
    return out


def _to_uint8_hwc(images) -> np.ndarray:
    """(B, 3, H, W) RGB uint8 or float (0-1 or 0-255) tensor/array -> (B, H, W, 3) BGR uint8."""
    ims = _np(images)
    if ims.ndim == 3:
        ims = ims[None]
    if ims.dtype != np.uint8:
        ims = ims.astype(np.float32)
        if ims.size and ims.max() <= 1.0:
            ims = ims * 255
        ims = ims.clip(0, 255).astype(np.uint8)
    return np.ascontiguousarray(ims.transpose(0, 2, 3, 1)[..., ::-1])


def plot_images(images, batch_idx, cls, bboxes=None, confs=None, paths=None, fname: str | Path = "images.jpg",
                names=None, max_subplots: int = 16, conf_thres: float = 0.25, boxes_xyxy: bool | None = None):
    """Save a mosaic of a batch with its boxes; returns the mosaic (BGR uint8).

    images: (B, 3, H, W) RGB uint8, or float in 0-1 / 0-255; batch_idx: (N,) image of each box; cls: (N,)
    or (N, 1); bboxes: (N, 4); confs: (N,) for predictions (None for labels). Boxes are normalized xywh for
    labels and pixel xyxy for predictions unless boxes_xyxy says otherwise; coordinates all <= 1.01 are
    taken as normalized. Predictions with conf < conf_thres are not drawn. At most max_subplots images,
    tiles in a near-square grid, scaled down so the mosaic's longer side is <= 1920 px.
    """
    ims = _to_uint8_hwc(images)[:max_subplots]
    bs, h, w = ims.shape[0], ims.shape[1], ims.shape[2]
    ncols = math.ceil(math.sqrt(bs)) if bs else 1
    nrows = math.ceil(bs / ncols) if bs else 1
    scale = min(1.0, MAX_MOSAIC_SIDE / max(nrows * h, ncols * w))
    th, tw = max(int(h * scale), 1), max(int(w * scale), 1)
    mosaic = np.full((nrows * th, ncols * tw, 3), 255, dtype=np.uint8)

    batch_idx = _np(batch_idx).reshape(-1).astype(int)
    cls = _np(cls).reshape(-1).astype(int)
    boxes = np.zeros((0, 4)) if bboxes is None else _np(bboxes).reshape(-1, 4).astype(np.float64)
    confs = None if confs is None else _np(confs).reshape(-1)
    xyxy = (confs is not None) if boxes_xyxy is None else boxes_xyxy
    if len(boxes):
        if boxes.max() <= 1.01:  # normalized -> pixels of the original tile
            boxes = boxes * np.array([w, h, w, h])
        if not xyxy:
            boxes = xywh2xyxy(boxes)
        boxes = boxes * scale
    lw = max(1, round(min(th, tw) / 200))
    font_scale = float(np.clip(min(th, tw) / 640, 0.35, 0.6))

    for i in range(bs):
        y0, x0 = (i // ncols) * th, (i % ncols) * tw
        tile = cv2.resize(ims[i], (tw, th), interpolation=cv2.INTER_AREA) if scale < 1 else ims[i].copy()
        keep = batch_idx == i
        if confs is not None:
            keep &= confs >= conf_thres
        for j in np.nonzero(keep)[0]:
            label = _label_name(names, cls[j]) + ("" if confs is None else f" {confs[j]:.2f}")
            box_label(tile, boxes[j], label, colors(cls[j], bgr=True), lw, font_scale * 0.8)
        if paths is not None and i < len(paths):  # file name on a white strip at the bottom-left
            name = Path(str(paths[i])).name[:40]
            (nw, nh), base = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
            cv2.rectangle(tile, (0, th - nh - base - 6), (nw + 8, th), (255, 255, 255), -1)
            cv2.putText(tile, name, (4, th - base - 3), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (30, 30, 30), 1,
                        cv2.LINE_AA)
        mosaic[y0 : y0 + th, x0 : x0 + tw] = tile
        cv2.rectangle(mosaic, (x0, y0), (x0 + tw - 1, y0 + th - 1), (255, 255, 255), 2)  # tile border
    fname = Path(fname)
    fname.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(fname), mosaic)
    return mosaic


def plot_labels(boxes, cls, names=None, save_dir: str | Path = ".") -> Path:
    """labels.jpg: class histogram, box centres, box sizes, and box outlines (centred) of a dataset.

    boxes: (N, 4) normalized xywh; cls: (N,) class ids; names: {id: name} or list. Returns the path.
    """
    boxes = _np(boxes).reshape(-1, 4).astype(np.float64)
    cls = _np(cls).reshape(-1).astype(int)
    nc = max(len(names) if names is not None else 0, int(cls.max()) + 1 if len(cls) else 0, 1)
    counts = np.bincount(cls, minlength=nc)
    fig, axes = new_figure((11, 9), 2, 2)
    ax_cls, ax_box, ax_xy, ax_wh = axes[0, 0], axes[0, 1], axes[1, 0], axes[1, 1]

    bar_colours = [np.array(colors(i)) / 255 for i in range(nc)]
    ax_cls.bar(np.arange(nc), counts, color=bar_colours, edgecolor="black", linewidth=0.3)
    if nc <= 30:
        ax_cls.set_xticks(range(nc), [_label_name(names, i) for i in range(nc)], rotation=90, fontsize=8)
    ax_cls.set_ylabel("instances")
    ax_cls.set_title(f"Class distribution ({len(cls)} boxes)")
    ax_cls.grid(True, axis="y", alpha=0.3)

    ax_box.set_title("Box shapes (centred, up to 1000)")
    ax_box.set_xlim(0, 1)
    ax_box.set_ylim(1, 0)
    ax_box.set_aspect("equal")
    ax_box.set_xticks([])
    ax_box.set_yticks([])
    if len(boxes):
        from matplotlib.collections import LineCollection

        sel = np.random.default_rng(0).permutation(len(boxes))[:1000]
        b = xywh2xyxy(np.concatenate((np.full((len(sel), 2), 0.5), boxes[sel, 2:]), 1))
        outlines = np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [2, 3]], b[:, [0, 3]], b[:, [0, 1]]], 1)  # (k, 5, 2)
        ax_box.add_collection(LineCollection(outlines, colors=[bar_colours[c] for c in cls[sel]], linewidths=0.6,
                                             alpha=0.6))

    for ax, (i, j), (xl, yl), title in ((ax_xy, (0, 1), ("x", "y"), "Box centres"),
                                        (ax_wh, (2, 3), ("width", "height"), "Box sizes")):
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.set_title(title + " (normalized)")
        if len(boxes):
            ax.hist2d(boxes[:, i], boxes[:, j], bins=50, range=[[0, 1], [0, 1]], cmap="Blues", cmin=1)
        ax.set_xlim(0, 1)
        ax.set_ylim((1, 0) if i == 0 else (0, 1))
        ax.set_aspect("equal")
        ax.grid(True, alpha=0.3)
    if not len(boxes):
        ax_box.text(0.5, 0.5, "no labels", ha="center", va="center", color="grey")
    return save_figure(fig, Path(save_dir) / "labels.jpg", dpi=150)
