"""Tiling at conversion: cut every image larger than `tile` into training tiles, after the split.

`python dataset.py source=... out=... tile=640 tile_overlap=0.2 tile_min_area=0.5 tile_empty=0.1`.

- Windows are `ultralytics.utils.slicing.slice_positions` (SAHI's `get_slice_bboxes`), so a training tile and
  an inference slice are the same rectangle. A tile is named `<stem>_<x1>_<y1>_<x2>_<y2><ext>` (SAHI's
  `slice_coco` convention) and says where it came from. Images no larger than `tile` on both sides stay whole.
- Boxes are clipped to the tile; a box is kept when at least `tile_min_area` of its area lies inside (and it is
  still MIN_BOX px wide and high), else it is cut out and counted (summary line, report, tiles.csv).
- The writer splits the SOURCE images first (split.py) and tiles afterwards: all tiles of one source share its
  split and its content hash, so overlapping tiles never sit in both train and val, and k-fold keeps them
  together.
- Empty tiles (no box kept): in each split at most a share `tile_empty` of the written tiles is empty; which
  empty tiles are kept is drawn with `seed`. tile_empty=0 keeps none, 1 keeps all.
- Crops are decoded once per source (EXIF orientation applied, as training reads it) and encoded in the
  source's format (JPEG at quality JPEG_QUALITY: tiles of a JPEG are re-encoded, the only pixels the
  converter changes). They are staged under the output's temporary folder and linked into place by the writer.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ultralytics.data.convert.common import Item
from ultralytics.data.image_io import imread
from ultralytics.utils import UserError
from ultralytics.utils.slicing import check_overlap, check_slice_size, slice_positions

JPEG_QUALITY = 95  # quality of re-encoded JPEG tiles
MIN_BOX = 1.0  # as writer.MIN_BOX: a clipped box under this many pixels wide or high is cut out
STAGE = ".tiles"  # staging folder inside the writer's temporary output folder


@dataclass(frozen=True)
class TileSpec:
    """Checked tiling settings: tile side (px), overlap share, minimum kept area share, share of empty tiles."""

    tile: int
    overlap: float = 0.2
    min_area: float = 0.5
    empty: float = 0.1

    @classmethod
    def from_settings(cls, tile, tile_overlap=0.2, tile_min_area=0.5, tile_empty=0.1) -> "TileSpec | None":
        """None when tile is 0/None (no tiling); else the checked settings (UserError naming the bad one)."""
        if tile in (None, 0, "0", "", False):
            return None
        if isinstance(tile, str) and tile.strip().isdigit():
            tile = int(tile)
        return cls(check_slice_size(tile, "tile"), check_overlap(tile_overlap, "tile_overlap"),
                   _share(tile_min_area, "tile_min_area"), _share(tile_empty, "tile_empty"))

    def windows(self, w: int, h: int) -> list[tuple[int, int, int, int]]:
        """Tile windows (x1, y1, x2, y2) of a w x h image; [] when it is no larger than the tile (kept whole)."""
        if w <= self.tile and h <= self.tile:
            return []
        return slice_positions(h, w, self.tile, self.tile, self.overlap, self.overlap)


def _share(v, name: str) -> float:
    """A fraction in [0, 1] or a UserError naming the setting."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise UserError(f"{name}={v!r} is not a number; use a fraction in [0, 1]") from None
    if not 0.0 <= f <= 1.0 or math.isnan(f):
        raise UserError(f"{name}={v!r} is outside [0, 1]")
    return f


def tile_name(image: Path, window: tuple[int, int, int, int]) -> str:
    """'scene_0_512_640_1152.jpg' for scene.jpg and window (0, 512, 640, 1152)."""
    return f"{image.stem}_{'_'.join(str(int(v)) for v in window)}{image.suffix}"


def clip_rows(rows, window, min_area: float) -> tuple[list[tuple], int]:
    """Boxes of one tile -> (kept rows in tile pixels, number cut out). rows: (cls, x1, y1, x2, y2) image px.

    A box overlapping the window is kept, clipped, when inter / area >= min_area and its clipped sides are
    >= MIN_BOX; otherwise it is cut out. Boxes not touching the window are neither kept nor counted.
    """
    wx1, wy1, wx2, wy2 = window
    kept, cut = [], 0
    for c, x1, y1, x2, y2 in rows:
        cx1, cy1, cx2, cy2 = max(x1, wx1), max(y1, wy1), min(x2, wx2), min(y2, wy2)
        if cx2 <= cx1 or cy2 <= cy1:
            continue  # not in this tile
        area, inter = (x2 - x1) * (y2 - y1), (cx2 - cx1) * (cy2 - cy1)
        if inter >= min_area * area - 1e-9 and cx2 - cx1 >= MIN_BOX and cy2 - cy1 >= MIN_BOX:
            kept.append((c, cx1 - wx1, cy1 - wy1, cx2 - wx1, cy2 - wy1))
        else:
            cut += 1
    return kept, cut


@dataclass
class Tiled:
    """What tiling did: the output entries, per-source rows for tiles.csv, counts and problem rows."""

    entries: list = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)  # one row per tiled source
    counts: Counter = field(default_factory=Counter)
    problems: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """'; tiles 120 from 4 images (30.0 per image, 5.2 objects per tile), 3 boxes cut by tiling, ...'."""
        n_src, n_tiles = len(self.sources), sum(r["tiles"] for r in self.sources)
        objs = sum(r["objects"] for r in self.sources)
        return (f"; tiles {n_tiles} from {n_src} images ({n_tiles / max(n_src, 1):.1f} per image, "
                f"{objs / max(n_tiles, 1):.1f} objects per tile), {self.counts['boxes cut by tiling']} boxes cut by "
                f"tiling (under tile_min_area), {self.counts['empty tiles left out']} empty tiles left out")

    def write_csv(self, path: Path) -> None:
        """tiles.csv: source, split, width, height, tiles, objects, empty_tiles, boxes_cut (one row per source)."""
        buf = io.StringIO()
        keys = ("source", "split", "width", "height", "tiles", "objects", "empty_tiles", "boxes_cut")
        w = csv.DictWriter(buf, keys, lineterminator="\n")
        w.writeheader()
        w.writerows(self.sources)
        path.write_text(buf.getvalue(), encoding="utf-8")


def plan_tiles(entries: list, spec: TileSpec, seed: int = 0) -> tuple[list[tuple], Tiled]:
    """Which tiles to write, without pixels -> ([(source entry, window, tile entry)], Tiled).

    entries: the writer's checked, split entries (.item.image, .w, .h, .rows, .split, .digest). Tiled.entries
    lists the whole images and the tile entries in order (each source's tiles in slice order).
    """
    res, jobs, empties = Tiled(), [], {}
    for e in entries:
        wins = spec.windows(e.w, e.h)
        if not wins:
            res.entries.append(e)
            continue
        row = {"source": str(e.item.image), "split": e.split, "width": e.w, "height": e.h, "tiles": 0,
               "objects": 0, "empty_tiles": 0, "boxes_cut": 0}
        for win in wins:
            rows, cut = clip_rows(e.rows, win, spec.min_area)
            row["boxes_cut"] += cut
            name = tile_name(Path(e.name or e.item.image.name), win)  # from the unique output name
            item = Item(image=e.item.image.with_name(name), split=e.split, source=e.item.source)
            t = dataclasses.replace(e, item=item, w=win[2] - win[0], h=win[3] - win[1], rows=rows, problems=[],
                                    counts=Counter(), name=name, real=None)
            jobs.append((e, win, t, row))
            if not rows:
                empties.setdefault(e.split, []).append(len(jobs) - 1)
        res.sources.append(row)
        res.counts["tiled images"] += 1
        res.counts["boxes cut by tiling"] += row["boxes_cut"]
    drop = set()
    for split in sorted(empties):
        idx = empties[split]
        full = sum(1 for _, _, t, _ in jobs if t.split == split and t.rows)
        keep = len(idx) if spec.empty >= 1 else min(len(idx), int(spec.empty * full / (1 - spec.empty)))
        rng = np.random.default_rng([int(seed), {"train": 0, "val": 1, "test": 2}.get(split, 3)])  # per split
        chosen = set(rng.choice(len(idx), keep, replace=False).tolist()) if keep else set()
        drop |= {j for k, j in enumerate(idx) if k not in chosen}
    res.counts["empty tiles left out"] = len(drop)
    kept_jobs, pos = [], {id(e): k for k, e in enumerate(entries)}
    taken = {Path(e.name or e.item.image.name).stem for e in res.entries}
    for j, (e, win, t, row) in enumerate(jobs):
        if j in drop:
            continue
        if Path(t.name).stem in taken:
            res.problems.append((str(e.item.image), "name_clash", f"tile {t.name} has the name of "
                                 "another image; tile not written"))
            continue
        taken.add(Path(t.name).stem)
        row["tiles"] += 1
        row["objects"] += len(t.rows)
        row["empty_tiles"] += not t.rows
        kept_jobs.append((e, win, t))
    n_tiles = res.counts["tiles"] = sum(r["tiles"] for r in res.sources)
    if res.sources:  # the report's summary table shows the counts; these two are means
        res.counts["tiles per tiled image (mean)"] = round(n_tiles / len(res.sources), 2)
        res.counts["objects per tile (mean)"] = round(sum(r["objects"] for r in res.sources) / max(n_tiles, 1), 2)
    order = {id(t): pos[id(e)] for e, _, t in kept_jobs}
    whole = [(pos[id(e)], e) for e in res.entries]
    res.entries = [x for _, x in sorted(whole + [(order[id(t)], t) for _, _, t in kept_jobs], key=lambda p: p[0])]
    return kept_jobs, res


def _write_crops(src, jobs: list[tuple], stage: Path) -> None:
    """Decode one source image and write its tiles into stage; point each tile entry at its file."""
    if src.item.data is not None:  # an image embedded in its annotation (LabelMe imageData)
        im = cv2.imdecode(np.frombuffer(src.item.data, np.uint8), cv2.IMREAD_COLOR)
    else:
        im = imread(src.real or src.item.image)  # the real path the writer confined (symlinks followed)
    ext = Path(src.name or src.item.image.name).suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if ext in (".jpg", ".jpeg") else []
    for _, (x1, y1, x2, y2), t in jobs:
        ok, buf = cv2.imencode(ext, np.ascontiguousarray(im[y1:y2, x1:x2]), params)
        if not ok:
            raise UserError(f"tile: cannot encode a {ext} tile of {src.item.image}")
        dst = stage / t.name
        dst.write_bytes(buf.tobytes())
        t.item = dataclasses.replace(t.item, image=dst, data=None)
        t.real = dst


def tile_entries(entries: list, spec: TileSpec, tmp: Path, seed: int, parallel) -> Tiled:
    """Plan the tiles of `entries`, write their crops under tmp/.tiles, and return Tiled (entries to write).

    parallel(fn, items, desc) is the writer's thread pool (one source decoded per task).
    The tile entries' images point into the staging folder; `finish` removes it once they are linked.
    """
    jobs, res = plan_tiles(entries, spec, seed)
    stage = tmp / STAGE
    stage.mkdir(parents=True, exist_ok=True)
    by_src: dict[int, list] = {}
    for j in jobs:
        by_src.setdefault(id(j[0]), []).append(j)
    parallel(lambda js: _write_crops(js[0][0], js, stage), list(by_src.values()), "tiling")
    return res


def finish(res: Tiled, tmp: Path) -> None:
    """After the writer linked the tiles: drop the staging folder and write tiles.csv."""
    shutil.rmtree(tmp / STAGE, ignore_errors=True)
    res.write_csv(tmp / "tiles.csv")
