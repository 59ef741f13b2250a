"""The built-in small-object dataset 'small-shapes': large scenes crowded with tiny shapes, generated offline.

Scenes of 2000-4000 px on each side hold SCENE_OBJECTS (several hundred) shapes of 6-30 px across, of
4 classes (circle, square, triangle, cross) drawn as the 'shapes' generator draws them (builtin.py), on its
cluttered backgrounds (made at 1/4 scale and enlarged), then a little blur and noise and JPEG at quality
85-95. Letterboxed to 640 such a scene's objects shrink to 1-10 px; this is the data for tiling
(`dataset.py tile=`), sliced prediction and validation, and P2 models (docs/13-small-objects.md). An object is labelled with the box of its visible
pixels when at least MIN_VISIBLE of it is visible. Scene i of a split depends only on (seed, split, i).
Registered as the generator 'small-shapes' (`builtin: small-shapes`, cfg/datasets/small-shapes.yaml).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ultralytics.data.builtin import GENERATORS, SPLITS, _background, _distractors, _shape_alpha, visible_labels, \
    write_split

CLASSES = ("circle", "square", "triangle", "cross")
_SHAPE_ID = (0, 1, 2, 4)  # class -> the shape id of builtin._shape_alpha / _polygon
SIZE_RANGE = (2000, 4001)  # scene sides drawn from [2000, 4000] px
DIAMETER_RANGE = (6.0, 30.0)  # object diameter in px, log-uniform
SCENE_OBJECTS = (200, 601)  # objects tried per scene, drawn from [200, 600]
MAX_COVERED = 0.2  # a placement is retried when this share of its patch is already covered


def render_small_scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One scene -> (BGR uint8 (h, w, 3), labels (n, 5) float64 rows of class, x, y, w, h normalised)."""
    h, w = (int(v) for v in rng.integers(*SIZE_RANGE, 2))
    img = cv2.resize(_background(rng, h // 4, w // 4), (w, h), interpolation=cv2.INTER_LINEAR)  # smooth: 1/4 scale
    for _ in range(4):  # lines, blobs and text spread over the large scene
        _distractors(rng, img)
    owner = np.full((h, w), -1, np.int16)
    drawn = []
    for _ in range(int(rng.integers(*SCENE_OBJECTS))):
        cls = int(rng.integers(len(CLASSES)))
        r = float(np.exp(rng.uniform(*np.log(DIAMETER_RANGE)))) / 2
        theta = float(rng.uniform(0, 2 * np.pi))
        size = int(np.ceil(2 * r)) + 3
        for _try in range(5):
            cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
            x0, y0 = int(np.floor(cx - r)) - 1, int(np.floor(cy - r)) - 1
            xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + size, w), min(y0 + size, h)
            if (owner[ya:yb, xa:xb] >= 0).mean() <= MAX_COVERED:
                break
        else:
            continue
        alpha = _shape_alpha(_SHAPE_ID[cls], r, theta, 0.6, size, np.array([cx - x0, cy - y0]))
        a = alpha[ya - y0:yb - y0, xa - x0:xb - x0, None]
        roi = img[ya:yb, xa:xb]
        base = roi.reshape(-1, 3).mean(0)
        for _c in range(8):  # a colour that stands out from the local background
            colour = rng.uniform(0, 255, 3)
            if np.abs(colour - base).sum() > 150:
                break
        roi[:] = roi * (1 - a) + colour.astype(np.float32) * a + 0.5
        owner[ya:yb, xa:xb][a[..., 0] >= 0.5] = len(drawn)
        drawn.append((cls, float((alpha >= 0.5).sum()), (xa, ya, xb, yb)))
    labels = visible_labels(owner, drawn, w, h, min_pixels=8)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.4, 0.8)))
    noise = rng.integers(0, 13, (h, w), dtype=np.uint8)  # -6..6 grey levels, the same on the three channels
    img = cv2.subtract(cv2.add(img, cv2.merge([noise] * 3)), np.full(3, 6.0))
    return img, np.array(labels, dtype=np.float64).reshape(-1, 5)


def _make_small(root: Path, n_train: int, n_val: int, seed: int) -> dict:
    """Generate the small-shapes dataset into an (empty, new) folder; returns the manifest."""
    counts = {k: write_split(root, i, n, seed, render_small_scene, stream=200, quality=(85, 96),
                             prefix=True)  # train_000000.jpg: names unique across splits, for dataset.py tile=
              for i, (k, n) in enumerate(zip(SPLITS, (n_train, n_val)))}
    return {"instances": counts, "classes": list(CLASSES)}


GENERATORS["small-shapes"] = _make_small
