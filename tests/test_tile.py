"""Tiling at conversion: tile windows, box clipping worked out by hand, cut boxes counted, empty tiles capped,
every tile of a source in one split over many seeds, bad settings, the small-shapes scenes, and a tiled
large-scene source trained for one epoch."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from ultralytics.data.convert import convert_dataset, main
from ultralytics.data.convert.common import Item
from ultralytics.data.convert.tile import TileSpec, clip_rows, plan_tiles, tile_name
from ultralytics.data.convert.writer import Entry
from ultralytics.utils import UserError
from ultralytics.utils.slicing import slice_positions


def voc_scene(root: Path, scenes: dict) -> Path:
    """A VOC folder: scenes {name: (w, h, [(class, x1, y1, x2, y2)])}, PNG images (tiles keep exact pixels)."""
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    for k, (name, (w, h, boxes)) in enumerate(scenes.items()):
        im = np.random.default_rng(k).integers(0, 255, (h, w, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "JPEGImages" / name), im)
        objs = "".join(f"<object><name>{c}</name><difficult>0</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
                       f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>" for c, x1, y1, x2, y2 in boxes)
        (root / "Annotations" / f"{Path(name).stem}.xml").write_text(
            f"<annotation><filename>{name}</filename><size><width>{w}</width><height>{h}</height><depth>3</depth>"
            f"</size>{objs}</annotation>")
    return root


def test_tile_windows_are_slice_positions_checked_by_hand():
    spec = TileSpec.from_settings(640, 0.2)  # step 640 - int(0.2 * 640) = 512
    assert spec.windows(640, 640) == [] and spec.windows(300, 640) == []  # no larger than the tile: kept whole
    # 1152 = 512 + 640 is a multiple of the step plus a tile: two windows end exactly on the border
    assert spec.windows(1152, 640) == [(0, 0, 640, 640), (512, 0, 1152, 640)]
    # one pixel more: a third window moved back to end on the border; one pixel less: the second moved back
    assert spec.windows(1153, 640) == [(0, 0, 640, 640), (512, 0, 1152, 640), (513, 0, 1153, 640)]
    assert spec.windows(1151, 640) == [(0, 0, 640, 640), (511, 0, 1151, 640)]
    assert spec.windows(641, 300) == [(0, 0, 640, 300), (1, 0, 641, 300)]  # short side: one window, not upscaled
    for w, h in ((1153, 700), (2000, 1500), (3000, 641), (4096, 4096)):
        assert spec.windows(w, h) == slice_positions(h, w, 640, 640, 0.2, 0.2)
    assert tile_name(Path("a/scene.v2.jpg"), (0, 512, 640, 1152)) == "scene.v2_0_512_640_1152.jpg"


def test_clip_rows_by_hand():
    win = (512, 0, 1152, 640)
    rows = [(0, 500, 100, 540, 140),  # 28 of 40 px wide inside: 0.7 -> kept, clipped to x 512..540
            (1, 490, 200, 530, 240),  # 18 of 40: 0.45 -> cut
            (0, 492, 300, 532, 340),  # 20 of 40: exactly 0.5 -> kept
            (1, 1100, 600, 1200, 700),  # 52 x 40 of 100 x 100: 0.208 -> cut
            (0, 100, 100, 200, 200),  # not in this tile: neither kept nor counted
            (1, 600, 610, 700, 650)]  # 30 of 40 px high: 0.75 -> kept
    kept, cut = clip_rows(rows, win, 0.5)
    assert kept == [(0, 0, 100, 28, 140), (0, 0, 300, 20, 340), (1, 88, 610, 188, 640)]
    assert cut == 2
    assert clip_rows(rows, win, 0.0)[1] == 0 and len(clip_rows(rows, win, 0.0)[0]) == 5
    assert clip_rows(rows, win, 0.71) == ([(1, 88, 610, 188, 640)], 4)


# big.png 1153 x 700 at tile=640: windows x (0, 512, 513) x y (0, 60); small.png 600 x 400 stays whole
SCENES = {"big.png": (1153, 700, [("a", 100, 100, 140, 140), ("b", 620, 300, 660, 340), ("a", 1000, 650, 1040, 690),
                                  ("b", 600, 620, 700, 680)]),
          "small.png": (600, 400, [("a", 10, 10, 50, 50)])}
# by hand (class a 0, b 1), rows as (cls, x1, y1, x2, y2) in tile pixels. Box b (620..660) is half inside the
# x=0 tiles (kept); the 100 x 60 box at (600, 620) has 13%, 33%, 33% and 40% inside the first four tiles (cut 4 x)
EXPECTED = {
    "big_0_0_640_640": [(0, 100, 100, 140, 140), (1, 620, 300, 640, 340)],
    "big_512_0_1152_640": [(1, 108, 300, 148, 340)],
    "big_513_0_1153_640": [(1, 107, 300, 147, 340)],
    "big_0_60_640_700": [(0, 100, 40, 140, 80), (1, 620, 240, 640, 280)],
    "big_512_60_1152_700": [(1, 108, 240, 148, 280), (0, 488, 590, 528, 630), (1, 88, 560, 188, 620)],
    "big_513_60_1153_700": [(1, 107, 240, 147, 280), (0, 487, 590, 527, 630), (1, 87, 560, 187, 620)],
    "small": [(0, 10, 10, 50, 50)],
}


def read_labels(out: Path) -> dict[str, list[tuple]]:
    """{stem: [(cls, x1, y1, x2, y2) pixels]} from the written labels and the images' sizes."""
    got = {}
    for lb in (out / "labels").rglob("*.txt"):
        im = next((out / "images").rglob(f"{lb.stem}.png"))
        h, w = cv2.imread(str(im)).shape[:2]
        rows = []
        for line in lb.read_text().splitlines():
            c, x, y, bw, bh = (float(v) for v in line.split())
            rows.append((int(c), round((x - bw / 2) * w), round((y - bh / 2) * h), round((x + bw / 2) * w),
                         round((y + bh / 2) * h)))
        got[lb.stem] = rows
    return got


def test_convert_tiles_a_scene_as_worked_out_by_hand(tmp_path, log_messages):
    src = voc_scene(tmp_path / "voc", SCENES)
    out = tmp_path / "out"
    convert_dataset(src, out, tile=640, tile_overlap=0.2, tile_min_area=0.5, tile_empty=0.0)
    assert read_labels(out) == EXPECTED
    big = np.random.default_rng(0).integers(0, 255, (700, 1153, 3), dtype=np.uint8)
    tile = cv2.imread(str(next((out / "images").rglob("big_513_60_1153_700.png"))))
    assert np.array_equal(tile, big[60:700, 513:1153])  # the tile's pixels are the source's
    line = next(m for m in log_messages if m.startswith("dataset "))
    assert "tiles 6 from 1 images" in line and "4 boxes cut by tiling" in line
    rows = list(csv.DictReader(open(out / "tiles.csv")))
    assert [(r["source"].endswith("big.png"), r["tiles"], r["objects"], r["boxes_cut"]) for r in rows] == \
        [(True, "6", "12", "4")]
    report = (out / "report.html").read_text()
    assert "<td>boxes cut by tiling</td><td>4</td>" in report and "<td>tiles</td><td>6</td>" in report
    assert "<td>objects per tile (mean)</td><td>2.0</td>" in report  # 12 objects in 6 tiles
    assert "<td>tiles per tiled image (mean)</td><td>6.0</td>" in report
    assert not (out / ".tiles").exists()


def test_empty_tiles_capped_and_seeded():
    # 10 sources of 2048 x 640: tile 640, overlap 0 -> windows at x 0, 640, 1280, 1408; one box in the first
    ents = [Entry(Item(Path(f"s{i}.jpg")), ok=True, w=2048, h=640, digest=str(i), split="train",
                  rows=[(0, 10.0, 10.0, 50.0, 50.0)]) for i in range(10)]
    spec = TileSpec.from_settings(640, 0.0, 0.5, 0.25)
    jobs, res = plan_tiles(ents, spec, seed=0)
    full = sum(1 for _, _, t in jobs if t.rows)
    assert full == 10 and len(jobs) == 10 + 3  # at most 0.25 of the written tiles empty: 3 of 13
    assert res.counts["empty tiles left out"] == 27 and res.counts["tiles"] == 13
    names = lambda js: sorted(t.item.image.name for _, _, t in js if not t.rows)  # noqa: E731
    assert names(plan_tiles(ents, spec, seed=0)[0]) == names(jobs)  # same seed, same tiles
    assert any(names(plan_tiles(ents, spec, seed=s)[0]) != names(jobs) for s in range(1, 5))
    assert len(plan_tiles(ents, TileSpec.from_settings(640, 0.0, 0.5, 1.0))[0]) == 40
    assert len(plan_tiles(ents, TileSpec.from_settings(640, 0.0, 0.5, 0.0))[0]) == 10


def test_every_tile_of_a_source_in_one_split_over_many_seeds(tmp_path, monkeypatch):
    monkeypatch.setattr("ultralytics.data.report.write_report", lambda *a, **k: None)  # the plots take seconds
    scenes = {f"s{i}.png": (140, 100, [("a" if i % 2 else "b", 5 + 10 * i, 10, 25 + 10 * i, 30)]) for i in range(6)}
    src = voc_scene(tmp_path / "voc", scenes)
    seen_val = set()
    for seed in range(10):
        out = tmp_path / f"out{seed}"
        convert_dataset(src, out, seed=seed, tile=64, tile_overlap=0.2, tile_empty=1.0)
        split_of: dict[str, set] = {}
        for p in (out / "images").rglob("*.png"):
            m = re.fullmatch(r"(s\d)_(\d+)_(\d+)_(\d+)_(\d+)\.png", p.name)
            split_of.setdefault(m.group(1), set()).add(p.parent.name)
        counts = Counter(p.name.split("_")[0] for p in (out / "images").rglob("*.png"))
        assert counts == {f"s{i}": 6 for i in range(6)}  # 3 x 2 windows each, empty tiles kept (tile_empty=1)
        assert all(len(s) == 1 for s in split_of.values()), split_of
        seen_val |= {k for k, s in split_of.items() if s == {"val"}}
    assert len(seen_val) >= 3  # the seed moves sources between splits, whole


@pytest.mark.parametrize("kw, match", [({"tile": 16}, "tile=16"), ({"tile": 100}, "tile=100"),
                                       ({"tile": 640, "tile_overlap": 0.9}, "tile_overlap"),
                                       ({"tile": 640, "tile_overlap": -0.1}, "tile_overlap"),
                                       ({"tile": 640, "tile_min_area": 1.5}, "tile_min_area"),
                                       ({"tile": 640, "tile_empty": "x"}, "tile_empty")])
def test_bad_tile_settings(tmp_path, kw, match):
    with pytest.raises(UserError, match=match):
        convert_dataset(tmp_path / "nothing", tmp_path / "out", **kw)  # checked before the source is read


def test_cli_accepts_tile_keys(tmp_path):
    src = voc_scene(tmp_path / "voc", SCENES)
    main([f"source={src}", f"out={tmp_path / 'out'}", "tile=640", "tile_overlap=0.2", "tile_min_area=0.5",
          "tile_empty=0"])
    assert len(list((tmp_path / "out" / "images").rglob("*.png"))) == 7


def test_small_shapes_scenes(tmp_path, monkeypatch):
    from ultralytics.data import ensure_builtin_dataset
    from ultralytics.data.builtin_small import CLASSES
    from ultralytics.data.utils import CFG_DATASETS_DIR, _load_yaml

    d = _load_yaml(CFG_DATASETS_DIR / "small-shapes.yaml")
    assert d["builtin"] == "small-shapes" and list(d["names"].values()) == list(CLASSES)
    ds = ensure_builtin_dataset(tmp_path, name="ss", generator="small-shapes", n_train=1, n_val=1, seed=0)
    for split in ("train", "val"):
        im = cv2.imread(str(ds / "images" / split / f"{split}_000000.jpg"))
        h, w = im.shape[:2]
        assert 2000 <= min(h, w) and max(h, w) <= 4000
        lb = np.loadtxt(ds / "labels" / split / f"{split}_000000.txt", ndmin=2)
        side = np.sqrt(lb[:, 3] * w * lb[:, 4] * h)
        assert len(lb) >= 150 and set(lb[:, 0].astype(int)) == set(range(len(CLASSES)))
        assert side.min() >= 4 and side.max() <= 33 and 10 <= np.median(side) <= 20
    again = ensure_builtin_dataset(tmp_path, name="ss2", generator="small-shapes", n_train=1, n_val=1, seed=0)
    assert (again / "labels/val/val_000000.txt").read_text() == (ds / "labels/val/val_000000.txt").read_text()
    monkeypatch.setattr("ultralytics.data.report.write_report", lambda *a, **k: None)  # the plots take seconds
    convert_dataset(ds, tmp_path / "tiles", tile=640, names=list(CLASSES))  # its train/ val/ folders keep their split
    rows = list(csv.DictReader(open(tmp_path / "tiles" / "tiles.csv")))
    assert [r["split"] for r in rows] == ["train", "val"] and all(int(r["tiles"]) >= 16 for r in rows)


def test_tiled_large_scene_trains_one_epoch(tmp_path):
    from ultralytics import YOLO

    rng = np.random.default_rng(0)
    scenes = {}
    for i in range(4):
        boxes = []
        for _ in range(12):
            x, y, s = int(rng.integers(0, 680)), int(rng.integers(0, 680)), int(rng.integers(8, 20))
            boxes.append(("a" if s < 14 else "b", x, y, x + s, y + s))
        scenes[f"scene{i}.png"] = (700, 700, boxes)
    out = tmp_path / "out"
    data = convert_dataset(voc_scene(tmp_path / "voc", scenes), out, tile=320, tile_overlap=0.2, tile_empty=0.0)
    n_train = len(list((out / "images" / "train").iterdir()))
    assert 3 * 4 <= n_train <= 3 * 9  # 3 train sources of 3 x 3 windows, empty tiles left out
    YOLO("yolov10n.yaml").train(data=str(data), imgsz=64, epochs=1, batch=8, workers=0, device="cpu", plots=False,
                                project=str(tmp_path / "runs"), name="tiles", val=True, seed=0)
    rows = list(csv.DictReader(open(tmp_path / "runs" / "tiles" / "results.csv")))
    assert len(rows) == 1 and 0.0 <= float(rows[0]["metrics/mAP50(B)"]) <= 1.0
