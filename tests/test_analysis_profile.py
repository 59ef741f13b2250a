"""The per-layer profile: one row per YAML row, totals equal the summary line, `yolo profile`, info(detailed)."""

from __future__ import annotations

import pytest
import torch

from ultralytics.nn.layer_profile import profile_rows, row_gflops
from ultralytics.nn.summary import count_flops
from ultralytics.nn.tasks import DetectionModel


def tiny_yaml(nc: int = 2) -> dict:
    return {"nc": nc, "backbone": [[-1, 1, "Conv", [8, 3, 2]], [-1, 1, "Conv", [8, 3, 2]],
                                   [-1, 1, "Conv", [8, 3, 2]], [-1, 1, "Conv", [16, 3, 2]],
                                   [-1, 1, "Conv", [16, 3, 2]], [-1, 1, "nn.Upsample", [None, 2, "nearest"]],
                                   [[-1, 3], 1, "Concat", [1]]],
            "head": [[[2, 3, 6], 1, "v10Detect", ["nc"]]]}


@pytest.mark.parametrize("yaml", ["yolov10n-LSKA.yaml", "yolov10n-PSALSKA.yaml"])
def test_row_gflops_add_up_to_the_summary_line(yaml):
    m = DetectionModel(yaml, verbose=False)
    rows = row_gflops(m, 640)
    assert len(rows) == len(m.model)
    assert sum(rows) == pytest.approx(count_flops(m, 640), rel=1e-9)  # attention matmuls included (PSA row 10)
    m.fuse(verbose=False)
    assert sum(row_gflops(m, 640)) == pytest.approx(count_flops(m, 640), rel=1e-9)


def test_profile_rows_of_a_tiny_model():
    m = DetectionModel(tiny_yaml(), verbose=False)
    rows, tot = profile_rows(m, 64, runs=1)
    assert [r["i"] for r in rows] == list(range(8))
    assert [r["module"] for r in rows] == ["Conv"] * 5 + ["nn.Upsample", "Concat", "v10Detect"]
    assert rows[0]["shape"] == "(1, 8, 32, 32)" and rows[6]["shape"] == "(1, 32, 4, 4)"
    assert rows[0]["args"] == [8, 3, 2] and rows[6]["from"] == [-1, 3]
    assert rows[6]["gflops"] == 0 and rows[6]["params"] == 0
    # row 0: Conv(3, 8, 3, s2) at 64 -> 32x32x8 outputs, 27 MACs each (no bias; BN counted apart)
    assert rows[0]["gflops"] >= 2 * 32 * 32 * 8 * 27 / 1e9
    assert tot["params"] == sum(p.numel() for p in m.parameters())
    assert tot["gflops"] == pytest.approx(count_flops(m, 64), rel=1e-9)
    assert all(r["ms"] >= 0 for r in rows) and tot["forward_ms"] > 0
    assert m.training  # measured in eval mode, the mode is restored


def test_info_detailed_prints_the_table_then_the_summary(log_messages):
    m = DetectionModel(tiny_yaml(), verbose=False)
    n_l, n_p, n_g, flops = m.info(detailed=True, imgsz=64)
    text = "\n".join(log_messages)
    assert "Per-layer profile at 64x64" in text and "v10Detect" in text and "nn.Upsample" in text
    total = next(line for line in text.splitlines() if line.startswith("total"))
    assert f"{n_p:,}" in total and f"{flops:.3f}" in total


def test_yolo_profile_mode(log_messages):
    from ultralytics.cli import entrypoint

    rows, tot = entrypoint(["profile", "model=yolov10n.yaml", "imgsz=64", "device=cpu"])
    assert len(rows) == 24 and tot["params"] == 2_775_520
    assert any("summary" in line and "2,775,520 parameters" in line for line in log_messages)
    assert torch.is_grad_enabled()
