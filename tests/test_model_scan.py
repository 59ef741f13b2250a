"""Every model YAML builds at its scales, runs in eval and train mode, and prints the committed summary figures.

The default run scans the n and s scale YAMLs (about 10 s); YOLO_SCAN_ALL=1 scans every scale (about a
minute on a loaded 2-core machine: the x models take seconds each to build). After a deliberate change,
regenerate the table: python -m ultralytics.nn.scan --write tests/data/model_table.csv
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ultralytics.nn import tasks  # noqa: F401 - registers the tree's modules
from ultralytics.nn.registry import _REGISTRY
from ultralytics.nn.scan import model_yamls, read_table, scan
from ultralytics.nn.tasks import MODELS_DIR

TABLE = Path(__file__).resolve().parent / "data" / "model_table.csv"
SCALES = None if os.environ.get("YOLO_SCAN_ALL") else "ns"


def test_every_shipped_yaml_is_in_the_table():
    listed = {r["yaml"] for r in read_table(TABLE)}
    assert listed == {p.relative_to(MODELS_DIR).as_posix() for p in model_yamls(MODELS_DIR)}


def test_every_yaml_builds_runs_and_matches_the_table():
    rows, problems = scan(MODELS_DIR, only=SCALES)
    assert problems == []
    expected = [r for r in read_table(TABLE) if SCALES is None or r["scale"] in SCALES]
    assert len(rows) == len(expected) >= 6
    for got, want in zip(rows, expected):
        assert {k: v for k, v in got.items() if k != "gflops"} == {k: v for k, v in want.items() if k != "gflops"}
        assert got["gflops"] == pytest.approx(want["gflops"], abs=1e-3), got["yaml"]


def test_table_agrees_with_the_papers_figures():
    """Spot checks typed from the YOLOv10 paper / Ultralytics: yolov10n 2,775,520 parameters, 8.7 GFLOPs."""
    t = {r["yaml"]: r for r in read_table(TABLE)}
    assert (t["v10/yolov10n.yaml"]["layers"], t["v10/yolov10n.yaml"]["parameters"]) == (385, 2_775_520)
    assert t["v10/yolov10x.yaml"]["parameters"] == 31_808_960
    assert t["v10/yolov10n-LSKA.yaml"]["parameters"] == 2_869_152


def test_scan_reports_an_unknown_module(tmp_path):
    text = (MODELS_DIR / "v10" / "yolov10n-LSKA.yaml").read_text().replace("LSKA, [7]]  ", "LKSA, [7]]  ", 1)
    (tmp_path / "yolov10n-typo.yaml").write_text(text)
    (tmp_path / "yolov10n.yaml").write_text((MODELS_DIR / "v10" / "yolov10n.yaml").read_text())
    rows, problems = scan(tmp_path)
    assert [r["yaml"] for r in rows] == ["yolov10n.yaml"]
    assert len(problems) == 1
    assert re.search(r"yolov10n-typo.yaml \(scale n\): .*row 17 .*unknown module 'LKSA'.*LSKA", problems[0])


def test_every_registered_name_is_used_by_a_test():
    """Each registered YAML name is built by the scan above (a shipped YAML uses it) or named in a test file."""
    import yaml

    in_yamls = {row[2] for p in model_yamls(MODELS_DIR) for part in ("backbone", "head")
                for row in yaml.safe_load(p.read_text())[part]}
    text = "\n".join(p.read_text(encoding="utf-8") for p in Path(__file__).parent.glob("test_*.py"))
    unused = [n for n in sorted(_REGISTRY) if n not in in_yamls and not re.search(rf"\b{re.escape(n)}\b", text)]
    assert unused == []


def test_blocks_only_used_inside_others_build_as_rows():
    """Bottleneck, CIB and RepVGGDW are registered but no shipped YAML has them as rows: build them as rows.

    Row 16 of yolov10n reads a Concat of 192 channels and outputs 64; parameters worked out by hand.
    """
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.nn.yaml_edit import insert_rows, replace_row

    def conv(c1, c2, k=1, g=1):  # the tree's Conv: weights without bias + BN weight and bias
        return c1 // g * c2 * k * k + 2 * c2

    m = DetectionModel(replace_row("yolov10n.yaml", 16, "Bottleneck", [256]), verbose=False)
    assert m.model[16].np == conv(192, 32, 3) + conv(32, 64, 3)  # c_ = 64 * 0.5
    m = DetectionModel(replace_row("yolov10n.yaml", 16, "CIB", [256]), verbose=False)
    assert m.model[16].np == conv(192, 192, 3, 192) + conv(192, 64) + conv(64, 64, 3, 64) + conv(64, 64) \
        + conv(64, 64, 3, 64)
    m = DetectionModel(insert_rows("yolov10n.yaml", "RepVGGDW", [], after=[16]), verbose=False)
    assert m.model[17].np == conv(64, 64, 7, 64) + conv(64, 64, 3, 64)
