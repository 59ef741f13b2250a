"""report.html of a converted dataset: per-class counts and size shares equal what the test computes; the check of
an existing dataset; train's one-line summary; and a converted VOC folder that trains one epoch and validates."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.browser import dump_dom, require_browser
from tests.test_convert import make_voc

from ultralytics.data.build import dataset_summary
from ultralytics.data.convert import convert_dataset, main

REPO = Path(__file__).resolve().parents[1]
# 640x480 images (gain 1 at imgsz 640): boxes of 20x20 (small), 50x50 (medium: 2500 >= 32^2) and 100x100 (large)
SCENE = {f"i{k}.jpg": (640, 480, [("ant", 10, 10, 30, 30), ("bee", 100, 100, 150, 150)] if k % 2 else
                       [("ant", 200, 200, 300, 300), ("ant", 10, 10, 30, 30), ("bee", 400, 100, 420, 120)])
         for k in range(10)}


class Tables(HTMLParser):
    """{table id: rows of cell texts} of a page (or of Chromium's dumped DOM)."""

    def __init__(self, text: str):
        super().__init__()
        self.tables, self._id, self._row = {}, None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._id = dict(attrs).get("id")
            self.tables[self._id] = []
        elif tag == "tr" and self._id:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._row.append("")

    def handle_endtag(self, tag):
        if tag == "tr" and self._row is not None:
            self.tables[self._id].append(self._row)
            self._row = None
        elif tag == "table":
            self._id = None

    def handle_data(self, data):
        if self._row:
            self._row[-1] += data


def expected_per_class(out: Path) -> list[list[str]]:
    """Rows id, class, images train, images val, instances train, instances val counted from SCENE + the split."""
    side = {p.name: p.parent.name for p in (out / "images").rglob("*.jpg")}
    rows = []
    for cid, name in enumerate(("ant", "bee")):
        imgs = {s: sum(any(b[0] == name for b in SCENE[f][2]) for f in side if side[f] == s) for s in ("train", "val")}
        inst = {s: sum(sum(b[0] == name for b in SCENE[f][2]) for f in side if side[f] == s) for s in ("train", "val")}
        rows.append([str(cid), name, str(imgs["train"]), str(imgs["val"]), str(inst["train"]), str(inst["val"])])
    return rows


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    return convert_dataset(make_voc(tmp / "voc", SCENE), tmp / "out").parent


def test_report_counts_and_size_shares(converted):
    t = Tables((converted / "report.html").read_text())
    assert t.tables["per-class"][1:] == expected_per_class(converted)
    # 25 boxes: 15 of 20x20 (5 + 5 + 5), 5 of 50x50, 5 of 100x100
    assert t.tables["sizes"][1:] == [["small", "60.0%"], ["medium", "20.0%"], ["large", "20.0%"]]
    assert ["instances", "25"] in t.tables["summary"] and ["images val", "2"] in t.tables["summary"]
    assert (converted / "report.html").read_text().count("data:image/png;base64,") == 2


def test_check_existing_dataset_writes_the_same_counts(converted, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(converted, copy)
    (copy / "report.html").unlink()
    (copy / "problems.csv").unlink()
    (copy / "labels" / "train" / "i0.txt").write_text("0 0.5 0.5 0.1 0.1\n9 0.5 0.5 0.1 0.1\n")  # 9: past nc
    assert main([f"data={copy / 'data.yaml'}"]) == 0
    t = Tables((copy / "report.html").read_text())
    exp = expected_per_class(converted)
    side = "train" if (copy / "images" / "train" / "i0.jpg").exists() else "val"
    col = 4 if side == "train" else 5  # i0 had ant x2, bee x1 -> now ant x1 (row 9 dropped)
    exp[0][col], exp[1][col] = str(int(exp[0][col]) - 1), str(int(exp[1][col]) - 1)
    exp[1][col - 2] = str(int(exp[1][col - 2]) - 1)
    assert t.tables["per-class"][1:] == exp
    assert t.tables["problems"][1:] == [[str(copy / "labels" / side / "i0.txt"), "label_class_id", "row 2"]]


def test_train_summary_line_points_to_the_check(tmp_path):
    (tmp_path / "problems.csv").write_text("file,problem,detail\na.xml,box_clipped,x\nb.jpg,missing_image,y\n")
    stats = {"images_used": 7, "instances": 12, "backgrounds": 1, "images_skipped": {"empty": 1},
             "rows_dropped": {"class_id": 2}}
    line = dataset_summary(stats, {"nc": 3, "yaml_file": str(tmp_path / "data.yaml")})
    assert line == (f"dataset: 7 images, 12 instances, 3 classes, 1 background images, 5 problems found; "
                    f"see `python dataset.py data={tmp_path / 'data.yaml'}` for the report")
    assert dataset_summary({**stats, "images_skipped": {}, "rows_dropped": {}}, {"nc": 3}).endswith("0 problems found")


def test_chromium_renders_the_counts(converted):
    require_browser()  # skips without Chromium, fails under CI
    t = Tables(dump_dom(converted / "report.html"))
    assert t.tables["per-class"][1:] == expected_per_class(converted)
    assert t.tables["sizes"][1:] == [["small", "60.0%"], ["medium", "20.0%"], ["large", "20.0%"]]


def test_converted_dataset_trains_one_epoch_and_validates(converted, tmp_path):
    cmd = [sys.executable, "train.py", f"data={converted / 'data.yaml'}", "model=yolov10n.yaml", "epochs=1",
           "imgsz=64", "batch=4", "workers=0", "device=cpu", "plots=False", f"project={tmp_path}", "name=e2e"]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    train = [p.name for p in (converted / "images" / "train").iterdir()]
    n_inst = sum(len(SCENE[f][2]) for f in train)  # instances of the train split, from SCENE
    assert (f"dataset: {len(train)} images, {n_inst} instances, 2 classes, 0 background images, 0 problems found"
            in r.stdout + r.stderr)
    with open(tmp_path / "e2e" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and 0 <= float(rows[0]["metrics/mAP50(B)"]) <= 1
    assert (tmp_path / "e2e" / "weights" / "best.pt").is_file()
