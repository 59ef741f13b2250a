"""Draw docs/img/sliced-merge-seam.png: two overlapping windows, the boxes each one and the full pass give for
objects on their seam, and what merge=nmm / merge=nms keep (computed by utils/slicing.merge_detections).

    python benchmarks/seam_figure.py

No model runs: the boxes are the ones a window sees when it cuts an object at its border (clipped to the window),
written out below, so the picture shows the merge itself. Flat colours keep the PNG small (< 200 KB).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from ultralytics.utils.slicing import merge_detections  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "img" / "sliced-merge-seam.png"
W, H = 760, 300  # one panel: the scene strip
LEFT, RIGHT = (20, 40, 420, 280), (320, 40, 720, 280)  # the two windows, overlapping over x 320..420
OBJECTS = [(380, 100, 470, 170), (250, 190, 345, 250)]  # the first crosses the right border of the left window
# (x1, y1, x2, y2, score, class) as each source reports them: clipped to its window
RAW = np.array([[380, 100, 420, 170, 0.82, 0],  # left window: object 1 cut at x = 420
                [381, 101, 469, 169, 0.78, 0],  # right window: object 1 whole
                [376, 97, 473, 173, 0.55, 0],  # full pass: object 1, coarser
                [250, 190, 345, 250, 0.74, 0],  # left window: object 2 whole
                [320, 191, 346, 249, 0.70, 0],  # right window: object 2 cut at x = 320
                [247, 188, 349, 253, 0.51, 0]])  # full pass: object 2
COLOURS = {"left": (200, 120, 30), "right": (40, 140, 230), "full": (150, 150, 150), "merged": (40, 170, 40)}


def panel(title: str, boxes: np.ndarray, raw: bool) -> np.ndarray:
    """One strip: the windows (dashed), the objects (filled), and `boxes` drawn over them."""
    im = np.full((H, W, 3), 245, np.uint8)
    for x1, y1, x2, y2 in OBJECTS:
        cv2.rectangle(im, (x1, y1), (x2, y2), (210, 200, 190), -1)
    for (x1, y1, x2, y2), c in ((LEFT, COLOURS["left"]), (RIGHT, COLOURS["right"])):
        for x in range(x1, x2, 12):  # dashed window outline
            cv2.line(im, (x, y1), (min(x + 6, x2), y1), c, 1)
            cv2.line(im, (x, y2), (min(x + 6, x2), y2), c, 1)
        for y in range(y1, y2, 12):
            cv2.line(im, (x1, y), (x1, min(y + 6, y2)), c, 1)
            cv2.line(im, (x2, y), (x2, min(y + 6, y2)), c, 1)
    keys = ["left", "right", "full", "left", "right", "full"]
    for i, b in enumerate(boxes):
        c = COLOURS[keys[i]] if raw else COLOURS["merged"]
        x1, y1, x2, y2 = (int(round(v)) for v in b[:4])
        cv2.rectangle(im, (x1, y1), (x2, y2), c, 1 if raw else 3)
        if raw:  # left window's score below its box, the right window's above, the full pass's above on the right
            at = [(x1 + 2, y2 + 14), (x1 + 2, y1 - 4), (x2 - 28, y1 - 4)][i % 3]
        else:  # inside the box: top-left, bottom-right alternately (NMS keeps boxes that nearly coincide)
            at = (x1 + 3, y1 + 14) if i % 2 == 0 else (x2 - 30, y2 - 5)
        cv2.putText(im, f"{b[4]:.2f}", at, cv2.FONT_HERSHEY_SIMPLEX, 0.4, c, 1, cv2.LINE_AA)
    cv2.putText(im, title, (20, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (30, 30, 30), 1, cv2.LINE_AA)
    return im


def main() -> None:
    nmm = merge_detections(RAW, "nmm", "ios", 0.5)
    nms = merge_detections(RAW, "nms", "iou", 0.5)
    strips = [panel("before the merge: left window (blue), right window (orange), full pass (grey)", RAW, True),
              panel(f"merge=nmm merge_metric=ios (default): {len(nmm)} boxes, each the enclosing box", nmm, False),
              panel(f"merge=nms merge_metric=iou: {len(nms)} boxes, the cut halves survive", nms, False)]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(OUT), np.concatenate(strips, 0), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KB): nmm {nmm[:, :5].round(2).tolist()}, "
          f"nms {nms[:, :5].round(2).tolist()}")


if __name__ == "__main__":
    main()
