"""What fast_decode changes: pixels against a full decode, decode time, and the mAP of a trained model.

    python benchmarks/decode_diff.py     # about 2 minutes on 2 busy cores; writes benchmarks/results/decode_diff.json

Pixels: a synthetic 1920x1080 JPEG (quality 90: a smooth background, 300 filled shapes, sensor-like noise),
fitted to imgsz 640 (640x360) three ways: the reduced-scale decode (1/2 scale: 960x540, then INTER_AREA, what
fast_decode=True does), a full decode + INTER_AREA (fast_decode=False), and a full decode + INTER_LINEAR (what
prediction did before both followed the setting, and the comparison issue 25 quotes). Mean and 99th percentile
of the absolute difference in grey levels (0-255) over all pixels and channels; decode + resize time, median of
20 runs.
mAP: tests/data/yolov10t-shapes.pt (trained at imgsz 128) validated at imgsz 128 on 100 held-out shapes images
(seed 7, 640 px: decoded at 1/4 scale when fast_decode=True), with fast_decode on and off.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__" and not __package__:
    sys.path.insert(0, str(ROOT))

from benchmarks._results import save_results  # noqa: E402

IMGSZ = 640
CKPT = ROOT / "tests" / "data" / "yolov10t-shapes.pt"


def synthetic_jpeg(path: Path, w: int = 1920, h: int = 1080, seed: int = 0) -> None:
    """A 1920x1080 scene: a smooth gradient, 300 random filled rectangles and circles, Gaussian noise (sigma 6)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w * 180 + 40, yy / h * 160 + 50, (xx + yy) / (w + h) * 120 + 60], -1)
    im = base.astype(np.uint8).copy()
    for _ in range(300):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y, s = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(6, 120))
        if rng.random() < 0.5:
            cv2.rectangle(im, (x, y), (x + s, y + int(s * rng.uniform(0.5, 1.5))), c, -1)
        else:
            cv2.circle(im, (x, y), s // 2, c, -1)
    im = np.clip(im + rng.normal(0, 6, im.shape), 0, 255).astype(np.uint8)
    cv2.imwrite(str(path), im, [cv2.IMWRITE_JPEG_QUALITY, 90])


def pixel_figures(path: Path) -> dict:
    import cv2
    import numpy as np

    from ultralytics.data.image_io import imread, read_resized

    def timed(fn):
        ts, out = [], None
        for _ in range(20):
            t = time.perf_counter()
            out = fn()
            ts.append(time.perf_counter() - t)
        return out, float(np.median(ts)) * 1e3

    (fast, _), t_fast = timed(lambda: read_resized(path, IMGSZ, (1080, 1920), fast_decode=True))
    (area, _), t_area = timed(lambda: read_resized(path, IMGSZ, (1080, 1920), fast_decode=False))
    linear, t_lin = timed(lambda: cv2.resize(imread(path), (640, 360), interpolation=cv2.INTER_LINEAR))
    assert fast.shape == area.shape == linear.shape == (360, 640, 3)
    out = {}
    for name, ref in (("area", area), ("linear", linear)):
        d = np.abs(fast.astype(np.int16) - ref.astype(np.int16))
        out[f"vs_{name}_mean"] = round(float(d.mean()), 2)
        out[f"vs_{name}_p99"] = round(float(np.percentile(d, 99)), 1)
    d = np.abs(area.astype(np.int16) - linear.astype(np.int16))
    out["area_vs_linear_mean"] = round(float(d.mean()), 2)
    out["area_vs_linear_p99"] = round(float(np.percentile(d, 99)), 1)
    out.update(ms_fast=round(t_fast, 1), ms_full_area=round(t_area, 1), ms_full_linear=round(t_lin, 1))
    return out


def map_figures(tmp: Path) -> dict:
    import yaml

    from ultralytics import YOLO
    from ultralytics.data import ensure_builtin_dataset
    from ultralytics.data.builtin import CLASSES

    ds = ensure_builtin_dataset(root=tmp, name="held_out", n_train=2, n_val=100, seed=7)
    data = tmp / "held_out.yaml"
    data.write_text(yaml.safe_dump({"path": str(ds), "train": "images/train", "val": "images/val",
                                    "names": dict(enumerate(CLASSES))}))
    out = {}
    for fast in (True, False):
        m = YOLO(str(CKPT)).val(data=str(data), imgsz=128, batch=16, workers=0, plots=False, verbose=False,
                                fast_decode=fast, project=str(tmp / "runs"), device="cpu")
        key = "on" if fast else "off"
        out[f"map_{key}"], out[f"map50_{key}"] = round(float(m.box.map), 4), round(float(m.box.map50), 4)
    out["map_delta"] = round(out["map_on"] - out["map_off"], 4)
    out["map50_delta"] = round(out["map50_on"] - out["map50_off"], 4)
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        synthetic_jpeg(tmp / "scene.jpg")
        figures = pixel_figures(tmp / "scene.jpg")
        print(figures, flush=True)
        figures.update(map_figures(tmp))
    print(figures)
    settings = {"image": "synthetic 1920x1080 JPEG q90", "imgsz": IMGSZ, "model": "tests/data/yolov10t-shapes.pt",
                "val": "100 shapes images seed 7 at imgsz 128"}
    print(f"wrote {save_results('decode_diff', figures, settings)}")


if __name__ == "__main__":
    main()
