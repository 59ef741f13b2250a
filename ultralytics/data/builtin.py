"""The built-in 'shapes' detection dataset: generated offline, deterministically, on first use.

Six classes of shapes (circle, square, triangle, star, cross, ring) in random colours, sizes from
about 10 px to half the image, 1-8 per image with partial overlaps, on cluttered backgrounds
(gradients, smooth colour noise, stripes, distractor lines, elongated blobs, text), then blur,
noise and JPEG compression. Images are 256-416 px on each side. Only objects with at least
MIN_VISIBLE of their area visible are labelled, with the box of their visible pixels.
Image i of a split depends only on (seed, split, i), so the dataset is the same on every run.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import cv2
import numpy as np

from ultralytics.utils import LOGGER, REPO_ROOT

CLASSES = ("circle", "square", "triangle", "star", "cross", "ring")
GENERATOR_VERSION = 1
MIN_VISIBLE = 0.6  # visible fraction of an object's area for it to be labelled
SIZE_RANGE = (256, 417)  # image sides drawn from [256, 416]
_TEXT_CHARS = np.array(list("ABDEFHKLMNPRTUVWYZ2345679"))
SPLITS = ("train", "val")


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Cluttered background (h, w, 3) uint8: gradient or smooth colour noise, plus stripes."""
    yy, xx = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None]
    if rng.random() < 0.5:  # linear gradient between two colours at a random angle
        a = rng.uniform(0, 2 * np.pi)
        t = xx * np.float32(np.cos(a)) + yy * np.float32(np.sin(a))
        t = (t - t.min()) / (t.max() - t.min() + 1e-6)
        c0, c1 = rng.uniform(0, 255, 3).astype(np.float32), rng.uniform(0, 255, 3).astype(np.float32)
        bg = c0 + (c1 - c0) * t[..., None]
    else:  # smooth colour noise: a small random grid upscaled
        g = int(rng.integers(2, 10))
        bg = cv2.resize(rng.uniform(0, 255, (g, g, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    if rng.random() < 0.5:  # stripes / texture of low amplitude
        a, f = rng.uniform(0, np.pi), rng.uniform(0.05, 0.5)
        phase = xx * np.float32(f * np.cos(a)) + yy * np.float32(f * np.sin(a))
        bg += (np.float32(rng.uniform(8, 30)) * np.sin(phase))[..., None]
    return np.clip(bg, 0, 255).astype(np.uint8)


def _distractors(rng: np.random.Generator, img: np.ndarray) -> None:
    """Draw lines, elongated ellipses and short text in place: clutter that is not one of the classes."""
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(0, 7))):
        p1, p2 = rng.integers(0, (w, h), 2), rng.integers(0, (w, h), 2)
        cv2.line(img, tuple(map(int, p1)), tuple(map(int, p2)), rng.uniform(0, 255, 3).tolist(),
                 int(rng.integers(1, 4)), cv2.LINE_AA)
    for _ in range(int(rng.integers(0, 4))):
        ax = float(rng.uniform(8, 0.3 * min(h, w)))
        axes = (int(ax), max(1, int(ax / rng.uniform(3, 6))))  # aspect >= 3: never a circle
        c = tuple(int(v) for v in rng.integers(0, (w, h), 2))
        cv2.ellipse(img, c, axes, float(rng.uniform(0, 180)), 0, 360, rng.uniform(0, 255, 3).tolist(), -1, cv2.LINE_AA)
    for _ in range(int(rng.integers(0, 3))):
        text = "".join(rng.choice(_TEXT_CHARS, int(rng.integers(2, 6))))
        org = tuple(int(v) for v in rng.integers((0, 10), (w - 20, h), 2))
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, float(rng.uniform(0.3, 1.0)),
                    rng.uniform(0, 255, 3).tolist(), int(rng.integers(1, 3)), cv2.LINE_AA)


def _polygon(cls: int, r: float, theta: float) -> np.ndarray:
    """Vertices (k, 2) of a class outline of circumradius r, rotated by theta, centred on 0."""
    if cls == 1:  # square
        ang, rad = theta + np.pi / 4 + np.arange(4) * np.pi / 2, np.full(4, r)
    elif cls == 2:  # triangle
        ang, rad = theta + np.arange(3) * 2 * np.pi / 3, np.full(3, r)
    elif cls == 3:  # star with 5 points
        ang, rad = theta + np.arange(10) * np.pi / 5, np.where(np.arange(10) % 2 == 0, r, 0.42 * r)
    else:  # cross (plus sign), arm half-width 0.3 r
        t = 0.3 * r
        pts = np.array([[t, r], [t, t], [r, t], [r, -t], [t, -t], [t, -r], [-t, -r], [-t, -t], [-r, -t], [-r, t],
                        [-t, t], [-t, r]])
        c, s = np.cos(theta), np.sin(theta)
        return pts @ np.array([[c, s], [-s, c]])
    return np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1)


def _shape_alpha(cls: int, r: float, theta: float, ring_in: float, size: int, off: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage mask (size, size) float32 0-1 of one shape centred at `off` inside its patch."""
    m = np.zeros((size, size), np.uint8)
    sh = 4  # sub-pixel precision bits
    ctr = tuple(int(round(v * (1 << sh))) for v in off)
    if cls in (0, 5):  # circle, ring
        cv2.circle(m, ctr, int(round(r * (1 << sh))), 255, -1, cv2.LINE_AA, sh)
        if cls == 5:
            cv2.circle(m, ctr, int(round(r * ring_in * (1 << sh))), 0, -1, cv2.LINE_AA, sh)
    else:
        pts = np.round((_polygon(cls, r, theta) + off) * (1 << sh)).astype(np.int32)
        cv2.fillPoly(m, [pts], 255, cv2.LINE_AA, sh)
    return m.astype(np.float32) * (1 / 255)


def render_shapes_image(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One image -> (BGR uint8 (h, w, 3), labels (n, 5) float64 rows of class, x, y, w, h normalised)."""
    h, w = (int(v) for v in rng.integers(*SIZE_RANGE, 2))
    img = _background(rng, h, w)
    _distractors(rng, img)
    owner = np.full((h, w), -1, np.int16)  # index of the object drawn on top at each pixel
    placed, full_area = [], []
    for _ in range(int(rng.integers(1, 9))):
        cls = int(rng.integers(len(CLASSES)))
        r = float(np.exp(rng.uniform(np.log(5), np.log(0.25 * min(h, w)))))  # diameter ~10 px .. half image
        for _try in range(10):  # place with limited overlap to earlier objects
            cx, cy = rng.uniform(0.6 * r, w - 0.6 * r), rng.uniform(0.6 * r, h - 0.6 * r)
            box = np.array([cx - r, cy - r, cx + r, cy + r])
            if all(_overlap(box, b) < 0.35 for b in placed):
                break
        else:
            continue
        theta, ring_in = float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0.45, 0.7))
        x0, y0 = int(np.floor(cx - r)) - 1, int(np.floor(cy - r)) - 1
        size = int(np.ceil(2 * r)) + 3
        alpha = _shape_alpha(cls, r, theta, ring_in, size, np.array([cx - x0, cy - y0]))
        xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + size, w), min(y0 + size, h)
        a = alpha[ya - y0:yb - y0, xa - x0:xb - x0, None]
        roi = img[ya:yb, xa:xb]
        bg_mean = roi.reshape(-1, 3).mean(0)
        for _c in range(8):  # a colour that stands out from the local background
            colour = rng.uniform(0, 255, 3)
            if np.abs(colour - bg_mean).sum() > 150:
                break
        roi[:] = roi * (1 - a) + colour.astype(np.float32) * a + 0.5
        k = len(placed)
        owner[ya:yb, xa:xb][a[..., 0] >= 0.5] = k
        placed.append(box)
        full_area.append((cls, float((alpha >= 0.5).sum()), (xa, ya, xb, yb)))
    labels = visible_labels(owner, full_area, w, h, min_pixels=12)
    if rng.random() < 0.4:
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 1.5)))
    gain, bias, sigma = rng.uniform(0.75, 1.15), rng.uniform(-20, 20), rng.uniform(0, 10)  # contrast, brightness, noise
    noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)  # uniform noise, std 73.9 before scaling
    k = sigma / 73.9
    img = img.astype(np.float32) * np.float32(gain) + noise.astype(np.float32) * np.float32(k) + np.float32(bias - 127.5 * k)
    return np.clip(img, 0, 255).astype(np.uint8), np.array(labels, dtype=np.float64).reshape(-1, 5)


def visible_labels(owner: np.ndarray, drawn: list, w: int, h: int, min_pixels: int) -> list[list[float]]:
    """YOLO labels of the drawn objects that stay visible: owner (h, w) int, the index of the object that owns
    each pixel (-1 none); drawn: [(cls, full area in px, (xa, ya, xb, yb) drawing window)] in drawing order.
    An object is labelled when at least MIN_VISIBLE of its area and min_pixels pixels are still its own; its
    box is the tight box of those pixels, as [cls, cx, cy, bw, bh] normalised by (w, h)."""
    labels = []
    for k, (cls, area, (xa, ya, xb, yb)) in enumerate(drawn):
        ys, xs = np.nonzero(owner[ya:yb, xa:xb] == k)
        if area > 0 and len(xs) >= MIN_VISIBLE * area and len(xs) >= min_pixels:
            x1, y1, x2, y2 = xs.min() + xa, ys.min() + ya, xs.max() + 1 + xa, ys.max() + 1 + ya
            labels.append([cls, (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h])
    return labels


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection of two xyxy boxes over the area of the smaller one."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return iw * ih / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


def write_split(root: Path, split: int, n: int, seed: int, render, stream: int = 0,
                quality: tuple[int, int] = (70, 96), prefix: bool = False) -> int:
    """Render and write n images + label files of one split; returns the number of instances.

    render(rng) -> (image (h, w, 3) uint8, labels (k, 5)); image i draws from the generator seeded
    [seed, stream + split, i] (each built-in dataset uses its own stream); JPEG quality drawn in [lo, hi).
    prefix: name files '<split>_000000.jpg' (unique across splits) instead of '000000.jpg'.
    """
    name = SPLITS[split]
    pre = f"{name}_" if prefix else ""
    (root / "images" / name).mkdir(parents=True)
    (root / "labels" / name).mkdir(parents=True)
    instances = 0
    for i in range(n):
        rng = np.random.default_rng([seed, stream + split, i])
        img, labels = render(rng)
        q = int(rng.integers(*quality))
        cv2.imwrite(str(root / "images" / name / f"{pre}{i:06d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, q])
        rows = [f"{int(c)} {x:.6f} {y:.6f} {bw:.6f} {bh:.6f}" for c, x, y, bw, bh in labels]
        (root / "labels" / name / f"{pre}{i:06d}.txt").write_text("\n".join(rows) + ("\n" if rows else ""))
        instances += len(rows)
    return instances


def _is_complete(dest: Path, want: dict) -> bool:
    """True when dest holds a finished dataset made with exactly these parameters."""
    try:
        manifest = json.loads((dest / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    if any(manifest.get(k) != v for k, v in want.items()):
        return False
    for split, n in (("train", want["n_train"]), ("val", want["n_val"])):
        try:
            if len(os.listdir(dest / "images" / split)) != n or len(os.listdir(dest / "labels" / split)) != n:
                return False
        except OSError:
            return False
    return True


def _make_shapes(root: Path, n_train: int, n_val: int, seed: int) -> dict:
    """Generate the shapes dataset into an (empty, new) folder; returns the manifest."""
    counts = {k: write_split(root, i, n, seed, render_shapes_image)
              for i, (k, n) in enumerate(zip(SPLITS, (n_train, n_val)))}
    return {"instances": counts, "classes": list(CLASSES)}


GENERATORS = {"shapes": _make_shapes}


def ensure_builtin_dataset(root: Path = REPO_ROOT / "datasets", name: str = "shapes", generator: str = "shapes",
                           n_train: int = 400, n_val: int = 100, seed: int = 0) -> Path:
    """Make `root/name` (images/{train,val}/*.jpg, labels/{train,val}/*.txt, manifest.json) unless complete.

    Writes into a temporary folder renamed into place at the end, so a half-made dataset is never used;
    a dataset made with other parameters is replaced. Returns the dataset folder.
    """
    dest = Path(root) / name
    want = {"generator": generator, "version": GENERATOR_VERSION, "seed": int(seed),
            "n_train": int(n_train), "n_val": int(n_val)}
    if _is_complete(dest, want):
        return dest
    Path(root).mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp, old = Path(root) / f".{name}.tmp-{tag}", Path(root) / f".{name}.old-{tag}"
    LOGGER.info(f"Generating built-in dataset '{generator}' ({n_train} train + {n_val} val images) in {dest} ...")
    try:
        manifest = dict(want, **GENERATORS[generator](tmp, int(n_train), int(n_val), int(seed)))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))  # written last: marks completion
        if dest.exists():
            if _is_complete(dest, want):  # another process finished first
                return dest
            dest.rename(old)
        try:
            tmp.rename(dest)
        except OSError:  # lost a race with another process
            if not _is_complete(dest, want):
                raise
    finally:
        for p in (tmp, old):
            if p.exists():
                shutil.rmtree(p, ignore_errors=True)
    return dest
