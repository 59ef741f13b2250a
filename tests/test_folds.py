"""k-fold: every image in val exactly once, duplicates and tiles of one source in one fold, stratified by class,
fold YAMLs the trainer reads, train.py's folds loop (runs <name>-fold<k>, mean ± std), compare's fold groups."""

from __future__ import annotations

import csv
import math
import runpy
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from ultralytics.data.convert import convert_dataset
from ultralytics.data.convert.folds import assign_folds, check_folds, fold_of, fold_yamls
from ultralytics.data.utils import check_det_dataset, get_img_files
from ultralytics.engine.kfold import best_epoch_maps, fold_summary, mean_std
from ultralytics.utils import UserError


def test_assign_folds_grouped_and_stratified():
    # 20 images in 16 groups: keys d0..d3 hold 2 copies each; class 1 is rare (5 groups), class 0 everywhere
    keys = [f"d{i // 2}" if i < 8 else f"g{i}" for i in range(20)]
    classes = [{0, 1} if k in ("d0", "d2", "g9", "g12", "g15") else {0} for k in keys]
    for seed in range(8):
        fold = assign_folds(keys, classes, 5, seed)
        assert sorted(set(fold)) == [0, 1, 2, 3, 4]
        for k in set(keys):  # copies share a fold
            assert len({f for f, kk in zip(fold, keys) if kk == k}) == 1
        rare = Counter(f for f, cs, kk in {(f, frozenset(c), kk) for f, c, kk in zip(fold, classes, keys)} if 1 in cs)
        assert sorted(rare.values()) == [1, 1, 1, 1, 1]  # each fold's val holds one group of the rare class
        sizes = Counter(fold)
        assert max(sizes.values()) - min(sizes.values()) <= 2  # 20 images: 4 per fold, give or take a pair
    assert assign_folds(keys, classes, 5, 0) == assign_folds(keys, classes, 5, 0)
    assert any(assign_folds(keys, classes, 5, s) != assign_folds(keys, classes, 5, 0) for s in range(1, 6))


def test_bad_folds():
    assert check_folds(0) == 0 and check_folds(None) == 0 and check_folds("5") == 5
    for bad in (1, -2, 2.5, "x"):
        with pytest.raises(UserError, match="folds="):
            check_folds(bad)
    with pytest.raises(UserError, match="folds=4: only 3 distinct images"):
        assign_folds(["a", "b", "c", "a"], [set()] * 4, 4)


def make_yolo_source(root: Path, n: int, dup: dict[int, int], big: set[int]) -> Path:
    """A YOLO folder of n images (img{i}.png); dup {i: j}: image i is a byte copy of image j; big: 200 x 150
    images (tiled at tile=96 into 3 x 2 tiles), the others 80 x 60. One 20 px box each, class i % 3."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.txt").write_text("a\nb\nc\n")
    for i in range(n):
        w, h = (200, 150) if i in big else (80, 60)
        src = dup.get(i, i)
        if src != i:
            (root / "images" / f"img{i}.png").write_bytes((root / "images" / f"img{src}.png").read_bytes())
        else:
            im = np.random.default_rng(i).integers(0, 255, (h, w, 3), dtype=np.uint8)
            cv2.imwrite(str(root / "images" / f"img{i}.png"), im)
        (root / "labels" / f"img{i}.txt").write_text(f"{src % 3} 0.5 0.5 {20 / w:.6f} {20 / h:.6f}\n")
    return root


@pytest.fixture
def no_report(monkeypatch):
    monkeypatch.setattr("ultralytics.data.report.write_report", lambda *a, **k: None)  # its plots take seconds


def test_convert_folds_each_image_in_val_once_groups_intact(tmp_path, no_report):
    src = make_yolo_source(tmp_path / "src", 14, dup={5: 2, 9: 2, 11: 7}, big={0, 3, 7, 11})
    for seed in range(3):
        out = tmp_path / f"out{seed}"
        convert_dataset(src, out, seed=seed, folds=4, tile=96, tile_overlap=0.0, tile_empty=1.0,
                        split=(0.7, 0.2, 0.1))
        test = {p.name for p in (out / "images" / "test").iterdir()}
        pool = {p.name for s in ("train", "val") for p in (out / "images" / s).iterdir()}
        assert len(pool) + len(test) == 10 + 4 * 6  # 10 whole images and 4 sources of 3 x 2 tiles
        vals: list[str] = []
        fold_of_src: dict[str, set] = {}
        for k, y in enumerate(fold_yamls(out / "folds")):
            d = check_det_dataset(y)  # the trainer's own reader
            tr = {Path(p).name for p in get_img_files(d["train"])}
            va = {Path(p).name for p in get_img_files(d["val"])}
            assert tr | va == pool and not tr & va  # train: every other fold
            assert {Path(p).name for p in get_img_files(d["test"])} == test and d["fold"] == k
            vals += sorted(va)
            for name in va:
                fold_of_src.setdefault(name.split("_")[0].removesuffix(".png"), set()).add(k)
        assert sorted(vals) == sorted(pool)  # every image in val exactly once across the folds
        assert all(len(f) == 1 for f in fold_of_src.values())  # all tiles of a source in one fold
        copies = [{"img2", "img5", "img9"}, {"img7", "img11"}]  # same bytes: one group
        for group in copies:
            assert len(set().union(*(fold_of_src.get(g, set()) for g in group))) <= 1
        rows = list(csv.DictReader(open(out / "folds" / "folds.csv")))
        assert len(rows) == len(pool) and {r["fold"] for r in rows} == {"0", "1", "2", "3"}


def test_fold_paths():
    assert fold_of("/d/mine/folds/3/data.yaml") == ("/d/mine/folds", 3)
    assert fold_of("folds/0/data.yaml") == ("folds", 0)
    assert fold_of("/d/mine/data.yaml") is None and fold_of("shapes.yaml") is None and fold_of(None) is None
    assert fold_yamls("shapes.yaml") is None


def test_fold_yamls_errors(tmp_path):
    with pytest.raises(UserError, match="without fold YAMLs"):
        fold_yamls(tmp_path)
    for k in (0, 2):
        (tmp_path / "folds" / str(k)).mkdir(parents=True)
        (tmp_path / "folds" / str(k) / "data.yaml").write_text("x: 1\n")
    with pytest.raises(UserError, match=r"\[0, 2\] are not 0..1"):
        fold_yamls(tmp_path)  # the dataset folder holding folds/ works as well as folds/ itself


def test_best_epoch_and_mean_std(tmp_path):
    f = tmp_path / "results.csv"
    f.write_text("epoch,metrics/mAP50(B),metrics/mAP50-95(B)\n1,0.9,0.1\n2,0.5,0.4\n3,0.2,0.3\n")
    assert best_epoch_maps(f) == (0.5, 0.4)  # fitness 0.18, 0.41, 0.29
    assert all(math.isnan(v) for v in best_epoch_maps(tmp_path / "missing.csv"))
    assert mean_std([0.4, 0.5, 0.6]) == "0.5000 ± 0.1000" and mean_std([0.3]) == "0.3000" and mean_std([]) == "-"


class FakeYOLO:
    """Stands in for YOLO in train.py: train() records its settings and writes a one-row results.csv."""

    calls: list[dict] = []
    maps = {0: (0.6, 0.30), 1: (0.8, 0.50), 2: (0.7, 0.40)}

    created: list = []

    def __init__(self, model):
        self.model_file = model
        FakeYOLO.created.append(self)

    def train(self, **kw):
        FakeYOLO.calls.append({"model": self.model_file, "self": self, **kw})
        save_dir = Path(kw["project"]) / kw["name"]
        save_dir.mkdir(parents=True)
        m50, m = self.maps[fold_of(kw["data"])[1]]
        (save_dir / "results.csv").write_text(f"epoch,metrics/mAP50(B),metrics/mAP50-95(B)\n1,{m50},{m}\n")
        self.trainer = type("T", (), {"save_dir": save_dir})()


def test_train_py_folds_loop(tmp_path, monkeypatch, log_messages):
    folds = tmp_path / "mine" / "folds"
    for k in range(3):
        (folds / str(k)).mkdir(parents=True)
        (folds / str(k) / "data.yaml").write_text(yaml.safe_dump({"path": "../..", "train": "x", "val": "y"}))
    import ultralytics

    monkeypatch.setattr(ultralytics, "YOLO", FakeYOLO)
    FakeYOLO.calls, FakeYOLO.created = [], []
    monkeypatch.setattr(sys, "argv", ["train.py", f"data={folds}", f"project={tmp_path / 'runs'}", "name=cv",
                                      "model=yolov10n.yaml", "epochs=1"])
    runpy.run_path(str(Path(__file__).resolve().parents[1] / "train.py"), run_name="__main__")
    assert [c["name"] for c in FakeYOLO.calls] == ["cv-fold0", "cv-fold1", "cv-fold2"]
    assert [c["data"] for c in FakeYOLO.calls] == [str(folds / str(k) / "data.yaml") for k in range(3)]
    assert {c["model"] for c in FakeYOLO.calls} == {"yolov10n.yaml"} and {c["epochs"] for c in FakeYOLO.calls} == {1}
    trained = {id(c["self"]) for c in FakeYOLO.calls}  # the calls keep the objects alive: ids are unique
    assert len(trained) == 3 and id(FakeYOLO.created[0]) not in trained  # a copy of the starting model per fold
    assert len(FakeYOLO.created) == 1  # built once (copies are not rebuilt from the YAML)
    summary = log_messages[-1]
    assert "fold 1: mAP50 0.8000  mAP50-95 0.5000" in summary
    assert "mean ± std: mAP50 0.7000 ± 0.1000  mAP50-95 0.4000 ± 0.1000" in summary


def test_compare_groups_fold_runs_as_seeds(tmp_path):
    from ultralytics.compare import read_runs
    from ultralytics.compare.groups import group_runs, not_comparable
    from ultralytics.engine.results_log import COLUMNS

    def write_run(name, model, data, m):
        d = tmp_path / name
        d.mkdir()
        (d / "args.yaml").write_text(yaml.safe_dump({"model": model, "data": data, "seed": 0, "epochs": 1,
                                                     "imgsz": 64, "name": name}))
        row = dict.fromkeys(COLUMNS, 0.1) | {"epoch": 1, "metrics/mAP50(B)": 0.5, "metrics/mAP50-95(B)": m}
        (d / "results.csv").write_text(",".join(COLUMNS) + "\n" + ",".join(str(row[c]) for c in COLUMNS) + "\n")

    for k, (a, b) in enumerate([(0.30, 0.35), (0.32, 0.36), (0.28, 0.37)]):
        write_run(f"n-fold{k}", "yolov10n.yaml", f"/d/mine/folds/{k}/data.yaml", a)
        write_run(f"lska-fold{k}", "yolov10n-LSKA.yaml", f"/d/mine/folds/{k}/data.yaml", b)
    write_run("n-other", "yolov10n.yaml", "/d/other/data.yaml", 0.5)
    runs, _ = read_runs([str(tmp_path / "*")])
    groups, warnings = group_runs(runs, lambda r: r.model_name)
    by = {tuple(sorted(r.name for r in g.runs)): g for g in groups}
    n = by[("n-fold0", "n-fold1", "n-fold2")]
    assert len(groups) == 3 and not warnings  # same seed, different folds: independent samples, not repeats
    assert len(n.used) == 3 and n.spread("mAP50-95").mean == pytest.approx(0.30)
    assert n.spread("mAP50-95").std == pytest.approx(np.std([0.30, 0.32, 0.28], ddof=1))
    assert sorted(n.seeds) == ["0/fold0", "0/fold1", "0/fold2"]
    lska = by[("lska-fold0", "lska-fold1", "lska-fold2")]
    assert not not_comparable(n.settings, lska.settings)  # the same folds: comparable
    assert not_comparable(n.settings, by[("n-other",)].settings)  # other data: not comparable
