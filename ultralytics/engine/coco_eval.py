"""COCO-format JSON of a validation run (predictions and ground truth) and the optional COCOeval cross-check.

Files written by `DetectionValidator(save_json=True)` into the run directory:
- predictions.json: [{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...] in original image pixels,
  category_id = the class id (0-based, as in the data YAML), image_id from the file stem.
- ground_truth.json: a COCO dataset dict ({"images", "annotations", "categories"}) built from the YOLO labels,
  so that pycocotools (or faster-coco-eval) can score predictions.json against it.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np

from ultralytics.utils import LOGGER
from ultralytics.utils.files import atomic_write_text

__all__ = ("coco_image_ids", "coco_ground_truth", "coco_predictions", "write_json", "coco_evaluate")


def coco_image_ids(im_files: list[str], warn: bool = True) -> dict[str, int | str]:
    """COCO image_id of each image file: int(stem) when every stem is a number, else the stem.

    Stems must be unique; when two files share a stem (same name in two folders) the ids fall back to
    the position in the sorted list of paths (0, 1, ...) and a warning says so (warn=True). The ids, and
    their order (COCOeval's image order), never depend on the order of im_files.
    """
    stems = {f: Path(f).stem for f in im_files}
    if len(set(stems.values())) != len(stems):
        if warn:
            dup = next(s for s in stems.values() if list(stems.values()).count(s) > 1)
            LOGGER.warning(f"WARNING ⚠️ COCO JSON: several val images are named '{dup}'; image_id = position of "
                           "the path in sorted order instead")
        return {f: i for i, f in enumerate(sorted(stems))}
    numeric = all(s.isdigit() for s in stems.values())
    return {f: (int(s) if numeric else s) for f, s in stems.items()}


def _xyxy_to_coco(xyxy: np.ndarray) -> np.ndarray:
    """(n, 4) x1, y1, x2, y2 -> (n, 4) COCO x, y, w, h (top-left corner, size)."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    return np.concatenate((xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]), 1)


def coco_ground_truth(labels: list[dict], names: dict[int, str], image_ids: dict[str, int | str]) -> dict:
    """COCO dataset dict from YOLO dataset labels.

    labels: YOLODataset.labels entries: 'im_file', 'shape' (h0, w0), 'cls' (n, 1), 'bboxes' (n, 4) normalised
    xywh. Boxes go to original pixels; annotation ids start at 1 (COCOeval reads id 0 as "unmatched").
    Images without boxes are listed too: their detections count as false positives.
    """
    images, anns = [], []
    for lb in labels:
        h, w = (int(v) for v in lb["shape"])
        iid = image_ids[lb["im_file"]]
        images.append({"id": iid, "file_name": Path(lb["im_file"]).name, "height": h, "width": w})
        b = np.asarray(lb["bboxes"], dtype=np.float64).reshape(-1, 4) * np.array([w, h, w, h])
        xywh = np.concatenate((b[:, :2] - b[:, 2:] / 2, b[:, 2:]), 1)  # centre -> top-left
        for c, box in zip(np.asarray(lb["cls"]).reshape(-1).tolist(), xywh.tolist()):
            anns.append({"id": len(anns) + 1, "image_id": iid, "category_id": int(c),
                         "bbox": [round(v, 3) for v in box], "area": round(box[2] * box[3], 3), "iscrowd": 0})
    cats = [{"id": int(k), "name": str(v), "supercategory": "none"} for k, v in sorted(names.items())]
    return {"info": {"description": "ground truth built from YOLO labels"}, "licenses": [], "images": images,
            "annotations": anns, "categories": cats}


def coco_predictions(image_id: int | str, xyxy, conf, cls) -> list[dict]:
    """COCO result entries of one image: xyxy (n, 4) original pixels, conf (n,), cls (n,) -> list of dicts."""
    xywh = _xyxy_to_coco(xyxy)
    conf, cls = np.asarray(conf, dtype=np.float64).reshape(-1), np.asarray(cls).reshape(-1)
    return [{"image_id": image_id, "category_id": int(c), "bbox": [round(v, 3) for v in b],
             "score": float(f"{s:.9g}")}  # 9 digits: distinct float32 scores stay distinct (ties reorder)
            for b, s, c in zip(xywh.tolist(), conf.tolist(), cls.tolist())]


def write_json(obj, path: str | Path) -> Path:
    """Write obj as JSON atomically; returns the path."""
    return atomic_write_text(path, json.dumps(obj))


def _backend():
    """(name, COCO class, COCOeval class) of the first importable evaluator, or None."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        return "pycocotools", COCO, COCOeval
    except ImportError:
        pass
    try:
        from faster_coco_eval import COCO, COCOeval_faster

        return "faster-coco-eval", COCO, COCOeval_faster
    except ImportError:
        return None


def coco_evaluate(gt: dict, preds: list[dict], max_det: int = 100) -> dict | None:
    """Score predictions with COCOeval (bbox): {'backend', 'map', 'map50', 'map75', 'map_small', 'map_medium',
    'map_large', 'stats' (6,): AP, AP50, AP75, APs, APm, APl, 'summary'}.

    gt: a COCO dataset dict (coco_ground_truth); preds: COCO result entries (coco_predictions).
    max_det: COCOeval's largest maxDets (detections kept per image and class; COCO's own default is 100, the
    validator passes its max_det so that both score the same detections). Returns None when neither
    pycocotools nor faster-coco-eval is installed. With no predictions every AP is 0; a size range with no
    ground truth is -1, as COCOeval reports it.
    """
    backend = _backend()
    if backend is None:
        return None
    name, COCO, COCOeval = backend
    if not preds or not gt["annotations"]:
        return {"backend": name, "map": 0.0, "map50": 0.0, "map75": 0.0, "map_small": -1.0, "map_medium": -1.0,
                "map_large": -1.0, "stats": [0.0] * 6, "summary": ""}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = json.loads(json.dumps(gt))  # a private copy: loadRes annotates what it gets
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(json.loads(json.dumps(preds)))
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.params.maxDets = [1, 10, int(max_det)]
        ev.evaluate()
        ev.accumulate()
    # Read the APs from the accumulated precision (T, R, K, A, M) at the largest maxDets: COCOeval.summarize()
    # reads its headline AP at a fixed maxDets=100, which is -1 when maxDets does not contain 100.
    prec = np.asarray(ev.eval["precision"])

    def ap(t=slice(None), area: int = 0) -> float:
        s = prec[t, :, :, area, -1]
        s = s[s > -1]
        return float(s.mean()) if s.size else -1.0

    raw = [ap(), ap(0), ap(5), ap(area=1), ap(area=2), ap(area=3)]
    labels = ["IoU=0.50:0.95 | area=   all", "IoU=0.50      | area=   all", "IoU=0.75      | area=   all",
              "IoU=0.50:0.95 | area= small", "IoU=0.50:0.95 | area=medium", "IoU=0.50:0.95 | area= large"]
    summary = "\n".join(f" Average Precision  (AP) @[ {lab} | maxDets={int(max_det):>3d} ] = {v:0.3f}"
                        for lab, v in zip(labels, raw))
    stats = [max(v, 0.0) for v in raw]  # -1 (nothing to evaluate) -> 0 for the overall figures
    return {"backend": name, "map": stats[0], "map50": stats[1], "map75": stats[2], "map_small": raw[3],
            "map_medium": raw[4], "map_large": raw[5], "stats": stats, "summary": summary}
