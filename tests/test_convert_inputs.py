"""Awkward sources, built as the labelling tools write them: NaN and inf in each format, a COCO category named
"shapes", Roboflow export folders with README files, same-name images, git-annex/DVC symlinks, LabelMe
imageData, and sources of 1 and 2 images."""

from __future__ import annotations

import base64
import csv
import json
import os
from pathlib import Path

import pytest
import yaml

from tests.test_convert import (EXPECTED, SCENE, labels, make_coco, make_labelme, make_voc, problems, voc_xml,
                                write_image)
from ultralytics.data.convert import convert_dataset, detect_format
from ultralytics.data.utils import check_det_dataset
from ultralytics.utils import UserError


def rows(out: Path) -> list[tuple[str, str, str]]:
    return sorted((Path(r["file"]).name, r["problem"], r["detail"]) for r in problems(out))


def all_label_text(out: Path) -> str:
    return "".join(labels(out).values())


def test_nan_inf_and_text_numbers_in_voc(tmp_path):
    src = make_voc(tmp_path / "voc")
    xml = voc_xml("b.jpg", 160, 120, [("cat", "nan", 30, 40, 90), ("cat", 0, 30, 40, "inf"), ("cat", 0, 30, 40, 90)])
    (src / "Annotations" / "b.xml").write_text(xml.replace("<width>160</width>", "<width>1e999</width>"))
    out = convert_dataset(src, tmp_path / "out").parent
    assert rows(out) == [("b.xml", "bad_number", "<size>: <width>='1e999' is not a finite number; the image's own "
                                                 "size is used"),
                         ("b.xml", "bad_number", "object 1 'cat': <xmin>='nan' is not a finite number"),
                         ("b.xml", "bad_number", "object 2 'cat': <ymax>='inf' is not a finite number")]
    assert labels(out)["b.txt"] == EXPECTED["b.txt"]
    assert "nan" not in all_label_text(out) and "inf" not in all_label_text(out)


def test_nan_inf_in_coco_and_labelme(tmp_path):
    jf = make_coco(tmp_path / "coco")
    d = json.loads(jf.read_text())
    d["annotations"][0]["bbox"][0] = float("nan")  # json writes NaN, as Python and some exporters do
    d["annotations"][2]["bbox"][3] = float("inf")
    d["images"][2]["width"] = float("nan")
    jf.write_text(json.dumps(d))
    assert "NaN" in jf.read_text() and "Infinity" in jf.read_text()
    out = convert_dataset(jf, tmp_path / "o1", names=["cat", "dog"]).parent
    assert rows(out) == [("result.json", "bad_number", "annotation 1: bbox[0]=nan is not a finite number"),
                         ("result.json", "bad_number", "annotation 3: bbox[3]=inf is not a finite number"),
                         ("result.json", "bad_number", "image 3 'c.png': width=nan is not a finite number; the "
                                                       "file's own size is used")]
    assert labels(out) == {"a.txt": EXPECTED["a.txt"].split("\n", 1)[1], "b.txt": "", "c.txt": ""}

    src = make_labelme(tmp_path / "lm")
    d = json.loads((src / "a.json").read_text())
    d["shapes"][0]["points"][1][0] = float("-inf")
    d["shapes"][1]["points"][0][1] = "12,5"  # a decimal comma: unparseable
    (src / "a.json").write_text(json.dumps(d))
    out = convert_dataset(src, tmp_path / "o2").parent
    assert rows(out) == [("a.json", "bad_number", "shape 1 'dog': points[1][0]=-inf is not a finite number"),
                         ("a.json", "bad_number", "shape 2 'cat': points[0][1]='12,5' is not a number")]
    assert labels(out)["a.txt"] == "" and labels(out)["b.txt"] == EXPECTED["b.txt"]


def test_nan_inf_in_yolo_labels(tmp_path):
    root = tmp_path / "y"
    for k, n in enumerate("pq"):
        write_image(root / "images" / f"{n}.jpg", 200, 100, k)
    (root / "labels").mkdir()
    (root / "labels" / "p.txt").write_text("0 nan 0.5 0.2 0.2\n1 0.5 0.5 inf 0.2\n0 0.5 0.5 0.25 0.5\n")
    (root / "classes.txt").write_text("red\nblue\n")
    out = convert_dataset(root, tmp_path / "out").parent
    assert rows(out) == [("p.txt", "bad_number", "row 1: column 2 (x_centre) 'nan' is not a finite number"),
                         ("p.txt", "bad_number", "row 2: column 4 (width) 'inf' is not a finite number")]
    assert labels(out) == {"p.txt": "0 0.500000 0.500000 0.250000 0.500000\n", "q.txt": ""}


def test_format_is_told_by_keys_not_by_text(tmp_path):
    jf = make_coco(tmp_path / "coco")
    d = json.loads(jf.read_text())
    d["categories"][0]["name"] = "shapes"  # the word LabelMe's key is made of, as a COCO class
    d["info"] = {"description": "imagePath shapes"}
    jf.write_text(json.dumps(d))
    (tmp_path / "coco" / "README.md").write_text("# notes")
    (tmp_path / "coco" / "LICENSE").write_text("CC BY 4.0")
    assert detect_format(jf) == "coco" and detect_format(tmp_path / "coco") == "coco"
    out = convert_dataset(tmp_path / "coco", tmp_path / "out").parent
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == {0: "shapes", 1: "cat"}
    lm = make_labelme(tmp_path / "lm")
    (lm / "settings.json").write_text(json.dumps({"images": [], "theme": "dark"}))  # neither: a row, not COCO
    assert detect_format(lm) == "labelme"
    out = convert_dataset(lm, tmp_path / "o2").parent
    assert [r[:2] for r in rows(out)] == [("settings.json", "unknown_json")]


def test_detection_does_not_parse_a_large_json(tmp_path, monkeypatch):
    import ultralytics.data.convert as conv

    (tmp_path / "small.json").write_text(json.dumps({"shapes": [], "imagePath": "x.jpg"}))
    (tmp_path / "big.json").write_text("[" * 5000)  # parsing it would say: not JSON
    monkeypatch.setattr(conv, "PROBE_MAX_BYTES", 1000)
    assert conv._kind_of_json(tmp_path / "small.json") == "labelme"
    assert conv._kind_of_json(tmp_path / "big.json") == "coco"  # by size, unopened: read_coco checks it later
    monkeypatch.setattr(conv, "PROBE_MAX_BYTES", 10**6)
    assert conv._kind_of_json(tmp_path / "big.json") == "bad_json"  # nesting too deep to parse: no crash
    lm = make_labelme(tmp_path / "lm")
    (lm / "deep.json").write_text('{"shapes": ' + "[" * 100000)
    out = convert_dataset(lm, tmp_path / "out").parent
    assert [r[:2] for r in rows(out)] == [("deep.json", "malformed_json")]


def test_roboflow_coco_and_yolo_export_folders(tmp_path):
    rf = tmp_path / "rf_coco"
    for split, names in (("train", ["a.jpg", "b.jpg"]), ("valid", ["c.png"])):
        sub = {n: SCENE[n] for n in names}
        jf = make_coco(rf / split, sub)
        for n in names:  # Roboflow puts the images beside the JSON
            (rf / split / "images" / n).rename(rf / split / n)
        (rf / split / "images").rmdir()
        jf.rename(rf / split / "_annotations.coco.json")
    (rf / "README.roboflow.txt").write_text("Provided by Roboflow\n")
    (rf / "README.dataset.txt").write_text("# my project\n")
    assert detect_format(rf) == "coco"
    out = convert_dataset(rf, tmp_path / "o1", names=["cat", "dog"]).parent
    assert sorted(p.name for p in (out / "images" / "val").iterdir()) == ["c.png"]
    assert labels(out) == EXPECTED and rows(out) == []

    ry = tmp_path / "rf_yolo"
    for split, n in (("train", "p"), ("train", "q"), ("valid", "r")):
        write_image(ry / split / "images" / f"{n}.jpg", 200, 100, ord(n))
        (ry / split / "labels").mkdir(parents=True, exist_ok=True)
        (ry / split / "labels" / f"{n}.txt").write_text("1 0.5 0.5 0.25 0.5\n")
    (ry / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 2\nnames: ['red', 'blue']\n")
    (ry / "README.roboflow.txt").write_text("Provided by Roboflow\n")
    (ry / "README.dataset.txt").write_text("# my project\n")
    assert detect_format(ry) == "yolo"
    out = convert_dataset(ry, tmp_path / "o2").parent
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == {0: "red", 1: "blue"}
    assert sorted(p.name for p in (out / "images" / "val").iterdir()) == ["r.jpg"]


def test_same_name_in_different_folders_all_kept_with_a_mapping(tmp_path):
    src = tmp_path / "lm"
    for cam in ("cam1", "cam2"):  # LabelMe JSON beside each image, the same file names in both folders
        make_labelme(src / cam, {"0001.jpg": (64, 48, [("cat", 4, 4, 36 if cam == "cam1" else 20, 36)])})
    write_image(src / "cam2" / "0001.jpg", 64, 48, 5)  # another picture than cam1's
    write_image(src / "0001.png", 64, 48, 9)  # same stem, at the top: its label would be 0001.txt too
    (src / "0001.json").write_text(json.dumps({"shapes": [], "imagePath": "0001.png"}))
    out = convert_dataset(src, tmp_path / "out").parent
    assert sorted(labels(out)) == ["0001.txt", "cam1__0001.txt", "cam2__0001.txt"]
    assert labels(out)["cam1__0001.txt"] == "0 0.312500 0.416667 0.500000 0.666667\n"  # 20/64, 20/48, 32/64
    assert labels(out)["cam2__0001.txt"] == "0 0.187500 0.416667 0.250000 0.666667\n"
    with open(out / "renamed.csv", newline="") as f:
        mapping = list(csv.DictReader(f))
    assert [(m["output"], Path(m["source"]).relative_to(src).as_posix()) for m in mapping] == [
        ("0001.png", "0001.png"), ("cam1__0001.jpg", "cam1/0001.jpg"), ("cam2__0001.jpg", "cam2/0001.jpg")]
    assert rows(out) == []


def test_git_annex_and_dvc_relative_symlinks_are_followed(tmp_path):
    src = make_voc(tmp_path / "repo")
    store = {"a.jpg": src / ".git" / "annex" / "objects" / "Xk" / "SHA256E-s1--aa.jpg",
             "b.jpg": src / ".dvc" / "cache" / "files" / "md5" / "bb"}
    for name, target in store.items():
        target.parent.mkdir(parents=True)
        (src / "JPEGImages" / name).rename(target)
        (src / "JPEGImages" / name).symlink_to(os.path.relpath(target, src / "JPEGImages"))
    (src / "JPEGImages" / "c.png").rename(src / "c.moved")
    (src / "JPEGImages" / "c.png").symlink_to("../c.png.gone")  # dangling
    (src / "JPEGImages" / "d.png").symlink_to("../c.moved")
    (src / "Annotations" / "d.xml").write_text(voc_xml("d.png", 100, 100, []))
    out = convert_dataset(src, tmp_path / "out").parent
    assert rows(out) == [("c.png", "missing_image", f"symlink to missing {src / 'c.png.gone'}")]
    ims = {p.name: p for p in (out / "images").rglob("*.*")}
    assert sorted(ims) == ["a.jpg", "b.jpg", "d.png"]
    for name, target in store.items():
        assert not ims[name].is_symlink() and ims[name].stat().st_ino == target.stat().st_ino
    assert labels(out)["a.txt"] == EXPECTED["a.txt"]


def test_labelme_image_data_is_written_when_the_file_is_missing(tmp_path):
    src = make_labelme(tmp_path / "lm")
    png = (src / "c.png").read_bytes()
    d = json.loads((src / "c.json").read_text())
    d["imageData"], d["imagePath"] = base64.b64encode(png).decode(), "..\\\\elsewhere\\\\c"  # Windows path, no suffix
    (src / "c.json").write_text(json.dumps(d))
    (src / "c.png").unlink()
    d = json.loads((src / "b.json").read_text())
    d["imageData"] = "not base64!"
    (src / "b.json").write_text(json.dumps(d))  # the file is there: imageData is not needed and not looked at
    out = convert_dataset(src, tmp_path / "out").parent
    ims = {p.name: p for p in (out / "images").rglob("*.*")}
    assert sorted(ims) == ["a.jpg", "b.jpg", "c.png"] and ims["c.png"].read_bytes() == png
    assert labels(out) == EXPECTED and rows(out) == []


def test_two_images_give_a_val_image_and_one_image_a_clear_error(tmp_path):
    two = {k: SCENE[k] for k in ("a.jpg", "b.jpg")}
    y = convert_dataset(make_voc(tmp_path / "two", two), tmp_path / "o2")
    d = check_det_dataset(y)  # the tree's own check accepts it
    assert [len(os.listdir(d[s])) for s in ("train", "val")] == [1, 1]
    one = {"a.jpg": SCENE["a.jpg"]}
    with pytest.raises(UserError, match=r"1 usable image .*one image cannot be both.*split="):
        convert_dataset(make_voc(tmp_path / "one", one), tmp_path / "o1")
    dup = make_voc(tmp_path / "dup", two)  # 2 images, identical bytes: one group, not split apart
    (dup / "JPEGImages" / "b.jpg").write_bytes((dup / "JPEGImages" / "a.jpg").read_bytes())
    with pytest.raises(UserError, match=r"leaves val without images.*identical images stay together"):
        convert_dataset(dup, tmp_path / "o3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dup", "o2", "one", "two"]
    ty = tmp_path / "train_only"  # a YOLO export with a train/ folder only: no val fixed, so val is split off
    for k in range(5):
        write_image(ty / "train" / "images" / f"t{k}.jpg", 64, 48, k)
        (ty / "train" / "labels").mkdir(parents=True, exist_ok=True)
        (ty / "train" / "labels" / f"t{k}.txt").write_text("0 0.5 0.5 0.25 0.5\n")
    (ty / "classes.txt").write_text("red\n")
    d = check_det_dataset(convert_dataset(ty, tmp_path / "o4"))
    assert [len(os.listdir(d[s])) for s in ("train", "val")] == [4, 1]  # round(5 * 0.2) = 1


def test_coco_ids_of_the_wrong_type_or_twice_are_rows(tmp_path):
    jf = make_coco(tmp_path / "coco")
    d = json.loads(jf.read_text())
    d["images"].append({"id": {"x": 1}, "file_name": "a.jpg"})  # unhashable id: a crash before
    d["images"].append({"id": 2, "file_name": "c.png"})  # id 2 again: silently replaced b.jpg before
    d["annotations"].append({"id": 50, "image_id": [1], "category_id": 1, "bbox": [1, 1, 5, 5]})
    d["annotations"].append({"id": 51, "image_id": 1, "category_id": [1], "bbox": [1, 1, 5, 5]})
    jf.write_text(json.dumps(d))
    out = convert_dataset(jf, tmp_path / "out", names=["cat", "dog"]).parent
    assert [r[1] for r in rows(out)] == ["duplicate_image_id", "malformed_annotation", "malformed_image",
                                         "unknown_category_id"]
    assert labels(out) == EXPECTED


def test_a_dataset_the_tree_check_rejects_is_never_written(tmp_path, monkeypatch):
    from ultralytics.data.convert import writer

    monkeypatch.setattr(writer, "check_sizes", lambda *a: None)  # without the early error: the final check holds
    with pytest.raises(UserError, match=r"not written: the dataset would fail the dataset check .*no images found"):
        convert_dataset(make_voc(tmp_path / "one", {"a.jpg": SCENE["a.jpg"]}), tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one"]  # neither out nor a temporary folder
