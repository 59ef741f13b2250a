"""Write a Source as a YOLO dataset: checks, split, images (hard-linked), labels, data.yaml, problems.csv.

Everything is written into a temporary folder beside `out` and renamed into place at the end: an
interrupted run leaves no half dataset; what `out` may be, and which images may be read, is safety.py's.
The writer never parses a source format (see common.py). Problem rows (file, problem, detail) are never
dropped: they go to problems.csv and the summary line. Images with the same name in different folders get
names made from their relative path (renamed.csv maps them back). The dataset is checked with the tree's
own check_det_dataset before it is moved into place.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from tqdm import tqdm

from ultralytics.data.convert import folds as kfold, safety, tile
from ultralytics.data.convert.check import inspect_image
from ultralytics.data.convert.common import Item, Source
from ultralytics.data.convert.split import assign_splits, check_fractions
from ultralytics.data.image_io import ImageReadError
from ultralytics.utils import LOGGER, UserError

MIN_BOX = 1.0  # boxes narrower or lower than this many pixels (after clipping) are dropped


def n_workers() -> int:
    """Threads for the per-image work: the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def parallel(fn, items: list, desc: str) -> list:
    """[fn(x) for x in items] on a thread pool (file reads and hashing release the GIL), with a progress bar."""
    with ThreadPoolExecutor(n_workers()) as pool:
        return list(tqdm(pool.map(fn, items), total=len(items), desc=desc, leave=False, disable=len(items) < 200))


@dataclass
class Entry:
    """One checked image: where it goes and its kept boxes (class id, x1, y1, x2, y2 in pixels)."""

    item: Item
    ok: bool = False
    w: int = 0
    h: int = 0
    digest: str = ""
    rows: list[tuple[int, float, float, float, float]] = field(default_factory=list)
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    split: str = ""
    real: Path | None = None  # the file to link or copy (symlinks followed); None for embedded bytes
    name: str = ""  # output file name (the image's own, unless another image has the same stem)


def check_item(item: Item, ids: dict[str, int], roots=(), max_bytes: int = 1 << 62) -> Entry:
    """Check one image and its boxes against the file's real size -> Entry (nothing is written).

    The image is read only when safety.confine allows it (inside roots, regular file, at most max_bytes).
    """
    e = Entry(item, name=item.image.name)
    try:
        if item.data is None:
            e.real = safety.confine(item.image, list(roots), max_bytes)
        e.w, e.h, e.digest = inspect_image(e.real, data=item.data, max_bytes=max_bytes)
    except ImageReadError as err:
        kind = err.reason if err.reason in ("outside_source", "not_regular_file") else f"{err.reason}_image"
        e.problems.append((str(item.image), kind, err.detail or err.reason))
        return e
    e.ok = True
    where = item.source or str(item.image)
    if item.size and tuple(item.size) != (e.w, e.h):
        e.problems.append((where, "size_mismatch", f"annotation says {item.size[0]}x{item.size[1]}, "
                           f"{item.image} is {e.w}x{e.h}; boxes are taken against the file"))
    for k, b in enumerate(item.boxes, start=1):
        label = f"box {k} {b.name!r} ({b.x1:g},{b.y1:g},{b.x2:g},{b.y2:g})"
        if not all(math.isfinite(v) for v in (b.x1, b.y1, b.x2, b.y2)):
            e.problems.append((where, "bad_number", f"{label}: not finite"))
        elif b.name not in ids:
            e.problems.append((where, "unknown_class", f"{label}: not in names"))
        elif b.x2 < b.x1 or b.y2 < b.y1:
            e.problems.append((where, "negative_size", f"{label}: x2 < x1 or y2 < y1"))
        elif b.x2 <= 0 or b.y2 <= 0 or b.x1 >= e.w or b.y1 >= e.h:
            e.problems.append((where, "outside_image", f"{label}: image is {e.w}x{e.h}"))
        else:
            x1, y1, x2, y2 = max(b.x1, 0.0), max(b.y1, 0.0), min(b.x2, float(e.w)), min(b.y2, float(e.h))
            if x2 - x1 < MIN_BOX or y2 - y1 < MIN_BOX:
                e.problems.append((where, "degenerate_box", f"{label}: under {MIN_BOX:g} px after clipping"))
                continue
            if (x1, y1, x2, y2) != (b.x1, b.y1, b.x2, b.y2):
                e.problems.append((where, "box_clipped", f"{label}: clipped to the {e.w}x{e.h} image"))
                e.counts["clipped"] += 1
            e.rows.append((ids[b.name], x1, y1, x2, y2))
            continue
        e.counts["dropped"] += 1
    return e


def label_text(rows, w: int, h: int) -> str:
    """YOLO label file text: 'cls xc yc w h' normalised, 6 decimals, one row per box."""
    return "".join(f"{c} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}\n"
                   for c, x1, y1, x2, y2 in rows)


def place_image(src: Path, dst: Path) -> None:
    """Hard-link src to dst (same file system), else copy it; the source image is never modified."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _write_entry(e: Entry, root: Path) -> None:
    """Image (linked from its real path, or its embedded bytes) and label file of one entry under root."""
    name = e.name or e.item.image.name
    if e.item.data is not None:
        (root / "images" / e.split / name).write_bytes(e.item.data)
    else:
        place_image(e.real or e.item.image, root / "images" / e.split / name)
    (root / "labels" / e.split / f"{Path(name).stem}.txt").write_text(label_text(e.rows, e.w, e.h), encoding="utf-8")


def problems_csv(rows: list[tuple], header=("file", "problem", "detail")) -> str:
    """problems.csv text: header file,problem,detail and one row per problem (renamed.csv: output,source)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def resolve_names(src: Source, names) -> list[str]:
    """Class order: names= as given, else the source's own order (COCO ids, classes.txt), else sorted names."""
    if isinstance(names, str):  # names=cat,dog on the command line
        names = [n.strip() for n in names.split(",") if n.strip()]
    if names:
        out = list(names.values()) if isinstance(names, dict) else [str(n) for n in names]
    elif src.names:
        out = list(src.names)
    else:
        out = sorted({b.name for it in src.items for b in it.boxes})
    if len(set(out)) != len(out):
        raise UserError(f"class names {out} contain duplicates")
    return out


def dedupe_names(entries: list[Entry]) -> list[tuple[str, str]]:
    """Unique output names: images whose stem is unique keep their name; each group of images sharing a stem
    is named from its path relative to the group's common folder ('cam1/0001.jpg' -> 'cam1__0001.jpg'; then
    the suffix, then a counter, when that is still taken) -> [(output name, source path)] of the renamed."""
    by: dict[str, list[Entry]] = {}
    for e in entries:
        if e.ok:
            by.setdefault(Path(e.name).stem, []).append(e)
    taken = {k for k, g in by.items() if len(g) == 1}
    renamed = []
    for group in (g for g in by.values() if len(g) > 1):
        paths = [os.path.abspath(e.item.image) for e in group]
        common = os.path.commonpath([os.path.dirname(p) for p in paths])
        for e, p in sorted(zip(group, paths), key=lambda t: t[1]):
            rel = Path(os.path.relpath(p, common))
            stem = "__".join((*rel.parent.parts, rel.stem))
            for cand in (stem, f"{stem}_{rel.suffix[1:]}", *(f"{stem}_{k}" for k in range(2, len(entries) + 3))):
                if cand not in taken:
                    break
            taken.add(cand)
            e.name = cand + rel.suffix
            renamed.append((e.name, str(e.item.image)))
    return renamed


def duplicate_groups(entries: list[Entry]) -> list[list[Entry]]:
    """Groups (2 or more) of usable images with identical content."""
    by: dict[str, list[Entry]] = {}
    for e in entries:
        if e.ok:
            by.setdefault(e.digest, []).append(e)
    return [g for g in by.values() if len(g) > 1]


def check_sizes(good: list[Entry], n_all: int, problems: list) -> None:
    """UserError unless train and val both get images (the tree's dataset check rejects an empty split)."""
    n = Counter(e.split for e in good)
    if n["train"] and n["val"]:
        return
    why = f"{n_all} images in the source, {len(problems)} problems (first: {problems[:2]})"
    if len(good) < 2:
        raise UserError(f"{len(good)} usable image{'s' * (len(good) != 1)} ({why}): training needs at least one "
                        f"image in train and one in val, and one image cannot be both; add images (with 2 or more, "
                        f"val gets at least one; split= sets the shares, e.g. split=[0.5,0.5])")
    raise UserError(f"the split leaves {'train' if not n['train'] else 'val'} without images ({dict(n)}; identical "
                    f"images stay together, a split the source fixes is kept); change split= (now giving "
                    f"train {n['train']}, val {n['val']}) or the source's split files")


def check_written(root: Path) -> None:
    """Run the tree's own dataset check on a written dataset; UserError saying it was not written otherwise."""
    from ultralytics.data.utils import check_det_dataset, get_img_files

    try:
        d = check_det_dataset(root / "data.yaml")
        for key in ("train", "val", "test"):
            if d.get(key):
                get_img_files(d[key])
    except UserError as e:
        raise UserError(f"not written: the dataset would fail the dataset check ({e})") from None


def write_dataset(src: Source, out, split=(0.8, 0.2), seed: int = 0, names=None, exist_ok: bool = False,
                  strict: bool = False, imgsz: int = 640, max_image_mb: float | None = None, tiling=None,
                  folds: int = 0) -> Path:
    """Check, split and write `src` as a YOLO dataset at `out` -> path of data.yaml. See module docstring.

    Images are read only inside src.roots (read_source sets them; a Source built in code without roots is
    not confined to folders), and only regular files of at most max_image_mb (None: default.yaml's value).
    tiling: a tile.TileSpec (images larger than the tile are cut after the split); folds: k >= 2 also writes
    out/folds/<k>/data.yaml (folds.py).
    """
    from ultralytics.data.report import write_report

    out = Path(out).resolve()
    safety.check_out(out, src.roots, exist_ok, [Path(p) for p in src.origin if Path(p).is_dir()])
    safety.clean_stale(out)
    max_image_mb = safety.image_mb(max_image_mb)
    limit = int(max_image_mb * 2**20)
    if not src.items:
        raise UserError(f"no images found in the {src.fmt} source ({len(src.problems)} problems: "
                        f"{src.problems[:3]})")
    class_names = resolve_names(src, names)
    ids = {n: i for i, n in enumerate(class_names)}
    entries = parallel(lambda it: check_item(it, ids, src.roots, limit), src.items, "checking images")
    renamed = dedupe_names(entries)
    dups = duplicate_groups(entries)
    for g in dups:
        for e in g[1:]:
            e.problems.append((str(e.item.image), "duplicate_image", f"same content as {g[0].item.image}"))
    good = [e for e in entries if e.ok]
    fixed = [e.item.split for e in good]
    if "train" in fixed and "val" not in fixed:  # a source that names train but no val fixes no val: split it
        LOGGER.info(f"the {src.fmt} source names no val images: its train images are split by split={split}")
        fixed = [None if s == "train" else s for s in fixed]
    sides = assign_splits([e.digest for e in good], [{r[0] for r in e.rows} for e in good], fixed, split, seed)
    for e, s in zip(good, sides):
        e.split = s
    good.sort(key=lambda e: (e.split, e.name))
    problems = list(src.problems) + [p for e in entries for p in e.problems]
    check_sizes(good, len(entries), problems)
    tmp = safety.new_tmp(out)
    try:
        used = [s for s in ("train", "val", "test") if s in {e.split for e in good} | {"train", "val"}]
        for s in used:
            (tmp / "images" / s).mkdir(parents=True)
            (tmp / "labels" / s).mkdir(parents=True)
        tiled = tile.tile_entries(good, tiling, tmp, seed, parallel) if tiling else None
        if tiled:  # the tiles replace their sources; the counts and problems of tiling join the others
            good, problems = tiled.entries, problems + tiled.problems
        parallel(lambda e: _write_entry(e, tmp), good, "writing")
        if tiled:
            tile.finish(tiled, tmp)
        if folds:
            kfold.write_folds(tmp, good, folds, seed, class_names)
        data = {"path": ".", **{s: f"images/{s}" for s in used}, "names": dict(enumerate(class_names))}
        (tmp / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        (tmp / "problems.csv").write_text(problems_csv(problems), encoding="utf-8")
        if renamed:
            (tmp / "renamed.csv").write_text(problems_csv(renamed, ("output", "source")), encoding="utf-8")
        counts = Counter(src.counts)
        for e in entries:
            counts.update(e.counts)
        counts.update(tiled.counts if tiled else {})
        write_report(tmp / "report.html", class_names,
                     [{"split": e.split, "w": e.w, "h": e.h, "rows": e.rows, "file": e.name} for e in good],
                     problems, [[str(e.item.image) for e in g] for g in dups], counts, imgsz,
                     title=f"{src.fmt} -> {out.name}")
        check_written(tmp)
        settings = {"format": src.fmt, "split": list(check_fractions(split)), "seed": seed, "names": class_names,
                    "imgsz": imgsz, "max_image_mb": max_image_mb, "folds": folds,
                    "tiling": dataclasses.asdict(tiling) if tiling else None}
        safety.finish(tmp, out, src.origin, settings)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    n = Counter(e.split for e in good)
    inst = sum(len(e.rows) for e in good)
    LOGGER.info(f"dataset {out}: {len(good)} images ({', '.join(f'{s} {n[s]}' for s in sorted(n))}), {inst} instances, "
                f"{len(class_names)} classes, {sum(not e.rows for e in good)} background images, "
                f"{len(problems)} problems" + (f" -> {out / 'problems.csv'}" if problems else "")
                + (tiled.summary if tiled else "")
                + (f", {len(renamed)} renamed (same name elsewhere) -> {out / 'renamed.csv'}" if renamed else "")
                + f"; report {out / 'report.html'}")
    if strict and problems:
        kinds = Counter(p[1] for p in problems)
        raise UserError(f"strict=True: {len(problems)} problems ({dict(kinds)}); see {out / 'problems.csv'}")
    return out / "data.yaml"
