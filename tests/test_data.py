"""Tests of the built-in dataset, data YAML resolution and image file discovery."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from ultralytics.data import builtin, check_det_dataset, ensure_builtin_dataset
from ultralytics.data import utils as data_utils
from ultralytics.data.utils import get_img_files, img2label_paths
from ultralytics.utils import UserError


def _digest(root: Path) -> dict[str, str]:
    """sha256 of every file under root, by relative path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_shapes(tmp_path_factory) -> Path:
    """A small built-in dataset (12 train, 5 val images)."""
    return ensure_builtin_dataset(tmp_path_factory.mktemp("a"), n_train=12, n_val=5, seed=7)


def test_builtin_counts_and_format(small_shapes):
    root = small_shapes
    for split, n in (("train", 12), ("val", 5)):
        ims = sorted((root / "images" / split).iterdir())
        lbs = sorted((root / "labels" / split).iterdir())
        assert len(ims) == n and len(lbs) == n
        assert [p.stem for p in ims] == [p.stem for p in lbs]
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["n_train"] == 12 and manifest["n_val"] == 5 and manifest["seed"] == 7
    assert manifest["classes"] == ["circle", "square", "triangle", "star", "cross", "ring"]
    total = 0
    for lb in (root / "labels" / "train").iterdir():
        a = np.loadtxt(lb, ndmin=2)
        assert 1 <= len(a) <= 8
        assert set(a[:, 0].astype(int)) <= set(range(6))
        assert (a[:, 1:] > 0).all() and (a[:, 1:] <= 1).all()
        x1, x2 = a[:, 1] - a[:, 3] / 2, a[:, 1] + a[:, 3] / 2
        assert (x1 >= -1e-6).all() and (x2 <= 1 + 1e-6).all()
        total += len(a)
    assert manifest["instances"]["train"] == total
    import cv2

    sizes = {cv2.imread(str(p)).shape for p in (root / "images" / "train").iterdir()}
    assert len(sizes) > 1  # varied image sizes
    assert all(256 <= h <= 416 and 256 <= w <= 416 and c == 3 for h, w, c in sizes)


def test_builtin_deterministic_and_idempotent(small_shapes, tmp_path):
    again = ensure_builtin_dataset(tmp_path, n_train=12, n_val=5, seed=7)
    assert _digest(again) == _digest(small_shapes)  # same bytes, images and labels
    mtime = (again / "manifest.json").stat().st_mtime_ns
    assert ensure_builtin_dataset(tmp_path, n_train=12, n_val=5, seed=7) == again
    assert (again / "manifest.json").stat().st_mtime_ns == mtime  # complete: not regenerated
    other = ensure_builtin_dataset(tmp_path / "b", n_train=12, n_val=5, seed=8)
    assert _digest(other) != _digest(small_shapes)


def test_builtin_incomplete_is_rebuilt(tmp_path):
    root = ensure_builtin_dataset(tmp_path, n_train=3, n_val=2)
    (root / "images" / "train" / "000001.jpg").unlink()  # damaged dataset
    ensure_builtin_dataset(tmp_path, n_train=3, n_val=2)
    assert len(list((root / "images" / "train").iterdir())) == 3
    ensure_builtin_dataset(tmp_path, n_train=4, n_val=2)  # other counts: replaced
    assert len(list((root / "images" / "train").iterdir())) == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_render_is_a_function_of_the_rng():
    a_img, a_lb = builtin.render_shapes_image(np.random.default_rng([0, 0, 5]))
    b_img, b_lb = builtin.render_shapes_image(np.random.default_rng([0, 0, 5]))
    assert np.array_equal(a_img, b_img) and np.array_equal(a_lb, b_lb)
    assert a_img.dtype == np.uint8 and a_img.ndim == 3


def test_check_det_dataset_shipped_yaml_by_name(tmp_path, monkeypatch):
    monkeypatch.setattr(data_utils, "DATASETS_DIR", tmp_path)
    yaml_path = data_utils.CFG_DATASETS_DIR / "shapes.yaml"
    cfg = yaml.safe_load(yaml_path.read_text())
    cfg["builtin_args"] = {"n_train": 4, "n_val": 2}
    monkeypatch.chdir(tmp_path)
    d = check_det_dataset({**cfg, "yaml_file": str(yaml_path)})
    assert d["path"] == str(tmp_path / "shapes")
    assert d["train"] == str(tmp_path / "shapes" / "images" / "train")
    assert d["val"] == str(tmp_path / "shapes" / "images" / "val")
    assert d["names"] == {0: "circle", 1: "square", 2: "triangle", 3: "star", 4: "cross", 5: "ring"}
    assert d["nc"] == 6 and d["yaml_file"] == str(yaml_path)
    assert len(os.listdir(d["train"])) == 4
    # by bare name from another working directory: the shipped YAML is found
    assert data_utils._find_yaml("shapes.yaml") == yaml_path
    assert data_utils._find_yaml("shapes") == yaml_path


def _write_yaml(path: Path, d: dict) -> Path:
    path.write_text(yaml.safe_dump(d))
    return path


def test_check_det_dataset_relative_path_and_names(tmp_path):
    (tmp_path / "ds" / "images" / "train").mkdir(parents=True)
    (tmp_path / "ds" / "images" / "val").mkdir(parents=True)
    y = _write_yaml(tmp_path / "my.yaml", {"path": "ds", "train": "images/train", "val": ["images/val"],
                                           "names": ["a", "b"]})
    d = check_det_dataset(str(y))
    assert d["path"] == str(tmp_path / "ds")
    assert d["val"] == [str(tmp_path / "ds" / "images" / "val")]
    assert d["names"] == {0: "a", 1: "b"} and d["nc"] == 2
    y2 = _write_yaml(tmp_path / "nc.yaml", {"path": str(tmp_path / "ds"), "train": "images/train",
                                            "val": "images/val", "nc": 3})
    assert check_det_dataset(y2)["names"] == {0: "class0", 1: "class1", 2: "class2"}
    y3 = _write_yaml(tmp_path / "str.yaml", {"path": "ds", "train": "images/train", "val": "images/val",
                                             "names": {"0": "x", "1": "y"}})
    assert check_det_dataset(y3)["names"] == {0: "x", 1: "y"}


def test_check_det_dataset_errors_name_file_key_path(tmp_path):
    with pytest.raises(UserError, match="nope.yaml"):
        check_det_dataset(str(tmp_path / "nope.yaml"))
    (tmp_path / "ds" / "images" / "train").mkdir(parents=True)
    y = _write_yaml(tmp_path / "a.yaml", {"path": "ds", "train": "images/train", "val": "images/val",
                                          "names": ["a"]})
    with pytest.raises(UserError) as e:
        check_det_dataset(y)
    msg = str(e.value)
    assert "a.yaml" in msg and "'val'" in msg and str(tmp_path / "ds" / "images" / "val") in msg
    y = _write_yaml(tmp_path / "b.yaml", {"path": "ds", "train": "images/train", "val": "images/train"})
    with pytest.raises(UserError, match=r"b\.yaml.*'names'"):
        check_det_dataset(y)
    y = _write_yaml(tmp_path / "c.yaml", {"path": "ds", "val": "images/train", "names": ["a"]})
    with pytest.raises(UserError, match=r"c\.yaml.*'train'"):
        check_det_dataset(y)
    y = _write_yaml(tmp_path / "d.yaml", {"path": "ds", "train": "images/train", "val": "images/train",
                                          "names": ["a", "b"], "nc": 3})
    with pytest.raises(UserError, match=r"'nc' is 3 but 'names' has 2"):
        check_det_dataset(y)
    (tmp_path / "e.yaml").write_text("path: [unclosed")
    with pytest.raises(UserError, match=r"e\.yaml is not valid YAML"):
        check_det_dataset(tmp_path / "e.yaml")


def test_img2label_paths():
    sep = os.sep
    got = img2label_paths([f"{sep}d{sep}images{sep}train{sep}a.b.jpg", f"{sep}x{sep}images{sep}images{sep}c.PNG",
                           f"{sep}flat{sep}img.jpg"])
    assert got == [f"{sep}d{sep}labels{sep}train{sep}a.b.txt", f"{sep}x{sep}images{sep}labels{sep}c.txt",
                   f"{sep}flat{sep}img.txt"]


def test_get_img_files_dir_glob_and_list(tmp_path):
    d = tmp_path / "images"
    (d / "sub").mkdir(parents=True)
    for name in ("a.jpg", "b.PNG", "sub/c.jpeg", "notes.txt", "x.npy"):
        (d / name).write_bytes(b"x")
    assert get_img_files(d) == sorted(str(d / n) for n in ("a.jpg", "b.PNG", "sub/c.jpeg"))
    assert get_img_files(str(d / "*.jpg")) == [str(d / "a.jpg")]
    lst = tmp_path / "list.txt"
    lst.write_text(f"./images/a.jpg\nimages/sub/c.jpeg\n{d / 'b.PNG'}\n\n# comment\n")
    assert get_img_files(lst) == sorted(str(d / n) for n in ("a.jpg", "b.PNG", "sub/c.jpeg"))
    with pytest.raises(UserError, match="missing_dir"):
        get_img_files(tmp_path / "missing_dir")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images found"):
        get_img_files(tmp_path / "empty")
