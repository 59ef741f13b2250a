"""The second built-in detection dataset, 'icons': small, dense objects in busy scenes; generated offline.

Where 'shapes' (builtin.py) has few objects of mostly medium size on smooth backgrounds, 'icons' has
5 classes (nut, arrow, crescent, capsule, heart) that are mostly small (diameters about 8-60 px, most
under 24 px, so many fall below the 16 px middle stride), 3-18 per image, some drawn as outlines only,
some in low contrast, on tiled and speckled backgrounds full of distractors that share their colours
(random irregular polygons, dots, grid lines, open arcs). Images are 224-352 px on each side. Then
motion blur or defocus, noise and JPEG. An object is labelled with the box of its visible pixels when
at least MIN_VISIBLE of it is visible. Image i of a split depends only on (seed, split, i).
Registered as the generator 'icons' for data YAMLs (`builtin: icons`, see cfg/datasets/icons.yaml).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ultralytics.data.builtin import SPLITS, GENERATORS, visible_labels, write_split

CLASSES = ("nut", "arrow", "crescent", "capsule", "heart")
SIZE_RANGE = (224, 353)  # image sides drawn from [224, 352]
RADIUS_RANGE = (4.0, 30.0)  # circumradius in px, log-uniform: most objects are small
_SUB = 4  # sub-pixel bits for anti-aliased drawing


def _tiles(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Busy background (h, w, 3) uint8: a tiled or checkered pattern of random colours plus speckle."""
    t = int(rng.integers(12, 48))
    ny, nx = h // t + 2, w // t + 2
    palette = rng.uniform(30, 225, (int(rng.integers(2, 6)), 3)).astype(np.float32)
    cells = palette[rng.integers(0, len(palette), (ny, nx))]  # (ny, nx, 3)
    bg = cv2.resize(cells, (nx * t, ny * t), interpolation=cv2.INTER_NEAREST)
    oy, ox = int(rng.integers(0, t)), int(rng.integers(0, t))
    bg = bg[oy:oy + h, ox:ox + w]
    if rng.random() < 0.5:  # soften the tile edges
        bg = cv2.GaussianBlur(bg, (0, 0), float(rng.uniform(1, 4)))
    speckle = (rng.random((h, w)) < rng.uniform(0.0, 0.03)).astype(np.float32)
    bg += speckle[..., None] * rng.uniform(-120, 120, 3).astype(np.float32)
    return np.clip(bg, 0, 255).astype(np.uint8)


def _clutter(rng: np.random.Generator, img: np.ndarray, colours: np.ndarray) -> None:
    """Draw distractors in place, in the colours the objects use: irregular polygons, dots, grid lines, arcs."""
    h, w = img.shape[:2]
    pick = lambda: colours[int(rng.integers(len(colours)))].tolist()  # noqa: E731
    for _ in range(int(rng.integers(2, 12))):  # irregular blobs, object-sized
        k, r = int(rng.integers(5, 10)), float(np.exp(rng.uniform(np.log(3), np.log(25))))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = r * rng.uniform(0.3, 1.0, k)
        c = rng.uniform(0, (w, h))
        pts = np.stack([c[0] + rad * np.cos(ang), c[1] + rad * np.sin(ang)], 1)
        cv2.fillPoly(img, [np.round(pts * (1 << _SUB)).astype(np.int32)], pick(), cv2.LINE_AA, _SUB)
    for _ in range(int(rng.integers(0, 30))):  # dots
        c = tuple(int(v) for v in rng.integers(0, (w, h)))
        cv2.circle(img, c, int(rng.integers(1, 4)), pick(), -1, cv2.LINE_AA)
    if rng.random() < 0.4:  # a grid of thin lines
        step, col = int(rng.integers(20, 60)), pick()
        for x in range(int(rng.integers(0, step)), w, step):
            cv2.line(img, (x, 0), (x, h - 1), col, 1, cv2.LINE_AA)
        for y in range(int(rng.integers(0, step)), h, step):
            cv2.line(img, (0, y), (w - 1, y), col, 1, cv2.LINE_AA)
    for _ in range(int(rng.integers(0, 5))):  # open arcs (never a closed crescent)
        c = tuple(int(v) for v in rng.integers(0, (w, h)))
        ax = int(rng.integers(4, 30))
        start = float(rng.uniform(0, 360))
        cv2.ellipse(img, c, (ax, ax), 0, start, start + float(rng.uniform(60, 200)), pick(), int(rng.integers(1, 3)),
                    cv2.LINE_AA)


def _outline(cls: int, r: float, theta: float, aspect: float) -> tuple[np.ndarray, np.ndarray | None]:
    """(outer polygon (k, 2), hole polygon (j, 2) or None) of a class, circumradius r, rotated by theta, at 0."""
    hole = None
    if cls == 0:  # nut: hexagon with a round hole
        ang = np.arange(6) * np.pi / 3
        pts = r * np.stack([np.cos(ang), np.sin(ang)], 1)
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        hole = 0.45 * r * np.stack([np.cos(t), np.sin(t)], 1)
    elif cls == 1:  # arrow pointing along +x: shaft and head
        s, hw = 0.18 * r, 0.5 * r
        pts = np.array([[-r, -s], [0.2 * r, -s], [0.2 * r, -hw], [r, 0], [0.2 * r, hw], [0.2 * r, s], [-r, s]])
    elif cls == 2:  # crescent: the part of a disc outside a shifted smaller disc
        t = np.linspace(-0.5 * np.pi, 0.5 * np.pi, 24)
        outer = r * np.stack([np.cos(t), np.sin(t)], 1)
        inner = np.stack([0.45 * r * np.cos(t[::-1]), 0.85 * r * np.sin(t[::-1])], 1)
        pts = np.concatenate([outer, inner])
    elif cls == 3:  # capsule: a stadium of length 2r and width 2r / aspect
        rw = r / aspect
        t = np.linspace(-0.5 * np.pi, 0.5 * np.pi, 12)
        right = np.stack([r - rw + rw * np.cos(t), rw * np.sin(t)], 1)
        pts = np.concatenate([right, -right])
    else:  # heart (the classic parametric curve), point down
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        x, y = 16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        pts = np.stack([x, y + 2.5], 1) * (r / 17)
    rot = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    return pts @ rot, (hole @ rot if hole is not None else None)


def _alpha(cls: int, r: float, theta: float, aspect: float, hollow: int, size: int, off: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage (size, size) float32 0-1 of one object centred at `off` in its patch.

    hollow > 0 draws only the outline, that many px thick (the object is still labelled by its full box).
    """
    m = np.zeros((size, size), np.uint8)
    outer, hole = _outline(cls, r, theta, aspect)
    to_px = lambda p: np.round((p + off) * (1 << _SUB)).astype(np.int32)  # noqa: E731
    if hollow:
        cv2.polylines(m, [to_px(outer)], True, 255, hollow, cv2.LINE_AA, _SUB)
    else:
        cv2.fillPoly(m, [to_px(outer)], 255, cv2.LINE_AA, _SUB)
    if hole is not None:
        cv2.fillPoly(m, [to_px(hole)], 0, cv2.LINE_AA, _SUB) if not hollow else \
            cv2.polylines(m, [to_px(hole)], True, 255, hollow, cv2.LINE_AA, _SUB)
    return m.astype(np.float32) * (1 / 255)


def render_icons_image(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One image -> (BGR uint8 (h, w, 3), labels (n, 5) float64 rows of class, x, y, w, h normalised)."""
    h, w = (int(v) for v in rng.integers(*SIZE_RANGE, 2))
    img = _tiles(rng, h, w)
    colours = rng.uniform(0, 255, (int(rng.integers(3, 7)), 3))  # one palette for objects and distractors
    _clutter(rng, img, colours)
    owner = np.full((h, w), -1, np.int16)
    drawn = []  # (cls, covered pixel count, patch bounds)
    for _ in range(int(rng.integers(3, 19))):
        cls = int(rng.integers(len(CLASSES)))
        r = float(np.exp(rng.uniform(*np.log(RADIUS_RANGE))))
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        theta, aspect = float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(2.5, 4.5))
        hollow = int(rng.integers(1, 3)) if (r > 8 and rng.random() < 0.25) else 0
        x0, y0 = int(np.floor(cx - r)) - 2, int(np.floor(cy - r)) - 2
        size = int(np.ceil(2 * r)) + 5
        alpha = _alpha(cls, r, theta, aspect, hollow, size, np.array([cx - x0, cy - y0]))
        xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + size, w), min(y0 + size, h)
        a = alpha[ya - y0:yb - y0, xa - x0:xb - x0, None]
        roi = img[ya:yb, xa:xb]
        colour = colours[int(rng.integers(len(colours)))]
        if rng.random() < 0.75:  # usually make it stand out from what lies under it; else leave it faint
            base = roi.reshape(-1, 3).mean(0)
            for _c in range(6):
                if np.abs(colour - base).sum() > 120:
                    break
                colour = rng.uniform(0, 255, 3)
        roi[:] = roi * (1 - a) + colour.astype(np.float32) * a + 0.5
        owner[ya:yb, xa:xb][a[..., 0] >= 0.5] = len(drawn)
        drawn.append((cls, float((alpha >= 0.5).sum()), (xa, ya, xb, yb)))
    labels = visible_labels(owner, drawn, w, h, min_pixels=8)
    img = _degrade(rng, img)
    return img, np.array(labels, dtype=np.float64).reshape(-1, 5)


def _degrade(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Motion blur or defocus (sometimes), then Gaussian noise: (h, w, 3) uint8 -> same."""
    u = rng.random()
    if u < 0.3:  # motion blur along a random direction, 3-7 px
        n = int(rng.integers(3, 8))
        k = np.zeros((n, n), np.float32)
        k[n // 2] = 1 / n
        rot = cv2.getRotationMatrix2D(((n - 1) / 2, (n - 1) / 2), float(rng.uniform(0, 180)), 1.0)
        k = cv2.warpAffine(k, rot, (n, n))
        img = cv2.filter2D(img, -1, k / max(float(k.sum()), 1e-6))
    elif u < 0.5:
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.6, 1.2)))
    noise = rng.normal(0, rng.uniform(2, 12), img.shape).astype(np.float32)
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def _make_icons(root: Path, n_train: int, n_val: int, seed: int) -> dict:
    """Generate the icons dataset into an (empty, new) folder; returns the manifest."""
    counts = {k: write_split(root, i, n, seed, render_icons_image, stream=100, quality=(60, 95))  # own streams
              for i, (k, n) in enumerate(zip(SPLITS, (n_train, n_val)))}
    return {"instances": counts, "classes": list(CLASSES)}


GENERATORS["icons"] = _make_icons
