"""COCO reader (Label Studio, Roboflow, CVAT exports): one or more instance JSON files.

Several files: each is the split its name (or its folder's, as Roboflow exports) says (train/val/test); image and annotation ids are per file.
An image's file_name is looked up under `images=` when given, beside the JSON, then in images/ beside it.
Category ids map to classes in ascending id order. `iscrowd=1` annotations are not training labels
(counted); images without annotations are kept as background images. bbox is [x, y, width, height] pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

from ultralytics.data.convert.common import (BadNumber, Box, Item, NotRegularFile, Source, find_image, finite,
                                          read_regular, split_from_name)
from ultralytics.utils import UserError


def _load(jf: Path) -> dict:
    """The JSON as a dict with lists images, annotations, categories; ValueError when it is not COCO."""
    d = json.loads(read_regular(jf).decode("utf-8-sig"))
    if not isinstance(d, dict) or not isinstance(d.get("images"), list):
        raise ValueError("no 'images' list (not a COCO instances file)")
    for key in ("annotations", "categories"):
        if not isinstance(d.get(key, []), list):
            raise ValueError(f"'{key}' is not a list")
    return d


def read_coco(files: list[Path], images: str | Path | None = None) -> Source:
    """Read COCO instance JSON files -> Source (names: categories by ascending id, across all files)."""
    src = Source("coco")
    files = sorted(Path(f) for f in files)
    splits = [split_from_name(f.name) or split_from_name(f.parent.name) for f in files] if len(files) > 1 else [None]
    if len(files) > 1 and (None in splits or len(set(splits)) < len(splits)):
        raise UserError(f"{len(files)} COCO JSON files {[f.name for f in files]}: with several files each name "
                        f"(or its folder's) must say its split once (train, val or test); pass one file to split it here")
    cats: dict[int, str] = {}
    loaded = []
    for jf, split in zip(files, splits):
        try:
            d = _load(jf)
        except NotRegularFile as e:
            src.problem(jf, "not_regular_file", str(e))
            continue
        except (ValueError, OSError, RecursionError) as e:
            src.problem(jf, "malformed_json", str(e))
            continue
        for c in d.get("categories", []):
            try:
                cid, name = int(c["id"]), str(c["name"])
            except (KeyError, TypeError, ValueError):
                src.problem(jf, "malformed_category", repr(c)[:200])
                continue
            if cats.setdefault(cid, name) != name:
                src.problem(jf, "category_conflict", f"id {cid} is {cats[cid]!r} in an earlier file, {name!r} here")
        loaded.append((jf, d, split))
    src.names = [cats[k] for k in sorted(cats)]
    for jf, d, split in loaded:
        folders = ([Path(images)] if images else []) + [jf.parent, jf.parent / "images"]
        by_id: dict = {}
        for im in d["images"]:
            if not isinstance(im, dict) or not isinstance(im.get("id"), (int, str)) or not im.get("file_name"):
                src.problem(jf, "malformed_image", repr(im)[:200])
                continue
            if im["id"] in by_id:
                src.problem(jf, "duplicate_image_id", f"image id {im['id']!r} again ({im['file_name']!r}); skipped")
                continue
            fn = str(im["file_name"])
            w, h = im.get("width"), im.get("height")
            size = None
            if isinstance(w, (int, float)) and isinstance(h, (int, float)):
                try:
                    size = (int(finite(w, "width")), int(finite(h, "height")))
                except BadNumber as e:
                    src.problem(jf, "bad_number", f"image {im['id']} {fn!r}: {e}; the file's own size is used")
            path = find_image(fn, folders) or folders[0] / fn
            by_id[im["id"]] = Item(image=path, size=size, split=split, source=str(jf))
        for k, a in enumerate(d.get("annotations", [])):
            try:
                if not isinstance(a["image_id"], (int, str)):
                    raise TypeError(f"image_id {a['image_id']!r} is not an id")
                item, bbox = by_id.get(a["image_id"]), list(a["bbox"])
                if len(bbox) != 4:
                    raise ValueError(f"bbox has {len(bbox)} values")
                bbox = [finite(v, f"bbox[{j}]") for j, v in enumerate(bbox)]
            except BadNumber as e:
                src.problem(jf, "bad_number", f"annotation {a.get('id', k)}: {e}")
                continue
            except (KeyError, TypeError, ValueError) as e:
                src.problem(jf, "malformed_annotation", f"annotation {a.get('id', k) if isinstance(a, dict) else k}: "
                            f"{type(e).__name__}: {e}")
                continue
            if item is None:
                src.problem(jf, "unknown_image_id", f"annotation {a.get('id', k)}: image_id {a['image_id']}")
                continue
            if a.get("iscrowd", 0):
                src.counts["crowd"] += 1
                continue
            if not isinstance(a.get("category_id"), (int, str)) or a.get("category_id") not in cats:
                src.problem(jf, "unknown_category_id", f"annotation {a.get('id', k)}: category_id {a.get('category_id')}")
                continue
            x, y, w, h = bbox
            item.boxes.append(Box(cats[a["category_id"]], x, y, x + w, y + h))
        src.items += list(by_id.values())
    return src
