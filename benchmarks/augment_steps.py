"""Where a training sample's CPU time goes: each step of the loader's per-image work timed alone, in one process.

On the first 32 images of the generated 1920x1080 set (benchmarks/loader_speed.py makes it), imgsz 640, mosaic on,
the default augmentation settings, each step is run over the 32 samples and timed; the figure is the best of
--repeats passes, in milliseconds per sample, in a process set up as a loader worker (OpenCV's own threads off,
glibc's allocator keeping image buffers: ultralytics/data/allocator.py).

Besides the steps the loader runs, two alternatives are timed on the same inputs, so that the docs can say what
each lever gave (issue 20):
- `hsv_one_lut`: the HSV jitter with OpenCV's 3-channel lookup table (this tree before), against `hsv` (split,
  one single-channel table per plane, merge: the same pixels);
- `mosaic_one_warp`: the mosaic's tiles warped one by one straight into the output (an OpenCV warp per tile into
  its rectangle of the output; only for scale and translation), against `mosaic_canvas` + `affine` (paint the
  (2s, 2s) canvas, then one warp): the same pixels except within a pixel of the tiles' edges.

Then whole batches (the dataset's __getitems__ and collate: what a worker does) are timed in fresh processes,
alternately with glibc's default allocator settings and with the loader workers' (keep_image_buffers), --rounds
times each; the medians give what the allocator setting saves.

    python benchmarks/augment_steps.py            # prints the table, writes benchmarks/results/augment_steps.json
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import markdown_table  # noqa: E402
from benchmarks._results import save_results  # noqa: E402
from benchmarks.loader_speed import make_big_dataset  # noqa: E402

N = 32


def best_ms(fn, items: list, repeats: int) -> float:
    """Best over `repeats` passes of fn over items, in ms per item."""
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        for x in items:
            fn(x)
        best = min(best, time.perf_counter() - t)
    return 1000 * best / len(items)


def hsv_one_lut(img, r):
    """The HSV jitter through one 3-channel table (the earlier code)."""
    import cv2
    import numpy as np

    x = np.arange(256, dtype=np.float64)
    lut = np.empty((256, 1, 3), np.uint8)
    lut[:, 0, 0] = ((x * r[0]) % 180).astype(np.uint8)
    lut[:, 0, 1] = np.clip(x * r[1], 0, 255).astype(np.uint8)
    lut[:, 0, 2] = np.clip(x * r[2], 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.LUT(cv2.cvtColor(img, cv2.COLOR_BGR2HSV), lut), cv2.COLOR_HSV2BGR)


def one_warp(tiles: list, M, out_hw: tuple[int, int]):
    """Warp each (img, x, y) tile of a grey canvas straight into the output (M scales and translates only)."""
    import cv2
    import numpy as np

    out_h, out_w = out_hw
    out = np.full((out_h, out_w, 3), 114, np.uint8)
    for img, x, y in tiles:
        h, w = img.shape[:2]
        # output pixels whose centre maps inside the tile's area; adjacent tiles' rectangles partition the output
        xa, xb = (min(max(math.ceil(M[0, 0] * v + M[0, 2]), 0), out_w) for v in (x - 0.5, x + w - 0.5))
        ya, yb = (min(max(math.ceil(M[1, 1] * v + M[1, 2]), 0), out_h) for v in (y - 0.5, y + h - 0.5))
        if xb > xa and yb > ya:
            A = np.array([[M[0, 0], 0.0, M[0, 0] * x + M[0, 2] - xa], [0.0, M[1, 1], M[1, 1] * y + M[1, 2] - ya]])
            cv2.warpAffine(img, A, (xb - xa, yb - ya), dst=out[ya:yb, xa:xb], borderMode=cv2.BORDER_REPLICATE)
    return out


def paint(tiles: list, size: int):
    """The grey (size, size) canvas with its tiles copied in."""
    import numpy as np

    canvas = np.full((size, size, 3), 114, np.uint8)
    for img, x, y in tiles:
        canvas[y:y + img.shape[0], x:x + img.shape[1]] = img
    return canvas


def whole_batches_ms(keep: bool) -> float:
    """In this (fresh) process: ms per sample of 4 batches of 32 through __getitems__ + collate, best of 3."""
    import cv2

    from ultralytics.cfg import get_cfg
    from ultralytics.data.allocator import keep_image_buffers
    from ultralytics.data.build import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    cv2.setNumThreads(0)
    if keep:
        keep_image_buffers()
    data = check_det_dataset(str(make_big_dataset(512)))
    ds = build_yolo_dataset(get_cfg(overrides=dict(imgsz=640, seed=0, workers=0)), data["train"], N, data, "train")
    ds.collate_fn(ds.__getitems__([(0, i) for i in range(N)]))
    best = math.inf
    for rep in range(3):
        t = time.perf_counter()
        for b in range(1, 5):
            ds.collate_fn(ds.__getitems__([(rep, i) for i in range(N * b, N * b + N)]))
        best = min(best, time.perf_counter() - t)
    return 1000 * best / (4 * N)


def allocator_figures(rounds: int) -> dict:
    """Median ms per sample over `rounds` fresh processes each, default allocator vs keep_image_buffers."""
    import os
    import statistics
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    ms: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds):
        for keep in (False, True):
            out = subprocess.run([sys.executable, __file__, "--whole", str(int(keep))], capture_output=True,
                                 text=True, check=True, env=env).stdout.split()
            ms[keep].append(float(out[-1]))
    d, k = statistics.median(ms[False]), statistics.median(ms[True])
    print(f"whole batches: {d:.2f} ms per sample with glibc's defaults, {k:.2f} with keep_image_buffers "
          f"(medians of {rounds} processes each)")
    return {"batch_ms_default_alloc": round(d, 2), "batch_ms_kept_alloc": round(k, 2),
            "alloc_saving_pct": round(100 * (1 - k / d), 1)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=5, help="fresh processes per allocator setting")
    ap.add_argument("--whole", choices=["0", "1"], help=argparse.SUPPRESS)  # one timing process (internal)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    if a.whole is not None:
        print(whole_batches_ms(a.whole == "1"))
        return {}

    import cv2
    import numpy as np

    from ultralytics.cfg import get_cfg
    from ultralytics.data.allocator import keep_image_buffers
    from ultralytics.data.augment import Format, Mosaic, RandomFlip, RandomHSV, RandomPerspective
    from ultralytics.data.build import build_yolo_dataset
    from ultralytics.data.image_io import imread
    from ultralytics.data.utils import check_det_dataset

    cv2.setNumThreads(0)
    keep_image_buffers()
    data = check_det_dataset(str(make_big_dataset(512)))
    args = get_cfg(overrides=dict(imgsz=640, seed=0, workers=0))
    ds = build_yolo_dataset(args, data["train"], N, data, "train")
    idx = list(range(N))
    files = [ds.im_files[i] for i in idx]
    raw = {f: np.fromfile(f, np.uint8) for f in files}
    reduced = [imread(f, 2) for f in files]
    memo = {i: ds.load_image(i) for i in idx}
    steps = ds.transforms.transforms
    mosaic, persp, hsv = (next(t for t in steps if isinstance(t, c)) for c in (Mosaic, RandomPerspective, RandomHSV))
    flips = [t for t in steps if isinstance(t, RandomFlip)]
    fmt = next(t for t in steps if isinstance(t, Format))

    def sample(i):  # the sample before the mosaic, with its batch's decoded images
        lab = ds.get_image_and_label(i, memo)
        lab["mosaic_pool"], lab["image_memo"] = idx, memo
        return lab

    rng = lambda i: np.random.default_rng([0, 1, i])  # noqa: E731
    mosaics = [mosaic(sample(i), rng(i)) for i in idx]  # canvases, and the draws that follow the mosaic's
    drawn = [persp.draw(dict(m), rng(i)) for i, m in zip(idx, mosaics)]
    warped = [persp(dict(m), rng(i))["img"] for i, m in zip(idx, mosaics)]
    gains = [np.random.default_rng(i).uniform(-1, 1, 3) * hsv.gains + 1 for i in idx]
    hsv_in = list(zip(warped, gains))
    # the mosaic's four quadrants around its centre (the tiles where the images were placed, with their grey),
    # the centre re-drawn as Mosaic draws it: apply, 3 partners from the 31 others of the batch, then xc, yc
    tiles = []
    for i, m in zip(idx, mosaics):
        g = rng(i)
        g.random(), g.integers(0, N - 1, 3)
        xc, yc = (int(g.uniform(-b, 2 * 640 + b)) for b in mosaic.border)
        c = m["img"]
        tiles.append([(c[y0:y1, x0:x1], x0, y0) for y0, y1, x0, x1 in
                      ((0, yc, 0, xc), (0, yc, xc, 1280), (yc, 1280, 0, xc), (yc, 1280, xc, 1280))])
    r = a.repeats
    t = {
        "read_bytes": best_ms(lambda f: np.fromfile(f, np.uint8), files, r),
        "decode_full": best_ms(lambda f: cv2.imdecode(raw[f], cv2.IMREAD_COLOR), files, r),
        "decode_half": best_ms(lambda f: cv2.imdecode(raw[f], cv2.IMREAD_REDUCED_COLOR_2), files, r),
        "resize": best_ms(lambda im: cv2.resize(im, (640, 360), interpolation=cv2.INTER_LINEAR), reduced, r),
        "mosaic_canvas": best_ms(lambda i: mosaic(sample(i), rng(i)), idx, r),
        "affine": best_ms(lambda d: cv2.warpAffine(d[0]["img"], d[2][:2], d[1][::-1], borderValue=(114,) * 3),
                          drawn, r),
        "mosaic_one_warp": best_ms(lambda k: one_warp(tiles[k], drawn[k][2], drawn[k][1]), idx, r),
        "paint_and_warp": best_ms(lambda k: cv2.warpAffine(paint(tiles[k], 1280), drawn[k][2][:2],
                                                           drawn[k][1][::-1], borderValue=(114,) * 3), idx, r),
        "hsv": best_ms(lambda x: hsv({"img": x[0]}, np.random.default_rng(0)), hsv_in, r),
        "hsv_one_lut": best_ms(lambda x: hsv_one_lut(x[0], x[1]), hsv_in, r),
        "flips": best_ms(lambda im: [f({"img": im, "bboxes": np.zeros((0, 4), np.float32)}, np.random.default_rng(1))
                                     for f in flips], warped, r),
        "format": best_ms(lambda im: fmt({"img": im, "bboxes": np.zeros((0, 4), np.float32),
                                          "cls": np.zeros((0, 1), np.float32)}), warped, r),
    }
    same = [np.array_equal(hsv({"img": x[0]}, np.random.default_rng(k))["img"],
                           hsv_one_lut(x[0], np.random.default_rng(k).uniform(-1, 1, 3) * hsv.gains + 1))
            for k, x in enumerate(hsv_in)]
    mad = [float(np.abs(one_warp(tiles[k], drawn[k][2], drawn[k][1]).astype(np.float64) - warped[k]).mean())
           for k in idx]  # against the loader's own warp of the same canvas by the same matrix
    figs = {k: round(v, 3) for k, v in t.items()}
    figs["hsv_same_pixels"] = int(all(same))
    figs["one_warp_mad"] = round(max(mad), 3)
    figs["one_warp_gain_ms"] = round(t["paint_and_warp"] - t["mosaic_one_warp"], 3)
    figs["hsv_gain_ms"] = round(t["hsv_one_lut"] - t["hsv"], 3)
    per_sample = t["decode_half"] + t["read_bytes"] + t["resize"] + t["mosaic_canvas"] + t["affine"] + t["hsv"] + \
        t["flips"] + t["format"]
    figs["per_sample_ms"] = round(per_sample, 2)
    figs["decode_share_pct"] = round(100 * (t["decode_half"] + t["read_bytes"]) / per_sample, 1)
    rows = [["read the file", t["read_bytes"], "kept"],
            ["decode 1920x1080 at full size", t["decode_full"], "replaced by the next row"],
            ["decode at 1/2 scale (960x540)", t["decode_half"], "kept (reduced-scale decode)"],
            ["resize to 640x360", t["resize"], "kept"],
            ["mosaic: paint the 1280x1280 canvas", t["mosaic_canvas"], "kept"],
            ["random affine: one warp to 640x640", t["affine"], "kept"],
            ["mosaic + affine, one warp per tile", t["mosaic_one_warp"],
             f"not kept (paint + warp: {t['paint_and_warp']:.2f})"],
            ["HSV: split, 3 single-channel LUTs, merge", t["hsv"], "kept (same pixels)"],
            ["HSV: one 3-channel LUT", t["hsv_one_lut"], "replaced by the row above"],
            ["flips", t["flips"], "kept"],
            ["format (BGR HWC -> RGB CHW tensor)", t["format"], "kept"]]
    table = markdown_table(["step (per sample)", "ms", "in the loader"], [[s, f"{v:.2f}", k] for s, v, k in rows])
    figs["table_md"] = table
    print(table)
    figs.update(allocator_figures(a.rounds))
    print(f"per sample (kept steps): {per_sample:.2f} ms, decode {figs['decode_share_pct']}%; one-warp MAD "
          f"{figs['one_warp_mad']} grey levels; HSV same pixels: {bool(figs['hsv_same_pixels'])}")
    if not a.no_save:
        save_results("augment_steps", figs, {"images": N, "imgsz": 640, "repeats": r, "rounds": a.rounds,
                                             "threads": 1})
    return figs


if __name__ == "__main__":
    main()
