"""Tests of the second built-in dataset, 'icons' (ultralytics/data/builtin_icons.py), and its shipped YAML."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from ultralytics.data import builtin, builtin_icons, check_det_dataset, ensure_builtin_dataset
from ultralytics.data import utils as data_utils
from ultralytics.utils import UserError


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_icons_dataset_is_deterministic_and_well_formed(tmp_path):
    a = ensure_builtin_dataset(tmp_path / "a", name="icons", generator="icons", n_train=6, n_val=3, seed=3)
    b = ensure_builtin_dataset(tmp_path / "b", name="icons", generator="icons", n_train=6, n_val=3, seed=3)
    assert _digest(a) == _digest(b)  # same bytes on every run
    c = ensure_builtin_dataset(tmp_path / "c", name="icons", generator="icons", n_train=6, n_val=3, seed=4)
    assert _digest(c) != _digest(a)
    manifest = json.loads((a / "manifest.json").read_text())
    assert manifest["generator"] == "icons" and manifest["classes"] == list(builtin_icons.CLASSES)
    total = 0
    for lb in (a / "labels" / "train").iterdir():
        rows = np.loadtxt(lb, ndmin=2)
        assert set(rows[:, 0].astype(int)) <= set(range(5))
        assert (rows[:, 1:] > 0).all() and (rows[:, 1:] <= 1).all()
        total += len(rows)
    assert manifest["instances"]["train"] == total and total >= 6 * 3


def test_icons_differs_from_shapes_in_size_and_density():
    """Over 30 images each: icons has more objects per image and much smaller ones (the point of a 2nd dataset)."""
    def stats(render, stream):
        sides, counts = [], []
        for i in range(30):
            img, lb = render(np.random.default_rng([0, stream, i]))
            h, w = img.shape[:2]
            sides += list(np.sqrt(lb[:, 3] * w * lb[:, 4] * h))
            counts.append(len(lb))
        return np.array(sides), np.mean(counts)

    s_sides, s_count = stats(builtin.render_shapes_image, 0)
    i_sides, i_count = stats(builtin_icons.render_icons_image, 100)
    assert i_count > 1.5 * s_count
    assert np.median(i_sides) < 0.5 * np.median(s_sides)
    assert (i_sides < 16).mean() > 0.3 > (s_sides < 16).mean()  # many objects below the 16 px middle stride


def test_icons_yaml_resolves_and_unknown_builtin_names_the_choices(tmp_path, monkeypatch):
    monkeypatch.setattr(data_utils, "DATASETS_DIR", tmp_path)
    yaml_path = data_utils.CFG_DATASETS_DIR / "icons.yaml"
    cfg = yaml.safe_load(yaml_path.read_text())
    assert cfg["builtin"] == "icons" and list(cfg["names"].values()) == list(builtin_icons.CLASSES)
    d = check_det_dataset({**cfg, "builtin_args": {"n_train": 2, "n_val": 1}, "yaml_file": str(yaml_path)})
    assert d["nc"] == 5 and len(list(Path(d["train"]).iterdir())) == 2
    with pytest.raises(UserError, match=r"'builtin' is 'nope'.*\['icons', 'shapes', 'small-shapes'\]"):
        check_det_dataset({**cfg, "builtin": "nope", "yaml_file": str(yaml_path)})
