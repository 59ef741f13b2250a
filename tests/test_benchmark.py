"""The latency benchmark: its table (params, GFLOPs of the inference graph), timing, CSV, CLI and errors."""

from __future__ import annotations

import csv
import time

import pytest
import torch

from ultralytics.analysis.benchmark import COLUMNS, benchmark, time_model
from ultralytics.utils import UserError

FAST = dict(warmup_runs=1, timed_runs=2, device="cpu", verbose=False)


def read_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_yolov10n_figures_and_csv(tmp_path):
    """yolov10n fused: 2,299,264 parameters and 6.7 GFLOPs at 640, as the YOLOv10 paper's inference graph."""
    rows = benchmark("yolov10n.yaml", imgsz=640, project=str(tmp_path), name="b", **FAST)
    assert len(rows) == 1 and rows[0]["params"] == 2_299_264 and rows[0]["gflops"] == pytest.approx(6.70, abs=0.005)
    table = read_csv(tmp_path / "b" / "benchmark.csv")
    assert list(table[0]) == list(COLUMNS)
    r = table[0]
    assert (r["model"], r["format"], r["batch"], r["imgsz"], r["half"]) == ("yolov10n", "pytorch", "1", "640", "False")
    assert float(r["fps"]) == pytest.approx(1e3 / float(r["ms_median"]), rel=0.01)


def test_side_by_side_and_exported(tmp_path, monkeypatch):
    """Several models in one call (a YAML list and an ONNX file): one row each, in order, the run dir increments."""
    pytest.importorskip("onnxruntime")
    from ultralytics import YOLO

    monkeypatch.chdir(tmp_path)  # a model built from a YAML exports to <stem>.onnx in the working directory
    onnx_file = YOLO("yolov10n.yaml").export(format="onnx", imgsz=64, dynamic=True)
    rows = benchmark(["yolov10n.yaml,yolov10n-LSKA.yaml", onnx_file], imgsz=64, batch=2, project=str(tmp_path), **FAST)
    again = benchmark("yolov10n.yaml", imgsz=64, project=str(tmp_path), **FAST)
    assert [(r["model"], r["format"], r["batch"]) for r in rows] == [
        ("yolov10n", "pytorch", 2), ("yolov10n-LSKA", "pytorch", 2), ("yolov10n", "onnx", 2)]
    assert rows[2]["params"] == rows[0]["params"] and rows[2]["gflops"] == pytest.approx(rows[0]["gflops"], abs=0.01)
    assert rows[1]["params"] > rows[0]["params"]
    assert (tmp_path / "exp" / "benchmark.csv").is_file() and (tmp_path / "exp2" / "benchmark.csv").is_file()
    assert len(again) == 1


def test_time_model_measures_each_pass():
    """A module that sleeps 20 ms: the median is about 20 ms, the warm-up passes are not timed."""
    calls = []

    class Sleepy(torch.nn.Module):
        def forward(self, x):
            calls.append(1)
            time.sleep(0.02)
            return x

    times = time_model(Sleepy(), torch.zeros(1), warmup=2, runs=3)
    assert len(times) == 3 and len(calls) == 5
    assert all(19 <= t < 200 for t in times)


def test_cli_and_errors(tmp_path, monkeypatch):
    """`yolo benchmark model=a,b`, and clear errors: half on the CPU, a fixed-shape export at another size."""
    from ultralytics import YOLO
    from ultralytics.cli import entrypoint

    rows = entrypoint(["benchmark", "model=yolov10n.yaml", "imgsz=64", "timed_runs=2", "warmup_runs=0",
                       "device=cpu", f"project={tmp_path}", "verbose=False"])
    assert rows[0]["model"] == "yolov10n" and (tmp_path / "exp" / "benchmark.csv").is_file()
    with pytest.raises(UserError, match="half=True needs a CUDA device"):
        benchmark("yolov10n.yaml", imgsz=64, half=True, project=str(tmp_path), **FAST)
    with pytest.raises(UserError, match="timed_runs"):
        benchmark("yolov10n.yaml", imgsz=64, project=str(tmp_path), **{**FAST, "timed_runs": 1})
    monkeypatch.chdir(tmp_path)
    f = YOLO("yolov10n.yaml").export(format="torchscript", imgsz=64)
    # TorchScript traces follow the input's shape: another size runs, its GFLOPs are not in the file
    assert benchmark(f, imgsz=96, project=str(tmp_path), **FAST)[0]["gflops"] == ""
    f = YOLO("yolov10n.yaml").export(format="onnx", imgsz=64, batch=1, dynamic=False)
    with pytest.raises(UserError, match="fixed shapes .*imgsz=\\[64, 64\\]"):
        benchmark(f, imgsz=96, project=str(tmp_path), **FAST)


def test_root_script(tmp_path, monkeypatch):
    """`python benchmark.py model=... key=value` (run in-process): the settings block, overrides win."""
    import runpy
    import sys

    from ultralytics.utils import REPO_ROOT

    argv = ["benchmark.py", "model=yolov10n.yaml,yolov10n-PSALSKA.yaml", "imgsz=64", "timed_runs=2", "warmup_runs=0",
            "device=cpu", f"project={tmp_path}", "name=script", "verbose=False"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(REPO_ROOT / "benchmark.py"), run_name="__main__")
    rows = read_csv(tmp_path / "script" / "benchmark.csv")
    assert [(r["model"], r["imgsz"], r["batch"]) for r in rows] == [("yolov10n", "64", "1"),
                                                                   ("yolov10n-PSALSKA", "64", "1")]


def test_inference_graph_even_with_nms_head(tmp_path):
    """A model whose head was switched to nms=True is still timed and counted as the one-to-one graph."""
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolov10n.yaml", verbose=False)
    model.model[-1].nms = True
    rows = benchmark([model], imgsz=64, project=str(tmp_path), **FAST)
    assert rows[0]["params"] == 2_299_264 and model.model[-1].nms and model.model[-1].cv2 is not None


def test_data_routes_to_deploy_table(tmp_path, monkeypatch):
    """With data=, `yolo benchmark` and `python benchmark.py` build the deployment table (one .pt exported to each
    format): a YAML is refused there with a message saying so; without data= the latency table is unchanged."""
    import runpy
    import sys

    from ultralytics.cli import entrypoint
    from ultralytics.utils import REPO_ROOT

    with pytest.raises(UserError, match="exports a trained .pt to each format: model='yolov10n.yaml' is not a .pt"):
        entrypoint(["benchmark", "model=yolov10n.yaml", "data=shapes.yaml", f"project={tmp_path}"])
    monkeypatch.setattr(sys, "argv", ["benchmark.py", "model=yolov10n.yaml", "data=shapes.yaml"])
    with pytest.raises(SystemExit, match="ERROR: the deployment table exports a trained .pt"):
        runpy.run_path(str(REPO_ROOT / "benchmark.py"), run_name="__main__")
