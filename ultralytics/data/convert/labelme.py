"""LabelMe reader: one JSON per image; rectangles as boxes, polygons (and circles) by their bounding box."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ultralytics.data.convert.common import Box, Item, Source, find_image

SHAPES = ("rectangle", "polygon", "circle")


def _box(shape: dict) -> Box:
    """One LabelMe shape -> Box; ValueError for an unsupported type or bad points."""
    kind = shape.get("shape_type") or "polygon"
    pts = shape.get("points")
    if kind not in SHAPES:
        raise ValueError(f"shape_type {kind!r} is not a box (supported: {', '.join(SHAPES)})")
    if not isinstance(pts, list) or not pts or not all(isinstance(p, list) and len(p) == 2 for p in pts):
        raise ValueError("points must be a list of [x, y]")
    xs, ys = [float(p[0]) for p in pts], [float(p[1]) for p in pts]
    if kind == "circle":  # centre, a point on the circle
        r = math.hypot(xs[1] - xs[0], ys[1] - ys[0])
        return Box(str(shape.get("label", "")), xs[0] - r, ys[0] - r, xs[0] + r, ys[0] + r)
    if kind == "rectangle" and len(pts) != 2 or kind == "polygon" and len(pts) < 3:
        raise ValueError(f"{kind} with {len(pts)} points")
    return Box(str(shape.get("label", "")), min(xs), min(ys), max(xs), max(ys))


def read_labelme(files: list[Path], images: str | Path | None = None) -> Source:
    """Read LabelMe JSON files -> Source."""
    src = Source("labelme")
    for jf in files:
        try:
            d = json.loads(jf.read_text(encoding="utf-8-sig"))
            if not isinstance(d, dict) or not isinstance(d.get("shapes"), list):
                raise ValueError("no 'shapes' list")
        except (ValueError, OSError) as e:
            src.problem(jf, "malformed_json", str(e))
            continue
        name = str(d.get("imagePath") or jf.stem)
        folders = ([Path(images)] if images else []) + [jf.parent]
        im = find_image(name, folders) or find_image(jf.stem, folders) or jf.parent / name
        w, h = d.get("imageWidth"), d.get("imageHeight")
        size = (int(w), int(h)) if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0 else None
        item = Item(image=im, size=size, source=str(jf))
        for k, shape in enumerate(d["shapes"], start=1):
            try:
                if not isinstance(shape, dict) or not str(shape.get("label", "")).strip():
                    raise ValueError("no label")
                item.boxes.append(_box(shape))
            except (ValueError, TypeError, IndexError) as e:
                src.problem(jf, "malformed_shape", f"shape {k}: {e}")
        src.items.append(item)
    return src
