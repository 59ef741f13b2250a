"""Conversion speed: a COCO JSON of 10,000 1920x1080 JPEGs -> a checked YOLO dataset (convert_dataset).

The source is generated first (not timed) into --root (default: a temporary folder, deleted at the end).
Encoding 10,000 full-HD JPEGs takes longer on 2 cores than the conversion itself, so --distinct (256)
images are encoded (quality 90: a gradient with 1-4 filled rectangles and the index written in, about
70 KB each) and every file is one of them with a JPEG comment segment carrying its own index inserted
after the start marker: all 10,000 files differ byte for byte (no duplicates) and decode like the original.
The conversion reads and hashes every byte and parses every header, so its cost is that of distinct photos
of that size. 1-4 boxes per image over 5 categories. Then convert_dataset(json, out) runs once, timed from
the call to its return: reading the JSON, the image check (header size, structure, JPEG end marker and a
content hash per file, no pixel decode), the split, hard links, labels, data.yaml, problems.csv and
report.html. Figures: seconds and images/s.

    python benchmarks/convert_speed.py                       # 10,000 images (about 0.7 GB while it runs)
    python benchmarks/convert_speed.py --images 500 --no-save
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

W, H, NC = 1920, 1080, 5


def _make(i: int) -> tuple[bytes, list[tuple[int, int, int, int, int]]]:
    """JPEG bytes of distinct image i and its boxes (category id, x, y, w, h)."""
    rng = np.random.default_rng(i)
    gx = np.linspace(0, 1, W, dtype=np.float32)[None, :, None]
    gy = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    c0, c1 = rng.uniform(0, 255, 3).astype(np.float32), rng.uniform(0, 255, 3).astype(np.float32)
    im = np.clip(c0 * (1 - gx) * (1 - gy * 0.5) + c1 * gx * gy, 0, 255).astype(np.uint8)
    boxes = []
    for _ in range(int(rng.integers(1, 5))):
        w, h = int(rng.integers(20, 600)), int(rng.integers(20, 500))
        x, y = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
        cv2.rectangle(im, (x, y), (x + w, y + h), tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
        boxes.append((int(rng.integers(1, NC + 1)), x, y, w, h))
    cv2.putText(im, f"{i:06d}", (40, 100), cv2.FONT_HERSHEY_SIMPLEX, 3, (255, 255, 255), 5)
    return cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes(), boxes


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The JPEG with a COM segment (FF FE, length, text) right after its start marker FF D8."""
    body = text.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(body) + 2).to_bytes(2, "big") + body + jpeg[2:]


def generate(root: Path, n: int, distinct: int) -> Path:
    """Write n images into root/images and the COCO JSON root/annotations.json -> the JSON path."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    d = {"images": [], "annotations": [], "categories": [{"id": k, "name": f"class{k}"} for k in range(1, NC + 1)]}
    with ProcessPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        made = list(pool.map(_make, range(min(distinct, n)), chunksize=8))
    for i in range(n):
        jpeg, boxes = made[i % len(made)]
        (root / "images" / f"{i:06d}.jpg").write_bytes(with_comment(jpeg, f"image {i:06d}"))
        d["images"].append({"id": i + 1, "file_name": f"{i:06d}.jpg", "width": W, "height": H})
        for c, x, y, w, h in boxes:
            d["annotations"].append({"id": len(d["annotations"]) + 1, "image_id": i + 1, "category_id": c,
                                     "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
    path = root / "annotations.json"
    path.write_text(json.dumps(d))
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=10000)
    p.add_argument("--distinct", type=int, default=256, help="images encoded; the others are copies with a comment")
    p.add_argument("--root", default=None, help="where the source and output go (default: a temporary folder)")
    p.add_argument("--no-save", action="store_true", help="print only; do not write benchmarks/results")
    a = p.parse_args()
    from ultralytics.data.convert import convert_dataset
    from ultralytics.data.convert.writer import n_workers

    root = Path(a.root) if a.root else Path(tempfile.mkdtemp(prefix="convert_speed_"))
    try:
        t0 = time.perf_counter()
        src = generate(root / "source", a.images, a.distinct)
        gen_s = time.perf_counter() - t0
        mb = sum(f.stat().st_size for f in (root / "source" / "images").iterdir()) / 2**20
        print(f"generated {a.images} images ({mb:.0f} MB) in {gen_s:.0f} s")
        t0 = time.perf_counter()
        convert_dataset(src, root / "out")
        sec = time.perf_counter() - t0
    finally:
        if not a.root:
            shutil.rmtree(root, ignore_errors=True)
    figures = {"seconds": round(sec, 1), "images_per_s": round(a.images / sec, 1), "images": a.images,
               "workers": n_workers(), "source_mb": round(mb)}
    print(figures)
    if not a.no_save:
        from benchmarks._results import save_results

        save_results("convert_speed", figures, {"images": a.images, "size": f"{W}x{H}", "jpeg_quality": 90, "distinct": a.distinct,
                                                "boxes_per_image": "1-4", "classes": NC})


if __name__ == "__main__":
    main()
