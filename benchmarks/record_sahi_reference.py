"""Record SAHI 0.12's slice positions and merged boxes into tests/data/sahi_reference.json.

The tests compare utils/slicing.py with these recorded outputs, so they need no SAHI. SAHI is not a dependency
of the project: run this with the interpreter of a separate venv that has it,

    python -m venv /tmp/sahi-venv --system-site-packages && /tmp/sahi-venv/bin/pip install "sahi==0.12.*"
    /tmp/sahi-venv/bin/python benchmarks/record_sahi_reference.py

The box sets are built here (BOX_SETS) and written into the JSON beside SAHI's answers, so a test reads both
the input and the expected output from the file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "sahi_reference.json"

# (height, width, slice, overlap): multiples of the step (640 - 128 = 512) plus 640, and one pixel either side
SLICE_CASES = [(h, w, 640, 0.2) for h, w in [(640, 640), (639, 641), (1151, 1152), (1152, 1153), (1663, 1664),
                                              (1665, 1665), (3000, 4000), (200, 300), (700, 2000)]]
SLICE_CASES += [(1000, 750, 320, 0.25), (961, 959, 320, 0.25), (2311, 2503, 512, 0.1), (100, 5000, 256, 0.5),
                (1280, 1280, 640, 0.0)]


def box_sets() -> dict[str, list[list[float]]]:
    """Named (n, 6) x1, y1, x2, y2, score, class sets with distinct scores (ties are order-dependent)."""
    sets = {
        # windows [0, 640) and [512, 1152) over an object at x 600..680: the left window sees it cut at its
        # border (x2 = 640), the right one whole, the full pass a little wider; a different class in the same place
        "seam": [[600, 100, 640, 140, 0.81, 0], [601, 101, 680, 139, 0.77, 0], [598, 99, 682, 141, 0.62, 0],
                 [605, 105, 645, 135, 0.55, 1]],
        # a chain with 60 % overlap between neighbours: greedy groups of two
        "chain": [[0, 0, 10, 10, 0.9, 0], [4, 0, 14, 10, 0.8, 0], [8, 0, 18, 10, 0.7, 0], [12, 0, 22, 10, 0.6, 0],
                  [100, 100, 110, 110, 0.5, 0]],
        # B and C both match A (IoU 0.54), but once A absorbed B the merged box's IoU with C is 0.44
        "grow": [[0, 0, 10, 10, 0.9, 0], [3, 0, 13, 10, 0.8, 0], [0, 3, 10, 13, 0.7, 0], [50, 50, 60, 60, 0.4, 0]],
        # overlaps exactly at the threshold: IOS(A, B) = 50/100 = 0.5 (a match, >= 0.5) and IOU(C, D) = 0.5
        "exact": [[0, 0, 10, 10, 0.9, 0], [5, 0, 15, 10, 0.8, 0], [100, 0, 120, 10, 0.7, 1],
                  [100, 0, 110, 10, 0.6, 1]],
        # nested boxes: IOS is 1 for a box inside another, IOU small
        "nested": [[0, 0, 100, 100, 0.6, 2], [10, 10, 30, 30, 0.9, 2], [50, 50, 60, 60, 0.8, 2],
                   [40, 40, 45, 90, 0.7, 2], [0, 0, 100, 100, 0.65, 1]],
    }
    rng = np.random.default_rng(24)
    xy = rng.uniform(0, 150, (40, 2))
    wh = rng.uniform(20, 60, (40, 2))
    score = rng.permutation(np.linspace(0.3, 0.99, 40))
    cls = rng.integers(0, 2, 40)
    rand = np.concatenate([xy, xy + wh, score[:, None], cls[:, None]], 1).round(3)
    sets["random40"] = rand.tolist()
    return sets


def sahi_merge(boxes, kind: str, metric: str, threshold: float = 0.5) -> list[list[float]]:
    """SAHI's postprocess (class-aware) of a box set -> (m, 6) rows sorted by descending score."""
    from sahi.postprocess.combine import GreedyNMMPostprocess, NMSPostprocess
    from sahi.prediction import ObjectPrediction

    preds = [ObjectPrediction(bbox=b[:4], category_id=int(b[5]), category_name=str(int(b[5])), score=b[4],
                              shift_amount=[0, 0], full_shape=[10000, 10000]) for b in boxes]
    cls = GreedyNMMPostprocess if kind == "nmm" else NMSPostprocess
    out = cls(match_threshold=threshold, match_metric=metric.upper(), class_agnostic=False)(preds)
    rows = [[*map(float, p.bbox.to_xyxy()), float(p.score.value), int(p.category.id)] for p in out]
    return sorted(rows, key=lambda r: (-r[4], r[5], r[0], r[1]))


def main() -> None:
    import sahi
    from sahi.slicing import get_slice_bboxes

    if not sahi.__version__.startswith("0.12."):
        sys.exit(f"record with sahi 0.12.x (found {sahi.__version__})")
    slices = [{"height": h, "width": w, "slice": s, "overlap": o,
               "boxes": get_slice_bboxes(h, w, s, s, False, o, o)} for h, w, s, o in SLICE_CASES]
    merges = []
    for name, boxes in box_sets().items():
        for kind in ("nmm", "nms"):
            for metric in ("ios", "iou"):
                merges.append({"set": name, "merge": kind, "metric": metric, "threshold": 0.5,
                               "output": sahi_merge(boxes, kind, metric)})
    ref = {"sahi_version": sahi.__version__, "slices": slices, "box_sets": box_sets(), "merges": merges}
    OUT.write_text(json.dumps(ref, indent=1) + "\n")
    print(f"wrote {OUT}: {len(slices)} slice cases, {len(merges)} merges (sahi {sahi.__version__})")


if __name__ == "__main__":
    main()
