"""LabelMe reader: one JSON per image; rectangles as boxes, polygons (and circles) by their bounding box.

When the image file is not there but the JSON embeds it (`imageData`, base64), the embedded bytes are the
image: the writer checks them like a file and writes them to the output under the image's name.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from pathlib import Path

from PIL import Image

from ultralytics.data.convert.common import (BadNumber, Box, Item, NotRegularFile, Source, find_image, finite,
                                          read_regular)
from ultralytics.data.image_io import is_image_file

SHAPES = ("rectangle", "polygon", "circle")


def _box(shape: dict) -> Box:
    """One LabelMe shape -> Box; ValueError for an unsupported type or bad points."""
    kind = shape.get("shape_type") or "polygon"
    pts = shape.get("points")
    if kind not in SHAPES:
        raise ValueError(f"shape_type {kind!r} is not a box (supported: {', '.join(SHAPES)})")
    if not isinstance(pts, list) or not pts or not all(isinstance(p, list) and len(p) == 2 for p in pts):
        raise ValueError("points must be a list of [x, y]")
    xs = [finite(p[0], f"points[{j}][0]") for j, p in enumerate(pts)]
    ys = [finite(p[1], f"points[{j}][1]") for j, p in enumerate(pts)]
    if kind == "circle":  # centre, a point on the circle
        r = math.hypot(xs[1] - xs[0], ys[1] - ys[0])
        return Box(str(shape.get("label", "")), xs[0] - r, ys[0] - r, xs[0] + r, ys[0] + r)
    if kind == "rectangle" and len(pts) != 2 or kind == "polygon" and len(pts) < 3:
        raise ValueError(f"{kind} with {len(pts)} points")
    return Box(str(shape.get("label", "")), min(xs), min(ys), max(xs), max(ys))


def _suffix(data: bytes) -> str:
    """File suffix for embedded image bytes, from their header (png when unknown: the writer checks them)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return {"JPEG": "jpg", "MPO": "jpg"}.get(im.format, (im.format or "png").lower())
    except Exception:  # noqa: BLE001 - not an image: the writer's check reports it
        return "png"


def read_labelme(files: list[Path], images: str | Path | None = None) -> Source:
    """Read LabelMe JSON files -> Source."""
    src = Source("labelme")
    for jf in files:
        try:
            d = json.loads(read_regular(jf).decode("utf-8-sig"))
            if not isinstance(d, dict) or not isinstance(d.get("shapes"), list):
                raise ValueError("no 'shapes' list")
        except NotRegularFile as e:
            src.problem(jf, "not_regular_file", str(e))
            continue
        except (ValueError, OSError, RecursionError) as e:
            src.problem(jf, "malformed_json", str(e))
            continue
        name = str(d.get("imagePath") or jf.stem)
        folders = ([Path(images)] if images else []) + [jf.parent]
        im = find_image(name, folders) or find_image(jf.stem, folders)
        data = None
        if im is None and isinstance(d.get("imageData"), str) and d["imageData"]:
            try:
                data = base64.b64decode(d["imageData"], validate=True)
            except (binascii.Error, ValueError) as e:
                src.problem(jf, "bad_image_data", f"imageData is not base64 ({e}); the image file is looked for")
        im = im or jf.parent / Path(name.replace("\\", "/")).name
        if data is not None and not is_image_file(im.name):
            im = im.with_name(f"{im.name}.{_suffix(data)}")
        w, h = d.get("imageWidth"), d.get("imageHeight")
        size = (int(w), int(h)) if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0 else None
        item = Item(image=im, size=size, source=str(jf), data=data)
        for k, shape in enumerate(d["shapes"], start=1):
            try:
                if not isinstance(shape, dict) or not str(shape.get("label", "")).strip():
                    raise ValueError("no label")
                item.boxes.append(_box(shape))
            except BadNumber as e:
                src.problem(jf, "bad_number", f"shape {k} {shape.get('label')!r}: {e}")
            except (ValueError, TypeError, IndexError) as e:
                src.problem(jf, "malformed_shape", f"shape {k}: {e}")
        src.items.append(item)
    return src
