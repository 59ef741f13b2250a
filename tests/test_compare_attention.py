"""compare.py --attention: YAMLs built with insert_rows, trained with the plain model, compared, cost table."""

from __future__ import annotations

import csv

import pytest
import yaml

from ultralytics.compare import main
from ultralytics.compare.attention import lska_points, parse_after
from ultralytics.utils import UserError


def test_default_points_are_the_lska_yamls():
    assert lska_points("yolov10n.yaml") == [16, 19, 22]
    assert lska_points("yolov10x.yaml") == [16, 19, 22]
    assert parse_after(None, "yolov10s.yaml") == [16, 19, 22]
    assert parse_after("4, 13", "yolov10n.yaml") == [4, 13]
    with pytest.raises(UserError, match="--after 'a,b' must be row indices"):
        parse_after("a,b", "yolov10n.yaml")


def test_attention_two_modules_one_epoch(tmp_path, tiny_data, capsys):
    out, project = tmp_path / "report", tmp_path / "abl"
    cmd = ["--attention", "SE", "SimAM", "--seeds", "0", "--cost-imgsz", "64", "--timed-runs", "2",
           f"data={tiny_data}", "epochs=1", "imgsz=64", "batch=16", "workers=0", "device=cpu", "plots=False",
           "val=False", f"project={project}", "--out", str(out), "--no-plot"]
    assert main(cmd) == 0
    text = capsys.readouterr().out
    # the YAMLs: written by insert_rows into the run folder, at the LSKA points
    se = yaml.safe_load((project / "yamls" / "yolov10n-SE.yaml").read_text())
    assert se["head"][6] == [-1, 1, "SE", []] and se["head"][-1][0] == [17, 21, 25]
    # the comparison: both modules and the plain model, with numbers, tested against the plain model
    with open(out / "compare_groups.csv") as f:
        groups = {r["model"]: r for r in csv.DictReader(f)}
    assert set(groups) == {"yolov10n", "yolov10n-SE", "yolov10n-SimAM"}
    assert groups["yolov10n"]["method"] == "baseline"
    for g in groups.values():
        float(g["best_mAP50-95_mean"])  # a number (0.0 after one epoch is still a number)
    assert int(groups["yolov10n-SE"]["params"]) > int(groups["yolov10n"]["params"])
    assert int(groups["yolov10n-SimAM"]["params"]) == int(groups["yolov10n"]["params"])  # parameter-free
    # the cost table: SE adds 2 * (64*4+4+4*64+64) + (128*8+8+8*128+128) + (256*16+16+16*256+256) parameters
    with open(out / "attention_cost.csv") as f:
        cost = {r["module"]: r for r in csv.DictReader(f)}
    assert list(cost) == ["(none)", "SE", "SimAM"]
    se_extra = (64 * 4 + 4 + 4 * 64 + 64) + (128 * 8 + 8 + 8 * 128 + 128) + (256 * 16 + 16 + 16 * 256 + 256)
    assert int(cost["SE"]["d_params"]) == se_extra and int(cost["SimAM"]["d_params"]) == 0
    assert int(cost["(none)"]["params"]) == 2_299_264  # yolov10n's inference graph
    assert all(float(r["cpu_ms"]) > 0 and float(r["gflops"]) > 0 for r in cost.values())
    assert "| yolov10n-SE " in text and "Cost of each module" in text
    assert (out / "attention_cost.md").read_text().count("| yolov10n") == 3


def test_attention_usage_errors(tmp_path, tiny_data, log_messages):
    assert main(["--attention", "SE", "--train", "yolov10n.yaml", f"data={tiny_data}"]) == 2
    assert main(["--attention", "SEE", f"data={tiny_data}", f"project={tmp_path}"]) == 2
    assert main(["--attention", "SE", "--after", "23", f"data={tiny_data}", f"project={tmp_path}"]) == 2
    assert main(["runs/x", "--after", "16"]) == 2
    errors = [m for m in log_messages if m.startswith("compare: error")]
    assert "drop the run paths and --train" in errors[0]
    assert "unknown module 'SEE'; closest known names: SE" in errors[1]
    assert "after=23 is the head" in errors[2]
    assert "--after goes with --attention" in errors[3]
    assert not (tmp_path / "yamls").exists() or not list((tmp_path / "yamls").iterdir())
