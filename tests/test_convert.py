"""Your own data in: VOC, COCO, LabelMe and YOLO sources -> YOLO labels checked against hand-computed values,
the seeded split, every bad input as a problem row, and an interrupted run leaving nothing behind."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from ultralytics.data.convert import convert_dataset, detect_format, writer
from ultralytics.utils import UserError

# image name -> (width, height, [(class name, x1, y1, x2, y2) pixels])
SCENE = {
    "a.jpg": (200, 100, [("dog", 20, 10, 70, 60), ("cat", 100, 0, 200, 100)]),
    "b.jpg": (160, 120, [("cat", 0, 30, 40, 90)]),
    "c.png": (100, 100, []),
}
# By hand: class order sorted -> cat 0, dog 1; xc = (x1 + x2) / 2 / w, yc likewise, w = (x2 - x1) / w, h = ...
EXPECTED = {
    "a.txt": "1 0.225000 0.350000 0.250000 0.500000\n0 0.750000 0.500000 0.500000 1.000000\n",  # 45/200, 35/100
    "b.txt": "0 0.125000 0.500000 0.250000 0.500000\n",  # 20/160, 60/120, 40/160, 60/120
    "c.txt": "",
}


def write_image(path: Path, w: int, h: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    cv2.imwrite(str(path), im)


def voc_xml(name: str, w: int, h: int, boxes, difficult=()) -> str:
    objs = "".join(f"<object><name>{c}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>"
                   f"{int(k in difficult)}</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>"
                   f"<ymax>{y2}</ymax></bndbox></object>" for k, (c, x1, y1, x2, y2) in enumerate(boxes))
    return (f"<annotation><folder>JPEGImages</folder><filename>{name}</filename><path>/home/u/{name}</path>"
            f"<source><database>Unknown</database></source><size><width>{w}</width><height>{h}</height>"
            f"<depth>3</depth></size><segmented>0</segmented>{objs}</annotation>")


def make_voc(root: Path, scene=SCENE) -> Path:
    for k, (name, (w, h, boxes)) in enumerate(scene.items()):
        write_image(root / "JPEGImages" / name, w, h, k)
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{Path(name).stem}.xml").write_text(voc_xml(name, w, h, boxes))
    return root


def make_coco(root: Path, scene=SCENE) -> Path:
    cats = {"dog": 1, "cat": 2}  # ids in another order than the names: COCO keeps id order
    d = {"images": [], "annotations": [], "categories": [{"id": i, "name": n, "supercategory": ""} for n, i in cats.items()]}
    for k, (name, (w, h, boxes)) in enumerate(scene.items()):
        write_image(root / "images" / name, w, h, k)
        d["images"].append({"id": k + 1, "file_name": name, "width": w, "height": h})
        for c, x1, y1, x2, y2 in boxes:
            d["annotations"].append({"id": len(d["annotations"]) + 1, "image_id": k + 1, "category_id": cats[c],
                                     "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
    (root / "result.json").write_text(json.dumps(d))
    return root / "result.json"


def make_labelme(root: Path, scene=SCENE) -> Path:
    for k, (name, (w, h, boxes)) in enumerate(scene.items()):
        write_image(root / name, w, h, k)
        shapes = [{"label": c, "points": [[x1, y1], [x2, y2]], "group_id": None, "shape_type": "rectangle",
                   "flags": {}} for c, x1, y1, x2, y2 in boxes]
        (root / f"{Path(name).stem}.json").write_text(json.dumps(
            {"version": "5.2.1", "flags": {}, "shapes": shapes, "imagePath": name, "imageData": None,
             "imageHeight": h, "imageWidth": w}))
    return root


def labels(out: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((out / "labels").rglob("*.txt"))}


def problems(out: Path) -> list[dict]:
    with open(out / "problems.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_voc_labels_by_hand_and_data_yaml(tmp_path):
    src = make_voc(tmp_path / "voc")
    y = convert_dataset(src, tmp_path / "out")
    assert labels(tmp_path / "out") == EXPECTED
    d = yaml.safe_load(y.read_text())
    assert d["names"] == {0: "cat", 1: "dog"} and d["train"] == "images/train" and d["val"] == "images/val"
    imgs = sorted(p.name for p in (tmp_path / "out" / "images").rglob("*.*"))
    assert imgs == ["a.jpg", "b.jpg", "c.png"]
    a = next((tmp_path / "out" / "images").rglob("a.jpg"))
    assert a.read_bytes() == (src / "JPEGImages" / "a.jpg").read_bytes()
    assert a.stat().st_ino == (src / "JPEGImages" / "a.jpg").stat().st_ino  # hard-linked on one file system
    assert problems(tmp_path / "out") == []


def test_same_boxes_in_voc_coco_labelme_give_identical_labels(tmp_path):
    voc = convert_dataset(make_voc(tmp_path / "voc"), tmp_path / "o1").parent
    coco = convert_dataset(make_coco(tmp_path / "coco"), tmp_path / "o2", names=["cat", "dog"]).parent
    lm = convert_dataset(make_labelme(tmp_path / "lm"), tmp_path / "o3").parent
    assert labels(voc) == labels(coco) == labels(lm) == EXPECTED
    assert [detect_format(p) for p in (tmp_path / "voc", tmp_path / "coco", tmp_path / "lm")] == ["voc", "coco",
                                                                                                   "labelme"]


def test_coco_id_order_crowd_background_and_per_file_split(tmp_path):
    make_coco(tmp_path / "c")
    d = json.loads((tmp_path / "c" / "result.json").read_text())
    d["annotations"].append({"id": 99, "image_id": 2, "category_id": 1, "bbox": [0, 0, 5, 5], "iscrowd": 1})
    val = {"images": [{"id": 1, "file_name": "c.png", "width": 100, "height": 100}],  # ids restart per file
           "annotations": [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [10, 20, 30, 40], "iscrowd": 0}],
           "categories": d["categories"]}
    d["images"] = d["images"][:2]
    d["annotations"] = [a for a in d["annotations"] if a["image_id"] in (1, 2)]
    (tmp_path / "c" / "instances_train.json").write_text(json.dumps(d))
    (tmp_path / "c" / "instances_val.json").write_text(json.dumps(val))
    (tmp_path / "c" / "result.json").unlink()
    out = convert_dataset(tmp_path / "c", tmp_path / "out").parent
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == {0: "dog", 1: "cat"}  # id 1, id 2
    # dog=0 cat=1 now; c.png in val from its file: xc (10+40)/2/100, yc (20+60)/2/100, 0.3, 0.4
    assert (out / "labels" / "val" / "c.txt").read_text() == "1 0.250000 0.400000 0.300000 0.400000\n"
    assert (out / "labels" / "train" / "a.txt").read_text() == ("0 0.225000 0.350000 0.250000 0.500000\n"
                                                                "1 0.750000 0.500000 0.500000 1.000000\n")
    assert sorted(p.name for p in (out / "images" / "train").iterdir()) == ["a.jpg", "b.jpg"]
    assert "<td>crowd</td><td>1</td>" in (out / "report.html").read_text()


def test_yolo_source_keeps_labels_and_makes_yaml(tmp_path):
    root = tmp_path / "y"
    write_image(root / "images" / "p.jpg", 200, 100, 0)
    write_image(root / "images" / "q.jpg", 200, 100, 1)
    (root / "labels").mkdir()
    (root / "labels" / "p.txt").write_text("1 0.5 0.5 0.25 0.5\n7 0.5 0.5 0.1 0.1\n")  # class 7 past nc: dropped
    (root / "classes.txt").write_text("red\nblue\n")
    out = convert_dataset(root, tmp_path / "out", split=(0.5, 0.5)).parent
    lab = labels(out)
    assert lab["p.txt"] == "1 0.500000 0.500000 0.250000 0.500000\n" and lab["q.txt"] == ""
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == {0: "red", 1: "blue"}
    assert [(r["problem"], r["detail"]) for r in problems(out)] == [("label_class_id", "row 2")]


def _scene(n: int) -> dict:
    """n images of one box each: images 0 and 1 hold the class 'rare', the others 'x' or 'y'."""
    return {f"im{i:02d}.jpg": (64, 48, [("rare" if i < 2 else ("x" if i % 2 else "y"), 4, 4, 30, 30)]) for i in range(n)}


def test_split_seeded_stratified_and_duplicates_together(tmp_path):
    src = make_voc(tmp_path / "voc", _scene(20))
    jp = src / "JPEGImages"
    for k in range(3):  # im10..im12 become copies of im03: identical content
        (jp / f"im1{k}.jpg").write_bytes((jp / "im03.jpg").read_bytes())

    def sides(out):
        return {p.name: p.parent.name for p in (out / "images").rglob("*.jpg")}

    s1 = sides(convert_dataset(src, tmp_path / "o1", seed=3).parent)
    s2 = sides(convert_dataset(src, tmp_path / "o2", seed=3).parent)
    assert s1 == s2
    assert labels(tmp_path / "o1") == labels(tmp_path / "o2")
    assert len({s1[n] for n in ("im03.jpg", "im10.jpg", "im11.jpg", "im12.jpg")}) == 1
    assert "val" in {s1["im00.jpg"], s1["im01.jpg"]}  # the class with 2 images is in val
    assert sum(v == "val" for v in s1.values()) == 4  # round(20 * 0.2)
    dup = [r for r in problems(tmp_path / "o1") if r["problem"] == "duplicate_image"]
    assert len(dup) == 3


def test_voc_imagesets_split_is_kept(tmp_path):
    src = make_voc(tmp_path / "voc")
    (src / "ImageSets" / "Main").mkdir(parents=True)
    (src / "ImageSets" / "Main" / "train.txt").write_text("b\nc\n")
    (src / "ImageSets" / "Main" / "val.txt").write_text("a\n")
    out = convert_dataset(src, tmp_path / "out", seed=1).parent
    assert sorted(p.name for p in (out / "labels" / "val").iterdir()) == ["a.txt"]


def test_bad_inputs_become_problem_rows_and_strict_fails(tmp_path):
    scene = {"ok.jpg": (100, 80, [("cat", 10, 10, 50, 50),
                                  ("cat", 90, 70, 130, 120),  # reaches past the border: clipped to 90..100, 70..80
                                  ("cat", 200, 10, 240, 50),  # wholly outside
                                  ("dog", 60, 40, 20, 10),  # negative size
                                  ("cat", 10, 10, 10.5, 50),  # 0.5 px wide
                                  ("bird", 5, 5, 20, 20)]),  # not in names=
             "bg.jpg": (60, 60, []),  # a second usable image: one image alone cannot fill train and val
             "gone.jpg": (50, 50, [("cat", 1, 1, 20, 20)]),
             "broken.jpg": (50, 50, [("cat", 1, 1, 20, 20)])}
    src = make_voc(tmp_path / "voc", scene)
    (src / "JPEGImages" / "gone.jpg").unlink()
    jpg = (src / "JPEGImages" / "broken.jpg").read_bytes()
    (src / "JPEGImages" / "broken.jpg").write_bytes(jpg[: len(jpg) // 2])  # truncated download
    (src / "Annotations" / "bad.xml").write_text("<annotation><object><name>cat</name>")
    out = convert_dataset(src, tmp_path / "out", names=["cat", "dog"]).parent
    got = sorted((Path(r["file"]).name, r["problem"]) for r in problems(out))
    assert got == [("bad.xml", "malformed_xml"), ("broken.jpg", "truncated_image"), ("gone.jpg", "missing_image"),
                   ("ok.xml", "box_clipped"), ("ok.xml", "degenerate_box"), ("ok.xml", "negative_size"),
                   ("ok.xml", "outside_image"), ("ok.xml", "unknown_class")]
    # kept: (10,10,50,50) -> 0.3 0.375 0.4 0.5; clipped (90,70,100,80) -> 0.95 0.9375 0.1 0.125
    assert labels(out) == {"bg.txt": "",
                           "ok.txt": "0 0.300000 0.375000 0.400000 0.500000\n0 0.950000 0.937500 0.100000 0.125000\n"}
    with pytest.raises(UserError, match="strict=True: 8 problems"):
        convert_dataset(src, tmp_path / "out2", names=["cat", "dog"], strict=True)


def test_xml_entity_payload_is_refused_and_not_expanded(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    src = make_voc(tmp_path / "voc")
    (src / "Annotations" / "evil.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file://{secret}"><!ENTITY l "lol">'
        '<!ENTITY l2 "&l;&l;&l;&l;&l;&l;&l;&l;">]><annotation><filename>a.jpg</filename>'
        "<object><name>&x;&l2;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>"
        "</object></annotation>")
    out = convert_dataset(src, tmp_path / "out").parent
    rows = [r for r in problems(out) if r["file"].endswith("evil.xml")]
    assert [r["problem"] for r in rows] == ["unsafe_xml"]
    text = "".join(p.read_text() for p in out.rglob("*") if p.suffix in (".txt", ".yaml", ".csv", ".html"))
    assert "TOPSECRET" not in text and "lollol" not in text
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == {0: "cat", 1: "dog"}


def test_malformed_json_is_a_problem_row(tmp_path):
    src = make_labelme(tmp_path / "lm")
    (src / "bad.json").write_text('{"shapes": [')
    out = convert_dataset(src, tmp_path / "out").parent
    assert [(Path(r["file"]).name, r["problem"]) for r in problems(out)] == [("bad.json", "malformed_json")]


def test_interrupted_conversion_leaves_no_output(tmp_path, monkeypatch):
    src = make_voc(tmp_path / "voc")
    calls = []

    def boom(a, b):
        calls.append(a)
        if len(calls) == 2:
            raise KeyboardInterrupt
        writer.shutil.copyfile(a, b)

    monkeypatch.setattr(writer, "place_image", boom)
    with pytest.raises(KeyboardInterrupt):
        convert_dataset(src, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["voc"]  # neither out nor its temporary folder


def test_existing_out_and_ambiguous_source_are_errors(tmp_path):
    src = make_voc(tmp_path / "voc")
    convert_dataset(src, tmp_path / "out")
    with pytest.raises(UserError, match="exists"):
        convert_dataset(src, tmp_path / "out")
    convert_dataset(src, tmp_path / "out", exist_ok=True)
    make_labelme(src / "JPEGImages")
    with pytest.raises(UserError, match="cannot tell the format.*3 voc, 3 labelme"):
        detect_format(src)


def test_stratified_split_puts_every_class_with_two_images_in_val():
    from ultralytics.data.convert.split import assign_splits

    # 20 images: 'rare' in images 0 and 1 only; 'solo' in image 2 only (1 image: stays where the shuffle puts it)
    classes = [{"rare"} if i < 2 else {"solo"} if i == 2 else {"common"} for i in range(20)]
    for seed in range(20):  # a plain shuffle leaves both 'rare' images in train for 63% of seeds
        s = assign_splits([str(i) for i in range(20)], classes, [None] * 20, (0.8, 0.2), seed)
        assert s.count("val") == 4 and "val" in s[:2] and "train" in s[:2]
    s = assign_splits(["h0", "h0"] + [str(i) for i in range(2, 20)], classes, [None] * 20, (0.8, 0.2), 0)
    assert s[0] == s[1]  # 'rare' is in one content group only: not forced into val, never split
