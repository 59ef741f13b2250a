"""Sliced prediction on a 4000x3000 image with a 640 slice: our batched path, a loop of unsliced predictions over
the same windows, and the `sahi` package driving the same model at the same settings, timed in one run.

All three predict the same windows (SAHI's positions, overlap 0.2) plus the whole image letterboxed to 640 (the
full pass), keep the same boxes (conf, at most --max-det per window) and merge them the same way (GREEDYNMM, IOS,
0.5), so they differ only in how the model is driven:

- sliced: `model.predict(image, slice=640, overlap=0.2)`: one predictor call, the model prepared (fused) once,
  the windows through it several at a time (`batch`, default.yaml's 16 unless --batch; on the CPU at most
  CPU_PIXELS_PER_THREAD model pixels per torch thread and forward, models/yolo/detect/sliced.py).
- loop: one `model.predict(window)` call per window and one on the whole image, then the same merge
  (utils/slicing.merge_detections): what a user's own tiling script does with this tree.
- sahi: `sahi.predict.get_sliced_prediction` (batch_size 1, its default) with a small sahi DetectionModel
  subclass (below) whose perform_inference calls `model.predict` on the window sahi cut.

The model is tests/data/yolov10t-shapes.pt (a small trained YOLOv10, 334k parameters, 6 shape classes; --weights
for another): trained weights give real, distinct scores and a realistic number of boxes per window on the test
scene of 400 coloured squares (randomly initialised weights score every box the same). --max-det is high enough
never to cut the merged result, so all three keep the same boxes. The three runs are
interleaved --repeats times and the minimum kept. SAHI is not a dependency of the project: run this with the
interpreter of a separate venv that has it (benchmarks/record_sahi_reference.py says how); with the project's own
interpreter the sahi row is left out.

    /tmp/sahi-venv/bin/python benchmarks/sliced_predict.py --threads 2
    python benchmarks/sliced_predict.py --device cuda --repeats 5
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks._common import add_device_args, device_banner, markdown_table, setup_threads  # noqa: E402


def scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A BGR test scene: grey noise with a few hundred small filled rectangles."""
    import cv2

    rng = np.random.default_rng(seed)
    im = rng.integers(90, 140, (h, w, 3), dtype=np.uint8)
    for _ in range(400):
        x, y = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        s = int(rng.integers(8, 40))
        cv2.rectangle(im, (x, y), (x + s, y + s), tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
    return im


def sahi_model_class():
    """A sahi DetectionModel subclass that predicts with a YOLO object of this tree (sahi cuts RGB windows)."""
    from sahi.models.base import DetectionModel
    from sahi.prediction import ObjectPrediction

    class TreeModel(DetectionModel):
        def __init__(self, yolo, predict_kwargs: dict, **kw):
            self.predict_kwargs = predict_kwargs
            super().__init__(model=yolo, **kw)

        def check_dependencies(self, packages=None):
            return None

        def load_model(self):
            raise RuntimeError("pass model=")

        def set_model(self, model, **kwargs):
            self.model = model
            self.category_mapping = {str(k): v for k, v in model.names.items()}

        def perform_inference(self, image: np.ndarray):
            r = self.model.predict(np.ascontiguousarray(image[..., ::-1]), **self.predict_kwargs)[0]
            self._original_predictions = [r.boxes.data.numpy()]

        def _create_object_prediction_list_from_original_predictions(self, shift_amount_list=None,
                                                                     full_shape_list=None):
            shifts, fulls = shift_amount_list or [[0, 0]], full_shape_list
            if not isinstance(shifts[0], (list, tuple)):
                shifts = [shifts]  # sahi passes one window's [x, y] and [h, w] unnested
            if fulls is not None and not isinstance(fulls[0], (list, tuple)):
                fulls = [fulls]
            out = []
            for i, det in enumerate(self._original_predictions):
                full = None if fulls is None else fulls[i]
                out.append([ObjectPrediction(bbox=d[:4].tolist(), category_id=int(d[5]),
                                             category_name=self.category_mapping[str(int(d[5]))], score=float(d[4]),
                                             shift_amount=shifts[i], full_shape=full) for d in det
                            if d[2] > d[0] and d[3] > d[1]])
            self._object_prediction_list_per_image = out

    return TreeModel


def _unmatched(a: np.ndarray, b: np.ndarray, tol: float = 0.01) -> int:
    """Boxes of set a with no box of set b of the same class within tol pixels on every side (and vice versa)."""
    def miss(x, y):
        n = 0
        for r in x:
            same = y[y[:, 5] == r[5], :4]
            n += not (len(same) and (np.abs(same - r[:4]).max(1) <= tol).any())
        return n

    a, b = np.asarray(a, float).reshape(-1, 6), np.asarray(b, float).reshape(-1, 6)
    return int(miss(a, b) + miss(b, a))


def forward_sweep(weights: str, threads=(1, 2), batches=(1, 2, 4, 8, 16), sizes=(320, 640),
                  seconds: float = 1.0) -> dict:
    """{'<threads>t': {model: {size: {batch: ms per window}}}} of forward passes (fused, eval, no grad) for
    --weights and yolov10n/s (random weights: the time does not depend on them), each timed for about
    `seconds`, with 1 and 2 torch threads."""
    from ultralytics import YOLO

    out: dict = {}
    before = torch.get_num_threads()
    nets = {}
    for name in (weights, "yolov10n.yaml", "yolov10s.yaml"):
        net = YOLO(name).model.float().eval()
        net.fuse()
        nets[Path(name).stem] = net
    try:
        for th in threads:
            torch.set_num_threads(th)
            by_model = out[f"{th}t"] = {}
            for key, net in nets.items():
                by_model[key] = {}
                for s in sizes:
                    by_model[key][s] = {}
                    for b in batches:
                        x = torch.rand(b, 3, s, s)
                        with torch.no_grad():
                            net(x)
                            n, t0 = 0, time.perf_counter()
                            while n < 2 or time.perf_counter() - t0 < seconds:
                                net(x)
                                n += 1
                            by_model[key][s][b] = round((time.perf_counter() - t0) / n / b * 1e3, 1)
                    print(f"forward {key} at {s}, {th} thread(s): ms per window by windows per forward "
                          f"{by_model[key][s]}", flush=True)
    finally:
        torch.set_num_threads(before)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_device_args(ap)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--slice", type=int, default=640)
    ap.add_argument("--overlap", type=float, default=0.2)
    ap.add_argument("--batch", type=int, default=None, help="the sliced path's batch (default: default.yaml's)")
    ap.add_argument("--sweep", action="store_true",
                    help="also time forward passes of 1-16 windows of 320 and 640 for yolov10t (--weights), n and s "
                         "with 1 and 2 threads (ms per window): the measurement behind the CPU cap on windows per "
                         "forward")
    ap.add_argument("--weights", default=str(Path(__file__).resolve().parents[1] / "tests/data/yolov10t-shapes.pt"))
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--max-det", type=int, default=1000, help="boxes kept per window and per image")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-save", action="store_true", help="print only; do not write benchmarks/results")
    args = ap.parse_args()
    setup_threads(args.threads)
    from ultralytics import YOLO
    from ultralytics.utils.slicing import merge_detections, slice_positions

    yolo = YOLO(args.weights)
    yolo.model.float()
    yolo.fuse()
    yolo.model.model[-1].max_det = args.max_det  # as every call asks: no predictor call copies the model to set it
    dev = "cpu" if args.device == "cpu" else args.device
    common = dict(conf=args.conf, max_det=args.max_det, imgsz=args.slice, device=dev, verbose=False)
    im = scene(args.height, args.width)
    wins = slice_positions(args.height, args.width, args.slice, overlap_h=args.overlap)
    print(device_banner(torch.device("cuda" if dev != "cpu" else "cpu"), args.threads))
    print(f"{args.width}x{args.height} image, slice {args.slice}, overlap {args.overlap}: {len(wins)} windows + full")

    def sliced():
        batch = {} if args.batch is None else {"batch": args.batch}
        r = yolo.predict(im, slice=args.slice, overlap=args.overlap, **batch, **common)[0]
        return r.boxes.data.numpy()

    def loop():
        dets = []
        for x1, y1, x2, y2 in wins:
            d = yolo.predict(im[y1:y2, x1:x2], **common)[0].boxes.data.clone()
            d[:, [0, 2]] += x1
            d[:, [1, 3]] += y1
            dets.append(d)
        dets.append(yolo.predict(im, **common)[0].boxes.data)
        return merge_detections(torch.cat(dets), "nmm", "ios", 0.5).numpy()

    runs = {"sliced": sliced, "loop": loop}
    try:
        from sahi.predict import get_sliced_prediction

        smodel = sahi_model_class()(yolo, common, confidence_threshold=args.conf, device=dev, image_size=args.slice)
        rgb = np.ascontiguousarray(im[..., ::-1])

        def sahi_run():
            res = get_sliced_prediction(rgb, smodel, args.slice, args.slice, args.overlap, args.overlap,
                                        perform_standard_pred=True, postprocess_type="GREEDYNMM",
                                        postprocess_match_metric="IOS", postprocess_match_threshold=0.5,
                                        force_postprocess_type=True, verbose=0)
            return np.array([[*p.bbox.to_xyxy(), p.score.value, p.category.id] for p in res.object_prediction_list])

        runs["sahi"] = sahi_run
        import sahi

        sahi_version = sahi.__version__
    except ImportError:
        sahi_version = None
        print("sahi is not importable from this interpreter: its row is left out")
    times: dict[str, list[float]] = {k: [] for k in runs}
    out = {k: fn() for k, fn in runs.items()}  # warm-up, and the merged boxes of each path
    boxes = {k: len(v) for k, v in out.items()}
    diff = {k: _unmatched(out["sliced"], v) for k, v in out.items()}
    print("boxes without a match (same class, every side within 0.01 px) against the sliced path's:", diff)
    for _ in range(args.repeats):
        for k, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in times.items()}
    sweep = forward_sweep(args.weights) if args.sweep else None
    rows = [[k, f"{best[k]:.2f}", f"{best[k] * 1e3 / (len(wins) + 1):.0f}", boxes[k],
             f"{best['loop'] / best[k]:.2f}"] for k in runs]
    table = markdown_table(["path", "s per image", "ms per window", "boxes after merge", "speed-up vs loop"], rows)
    print(table)
    if args.no_save:
        return
    from benchmarks._results import save_results

    figures = {"sliced_s": round(best["sliced"], 3), "loop_s": round(best["loop"], 3), "boxes": boxes["sliced"],
               "unmatched_loop": diff["loop"],
               "speedup_vs_loop": round(best["loop"] / best["sliced"], 2), "windows": len(wins), "table_md": table}
    if sweep is not None:
        batches = next(iter(next(iter(next(iter(sweep.values())).values())).values()))
        figures["sweep_md"] = markdown_table(
            ["threads", "model", "size", *[f"{b} per pass" for b in batches]],
            [[th[:-1], m, s, *v.values()] for th, by_model in sweep.items() for m, by_size in by_model.items()
             for s, v in by_size.items()])
    if "sahi" in best:
        figures.update(sahi_s=round(best["sahi"], 3), unmatched_sahi=diff["sahi"],
                       speedup_vs_sahi=round(best["sahi"] / best["sliced"], 2),
                       loop_vs_sahi=round(best["sahi"] / best["loop"], 2))
    extra = {"per_window_ms": sweep} if sweep is not None else {}  # nested: a setting, the table is the figure
    path = save_results("sliced_predict", figures, {**vars(args), "sahi": sahi_version, **extra})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
