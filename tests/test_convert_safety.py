"""The converter cannot delete, read or link what is not its own: out= that holds the source or the user's
files, paths leaving the source, FIFOs and devices, a killed run; and what it writes is finite and complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from tests.test_convert import labels, make_coco, make_voc, problems, write_image
from ultralytics.data.convert import convert_dataset, main
from ultralytics.data.convert.safety import MANIFEST
from ultralytics.utils import UserError

ROOT = Path(__file__).resolve().parents[1]


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under folder (relative path -> bytes), to show nothing was deleted or changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_out_holding_the_source_is_refused_and_nothing_is_deleted(tmp_path, monkeypatch):
    proj = tmp_path / "proj"
    make_coco(proj / "raw")
    (proj / "other").mkdir()
    (proj / "other" / "important.txt").write_text("keep me")
    before = tree(proj)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="contains the source folder"):
        convert_dataset("proj/raw/result.json", "proj", exist_ok=True)  # the case of issue 25
    with pytest.raises(UserError, match="lies inside the source folder"):
        convert_dataset("proj/raw", "proj/raw/yolo")  # the next run would survey its own output
    assert tree(proj) == before and len(before) == 5  # result.json, 3 images, important.txt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]  # no temporary folder either
    convert_dataset("proj/raw/result.json", "proj/raw/yolo")  # beside a JSON source (not searched): allowed
    convert_dataset("proj/raw/result.json", "proj/raw/yolo", exist_ok=True)
    assert {k: v for k, v in tree(proj).items() if not k.startswith("raw/yolo/")} == before


def test_exist_ok_replaces_only_what_the_tool_wrote(tmp_path):
    src = make_voc(tmp_path / "voc")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("my notes")
    with pytest.raises(UserError, match=r"not written by dataset.py \(no .dataset-manifest.json\).*nothing was del"):
        convert_dataset(src, notes, exist_ok=True)
    assert tree(notes) == {"todo.txt": b"my notes"}

    out = tmp_path / "out"
    (out).mkdir()  # an empty folder made beforehand is fine
    convert_dataset(src, out, seed=0)
    m = json.loads((out / MANIFEST).read_text())
    assert m["tool"] == "ultralytics dataset.py" and m["source"] == [str(src)]
    assert m["settings"]["seed"] == 0 and m["settings"]["split"] == [0.8, 0.2] and m["settings"]["max_image_mb"] == 256
    assert m["written"] == ["data.yaml", "images", "labels", "problems.csv", "report.html"]
    (out / "my_results.txt").write_text("added later")  # the user's file inside a dataset the tool wrote
    with pytest.raises(UserError, match=r"holds \['my_results.txt'\] that dataset.py did not write"):
        convert_dataset(src, out, exist_ok=True)
    assert (out / "my_results.txt").read_text() == "added later" and (out / "data.yaml").is_file()
    (out / "my_results.txt").unlink()
    (out / "images" / "train" / "mine.jpg").write_bytes(b"my own picture")  # deeper inside: also refused
    with pytest.raises(UserError, match=r"holds \['images/train/mine.jpg'\] that dataset.py did not write"):
        convert_dataset(src, out, exist_ok=True)
    (out / "images" / "train" / "mine.jpg").unlink()
    convert_dataset(src, out, exist_ok=True, seed=5)
    assert json.loads((out / MANIFEST).read_text())["settings"]["seed"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "out", "voc"]


def test_killed_run_leaves_no_out_and_the_next_run_removes_its_temporary_folder(tmp_path):
    src = make_voc(tmp_path / "voc")
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import os, signal
        from ultralytics.data.convert import convert_dataset, writer
        def die(a, b):
            os.link(a, b)
            os.kill(os.getpid(), signal.SIGKILL)  # killed while writing images
        writer.place_image = die
        convert_dataset({str(src)!r}, {str(out)!r})
    """)
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, timeout=300, capture_output=True)
    assert r.returncode == -9
    stale = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.dataset-tmp-")]
    assert not out.exists() and len(stale) == 1 and (tmp_path / stale[0] / "images").is_dir()
    foreign = tmp_path / ".out.dataset-tmp-999999999"  # same pattern, no marker: not ours, kept
    foreign.mkdir()
    (foreign / "x.txt").write_text("someone else's")
    convert_dataset(src, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.dataset-tmp-999999999", "out", "voc"]
    assert labels(out)["a.txt"].startswith("1 0.225000 0.350000")


def _coco(root: Path, file_names: list[str]) -> Path:
    """A COCO JSON at root/result.json naming these file names, one 10x10 px 'cat' box each at (1,1)."""
    d = {"images": [{"id": i + 1, "file_name": f, "width": 64, "height": 48} for i, f in enumerate(file_names)],
         "annotations": [{"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [1, 1, 10, 10], "iscrowd": 0}
                         for i in range(len(file_names))],
         "categories": [{"id": 1, "name": "cat"}]}
    root.mkdir(parents=True, exist_ok=True)
    (root / "result.json").write_text(json.dumps(d))
    return root / "result.json"


def test_paths_leaving_the_source_are_not_read_or_linked(tmp_path):
    secret = tmp_path / "secret" / "private.jpg"
    write_image(secret, 64, 48, 7)
    root = tmp_path / "c"
    for k in range(2):
        write_image(root / f"ok{k}.jpg", 64, 48, k)
    (root / "link.jpg").symlink_to(secret)  # a symlink inside the source pointing out of it
    jf = _coco(root, ["ok0.jpg", "ok1.jpg", "../secret/private.jpg", str(secret), "/etc/passwd", "link.jpg"])
    out = convert_dataset(jf, tmp_path / "out").parent
    rows = sorted((r["file"], r["problem"]) for r in problems(out))
    assert rows == sorted([(str(root / "../secret/private.jpg"), "outside_source"), (str(secret), "outside_source"),
                           ("/etc/passwd", "outside_source"), (str(root / "link.jpg"), "outside_source")])
    assert sorted(p.name for p in (out / "images").rglob("*.jpg")) == ["ok0.jpg", "ok1.jpg"]
    inodes = {p.stat().st_ino for p in out.rglob("*")}
    assert secret.stat().st_ino not in inodes
    assert "root:" not in "".join(p.read_text() for p in out.rglob("*.txt"))


def test_annotation_files_linking_out_of_the_source_are_not_read(tmp_path):
    elsewhere = make_voc(tmp_path / "elsewhere")  # someone else's VOC and COCO files
    jf = make_coco(tmp_path / "elsewhere_coco")
    src = make_voc(tmp_path / "voc")
    (src / "Annotations" / "evil.xml").symlink_to(elsewhere / "Annotations" / "a.xml")
    out = convert_dataset(src, tmp_path / "o1").parent
    assert rows_of(out) == [("evil.xml", "outside_source")]
    lm = tmp_path / "lm"
    make_coco(lm)  # a COCO folder with a JSON that links out
    (lm / "other.json").symlink_to(jf)
    out = convert_dataset(lm, tmp_path / "o2", names=["cat", "dog"]).parent
    assert rows_of(out) == [("other.json", "outside_source")]
    y = tmp_path / "y"
    for k in range(2):
        write_image(y / "images" / f"p{k}.jpg", 64, 48, k)
    (y / "labels").mkdir()
    (y / "labels" / "p0.txt").symlink_to(tmp_path / "elsewhere" / "Annotations" / "a.xml")
    (y / "labels" / "p1.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (y / "classes.txt").write_text("cat\n")
    out = convert_dataset(y, tmp_path / "o3").parent
    assert rows_of(out) == [("p0.txt", "outside_source")] and labels(out)["p0.txt"] == ""


def rows_of(out: Path) -> list[tuple[str, str]]:
    return sorted((Path(r["file"]).name, r["problem"]) for r in problems(out))


def test_dev_zero_fifo_and_folder_are_not_opened_within_time_and_memory(tmp_path):
    root = tmp_path / "c"
    for k in range(2):
        write_image(root / f"ok{k}.jpg", 64, 48, k)
    os.mkfifo(root / "fifo.jpg")  # opening it for reading would block forever
    (root / "folder.jpg").mkdir()
    (root / "zero.jpg").symlink_to("/dev/zero")
    jf = _coco(root, ["ok0.jpg", "ok1.jpg", "fifo.jpg", "folder.jpg", "zero.jpg"])
    jd = _coco(tmp_path / "d", ["zero"])  # images=/dev: /dev/zero is inside a root, and not a regular file
    script = textwrap.dedent(f"""
        import resource
        from ultralytics.data.convert import read_source, writer
        from ultralytics.data.convert.common import Item
        src = read_source({str(jf)!r})
        print(sorted((r[0].rsplit('/', 1)[-1], r[1]) for e in [writer.check_item(i, {{'cat': 0}}, src.roots, 2**20)
              for i in src.items] for r in e.problems))
        src = read_source({str(jd)!r}, images="/dev")
        print([r[1:] for r in writer.check_item(src.items[0], {{'cat': 0}}, src.roots, 2**20).problems])
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    """)
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, timeout=120, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0] == str([("fifo.jpg", "not_regular_file"), ("folder.jpg", "not_regular_file"),
                            ("zero.jpg", "outside_source")])
    assert lines[1] == str([("not_regular_file", "device or socket; not opened")])
    assert int(lines[2]) < 2000  # MB peak: the import of torch, not a read of /dev/zero
    assert time.perf_counter() - t < 120


def test_max_image_mb_caps_reads_and_is_checked(tmp_path):
    root = tmp_path / "c"
    write_image(root / "big.png", 64, 48, 0)  # noise PNG: about 9 kB
    for k in range(2):
        cv2.imwrite(str(root / f"s{k}.png"), np.full((48, 64, 3), 50 * k, np.uint8))  # flat: under 1 kB
    jf = _coco(root, ["big.png", "s0.png", "s1.png"])
    assert (root / "big.png").stat().st_size > 0.005 * 2**20 > (root / "s0.png").stat().st_size
    out = convert_dataset(jf, tmp_path / "out", max_image_mb=0.005).parent
    assert [(Path(r["file"]).name, r["problem"]) for r in problems(out)] == [("big.png", "too_large_image")]
    assert "> max_image_mb=0.005" in problems(out)[0]["detail"]
    with pytest.raises(UserError, match="max_image_mb=0"):
        convert_dataset(jf, tmp_path / "o2", max_image_mb=0)
    assert main([f"source={jf}", f"out={tmp_path / 'o3'}", "max_image_mb=0.005"]) == 0
    assert yaml.safe_load((tmp_path / "o3" / MANIFEST).read_text())["settings"]["max_image_mb"] == 0.005
