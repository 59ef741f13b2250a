"""Your own data in, a checked YOLO dataset out: `convert_dataset(source, out)` and `python dataset.py`.

Readers (voc.py, coco.py, labelme.py, yolo.py) turn a source into the neutral Source of common.py; the
writer (writer.py) checks, splits and writes it; ultralytics/data/report.py draws report.html.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from ultralytics.data.convert.common import Source, is_ignored, outside, walk
from ultralytics.data.convert.safety import image_mb, roots_of
from ultralytics.data.convert.writer import write_dataset
from ultralytics.utils import UserError

__all__ = ["convert_dataset", "detect_format", "read_source", "main"]
FORMATS = ("voc", "coco", "labelme", "yolo")
PROBE_MAX_BYTES = 64 << 20  # a JSON larger than this is not parsed to detect its kind: taken as COCO


def _kind_of_json(path: Path) -> str:
    """'coco', 'labelme', 'json' (neither) or 'bad_json' (unparseable, not a regular file) from the top-level keys.

    COCO: images, annotations and categories; LabelMe: shapes and imagePath. A file over PROBE_MAX_BYTES
    is not parsed (a LabelMe file holds one image) and counts as COCO; read_coco checks it when it loads it.
    """
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return "bad_json"
        if st.st_size > PROBE_MAX_BYTES:
            return "coco"
        d = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (OSError, ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return "bad_json"
    if not isinstance(d, dict):
        return "json"
    if all(isinstance(d.get(k), list) for k in ("images", "annotations", "categories")):
        return "coco"
    if isinstance(d.get("shapes"), list) and "imagePath" in d:
        return "labelme"
    return "json"


def _survey(root: Path) -> dict[str, list[Path]]:
    """Annotation files under root by kind: voc (.xml), coco / labelme (.json), yolo (.txt labels).

    README*, *.md and licence files, and hidden folders (.git, .dvc), are not looked at; a JSON file that
    links out of root is listed as 'outside' without being opened.
    """
    found: dict[str, list[Path]] = {k: [] for k in (*FORMATS, "json", "bad_json", "outside")}
    for p in walk(root):
        low = p.name.lower()
        if is_ignored(p.name):
            continue
        if low.endswith(".json") and outside(p, root):  # a link out of the source: not opened
            found["outside"].append(p)
        elif low.endswith(".xml"):
            found["voc"].append(p)
        elif low.endswith(".json"):
            found[_kind_of_json(p)].append(p)
        elif low.endswith(".txt") and low != "classes.txt" and "ImageSets" not in p.parts:
            found["yolo"].append(p)
    return {k: sorted(v) for k, v in found.items()}


def detect_format(source) -> str:
    """voc / coco / labelme / yolo from what the source holds; UserError naming the counts when unclear."""
    paths = [Path(p) for p in (source if isinstance(source, (list, tuple)) else [source])]
    for p in paths:
        if not p.exists():
            raise UserError(f"source={p} does not exist")
    if all(p.is_file() for p in paths):
        kinds = {_kind_of_json(p) if p.suffix.lower() == ".json" else p.suffix.lower() for p in paths}
        if kinds == {"coco"} or kinds == {"labelme"}:
            return kinds.pop()
        raise UserError(f"source={source}: files of kind {sorted(kinds)}; give a COCO JSON, or a folder")
    if len(paths) > 1:
        raise UserError(f"source={source}: give one folder, or a list of COCO JSON files")
    found = _survey(paths[0])
    hits = {k: len(v) for k, v in found.items() if v and k in FORMATS}
    if len(hits) == 1:
        return next(iter(hits))
    what = ", ".join(f"{n} {k}" for k, n in hits.items()) or "no .xml, .json or .txt annotation files"
    raise UserError(f"source={paths[0]}: cannot tell the format ({what}); pass format=voc|coco|labelme|yolo")


def read_source(source, fmt: str = "auto", images=None, names=None, max_image_mb: float | None = None) -> Source:
    """Run the reader of `fmt` (detected when 'auto') on source -> Source (with its roots and origin set)."""
    src = _read(source, fmt, images, names, int(image_mb(max_image_mb) * 2**20))
    src.roots = roots_of(source, images)
    src.origin = [os.path.abspath(p) for p in (source if isinstance(source, (list, tuple)) else [source])]
    return src


def _read(source, fmt, images, names, limit: int) -> Source:
    """The reader of `fmt` on source -> Source."""
    from ultralytics.data.convert.coco import read_coco
    from ultralytics.data.convert.labelme import read_labelme
    from ultralytics.data.convert.voc import read_voc
    from ultralytics.data.convert.yolo import read_yolo

    fmt = detect_format(source) if fmt in (None, "auto") else str(fmt).lower()
    if fmt not in FORMATS:
        raise UserError(f"format={fmt!r}; use auto, {', '.join(FORMATS)}")
    paths = [Path(p) for p in (source if isinstance(source, (list, tuple)) else [source])]
    surveys = {p: _survey(p) for p in paths if p.is_dir()}
    if fmt == "coco":
        files = [f for p in paths for f in ([p] if p.is_file() else surveys[p]["coco"])]
        if not files:
            raise UserError(f"source={source}: no COCO JSON file found")
        src = read_coco(files, images)
    elif len(paths) != 1:
        raise UserError(f"format={fmt}: source must be one folder, got {source}")
    elif fmt == "voc":
        src = read_voc(paths[0], images)
    elif fmt == "labelme":
        src = read_labelme([paths[0]] if paths[0].is_file() else surveys[paths[0]]["labelme"], images)
    else:
        src = read_yolo(paths[0], names, limit)
    if fmt in ("coco", "labelme"):  # JSON files the survey passed over: a row each, never dropped silently
        for p, sv in surveys.items():
            for f in sv["outside"]:
                src.problem(f, "outside_source", f"a link to {os.path.realpath(f)}, outside {p}; not read")
            for f in sv["bad_json"]:
                src.problem(f, "malformed_json", "not valid JSON, or not a regular file; skipped")
            for f in sv["json"]:
                src.problem(f, "unknown_json", "neither COCO (images, annotations, categories) nor LabelMe "
                            "(shapes, imagePath); skipped")
    return src


def convert_dataset(source, out, format: str = "auto", split=(0.8, 0.2), seed: int = 0, images=None, names=None,
                    exist_ok: bool = False, strict: bool = False, imgsz: int = 640,
                    max_image_mb: float | None = None, tile: int = 0, tile_overlap: float = 0.2,
                    tile_min_area: float = 0.5, tile_empty: float = 0.1, folds: int = 0) -> Path:
    """Convert a VOC / COCO / LabelMe / YOLO source into a checked YOLO dataset at `out` -> its data.yaml path.

    split: (train, val) or (train, val, test) fractions; seed: the split's seed; images: folder of the images
    when not beside the annotations; names: class order (and the only classes allowed); strict: any problem
    raises UserError (after writing problems.csv); imgsz: the training size the report scales boxes to;
    max_image_mb: larger image files are not read (default: default.yaml). See safety.py for what `out` may be.
    tile (0: off), tile_overlap, tile_min_area, tile_empty: cut images larger than `tile` px (tile.py);
    folds: k >= 2 also writes out/folds/<k>/data.yaml for k-fold training (folds.py).
    """
    from ultralytics.data.convert.folds import check_folds
    from ultralytics.data.convert.tile import TileSpec

    tiling, folds = TileSpec.from_settings(tile, tile_overlap, tile_min_area, tile_empty), check_folds(folds)
    mb = image_mb(max_image_mb)  # checked here, before anything is read
    src = read_source(source, format, images, names, mb)
    return write_dataset(src, out, split=split, seed=seed, names=names, exist_ok=exist_ok, strict=strict, imgsz=imgsz,
                         max_image_mb=mb, tiling=tiling, folds=folds)


def main(argv: list[str]) -> int:
    """`yolo dataset source=... out=...` or `yolo dataset data=path/to/data.yaml` (check and report only)."""
    from ultralytics.cfg import parse_key_value_args

    args = parse_key_value_args(argv)
    allowed = {"source", "out", "format", "split", "seed", "images", "names", "exist_ok", "strict", "imgsz", "data",
               "max_image_mb", "tile", "tile_overlap", "tile_min_area", "tile_empty", "folds"}
    bad = sorted(set(args) - allowed)
    if bad:
        raise UserError(f"dataset: unknown argument(s) {bad}; allowed: {sorted(allowed)}")
    if args.get("data"):
        from ultralytics.data.report import check_dataset

        extra = sorted(set(args) - {"data", "imgsz", "strict"})
        if extra:
            raise UserError(f"dataset data=...: checks an existing dataset; {extra} apply only with source=")
        check_dataset(args["data"], imgsz=int(args.get("imgsz") or 640), strict=bool(args.get("strict")))
        return 0
    if not args.get("source") or not args.get("out"):
        raise UserError("dataset: give source=path/to/annotations out=datasets/mine (or data=path/to/data.yaml)")
    src = args.pop("source")
    out = args.pop("out")
    convert_dataset(src, out, **args)
    return 0
