"""benchmarks/small_objects.py on a tiny configuration (1 train and 1 val scene, 1 step, imgsz 64): every figure the
docs may cite is in the JSON, mAPs are in [0, 1], the sliced runs scored the full-size val scene (its image count
and its label count, not the tiles'), and the tile run's budget equals the whole-scene runs'."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import small_objects as so  # noqa: E402
from benchmarks._results import save_results  # noqa: E402


@pytest.mark.parametrize("seen, n_tiles, expected", [(80, 156, (1, 80)), (80, 80, (1, 80)), (80, 30, (3, 26)),
                                                     (8, 36, (1, 8)), (1, 42, (1, 1))])
def test_tile_budget_matches_images_seen(seen, n_tiles, expected):
    epochs, k = so.tile_budget(seen, n_tiles)
    assert (epochs, k) == expected
    assert k <= n_tiles and seen - epochs < epochs * k <= seen


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The study at 1 step per run; its JSON as save_results writes it."""
    tmp = tmp_path_factory.mktemp("small_objects")
    res = so.study(tmp / "study", n_train=1, n_val=1, epochs=1, imgsz=64, slice=640, batch=2, seeds=[0])
    path = save_results("small_objects_tiny", res["figures"], {"data": res["data"]}, out_dir=tmp,
                        script="small_objects.py")
    return res, json.loads(path.read_text()), tmp / "study"


def test_json_has_every_figure(tiny):
    _, doc, _ = tiny
    figs = doc["figures"]
    for r in so.ROWS:
        for m in so.METRICS:
            assert 0.0 <= figs[f"{r}_{m}"] <= 1.0, (r, m, figs[f"{r}_{m}"])
            assert figs[f"{r}_{m}_std"] == "n/a"  # one seed: no spread
        assert figs[f"{r}_train_s"] > 0 and figs[f"{r}_val_s"] > 0
        assert f"| {r} " in figs["table_md"]
    for a, b in so.COMPARISONS:
        assert figs[f"p_{a}_vs_{b}"] == "n/a"
    assert figs["table_md"].count("\n") == 1 + len(so.ROWS)  # header, rule, one line per row
    assert (figs["images_seen"], figs["steps"], figs["tile_epochs"], figs["tiles_per_epoch"], figs["seeds"]) == \
        (1, 1, 1, 1, 1)


def test_sliced_runs_scored_the_full_scenes(tiny):
    """The val scene's own labels (hundreds of objects) were scored, once per object, by the sliced and the
    unsliced scene runs; the tile validation scored more tiles and more (duplicated) boxes."""
    _, doc, out = tiny
    figs = doc["figures"]
    labels = list((out / "small-shapes" / "labels" / "val").glob("*.txt"))
    assert len(labels) == 1
    lines = [ln for ln in labels[0].read_text().splitlines() if ln.strip()]
    assert figs["val_boxes"] == len(lines)
    n_boxes = figs["val_boxes"]
    assert n_boxes >= 100  # a small-shapes scene holds 200-600 tries of which most are labelled
    for r in ("whole", "whole_sliced", "p2", "tiles_sliced"):
        assert (figs[f"{r}_images"], figs[f"{r}_boxes"]) == (1, n_boxes), r
    assert figs["tiles_on_tiles_images"] > 1 and figs["tiles_on_tiles_boxes"] > n_boxes
