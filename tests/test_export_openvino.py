"""OpenVINO export (FP32 and INT8) through the backend, and the deployment table (one row per format, each validated).

FP32: a yolov10n-PSALSKA with every attention baseline inserted (one graph holds them all, so one conversion
checks them), random non-trivial weights (tests/test_export.py's nontrivial()), exported with dynamic shapes at
imgsz 64 and compared with PyTorch box by box at two image sizes and two batch sizes, with test_export's
tolerances (1e-3 px, 1e-5 score; OpenVINO's f32 kernels differ from PyTorch's by float32 rounding only, measured
here at most ~5e-4 px and 6e-7 in score). INT8: tests/data/yolov10t-shapes.pt (a trained model) in the deployment
table on 48 held-out shapes images (12 of them calibrate); its mAP50-95 must stay within INT8_REL_TOL of
OpenVINO FP32's.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torch
import yaml

from test_export import assert_same_detections, nontrivial
from ultralytics import YOLO
from ultralytics.models.yolo.detect import DetectionValidator
from ultralytics.nn.tasks import DetectionModel
from ultralytics.nn.weights import save_model
from ultralytics.utils import UserError

pytest.importorskip("openvino")
ATTENTION = ("SE", "CBAM", "ECA", "CoordAtt", "SimAM", "EMA", "LKA", "TripletAttention", "LSKA")
AFTER = (22, 20, 19, 16, 13, 8, 6, 4, 2)  # base rows, descending so that each insertion leaves the next in place
CKPT = "tests/data/yolov10t-shapes.pt"
# INT8 vs FP32 mAP50-95 on this 178k-parameter model and these 48 images: measured 0.7% relative loss with the
# 12 calibration images used here (0.150 -> 0.149) and 4.7% with 24 (0.143): tiny models quantise noisily (few
# channels per layer). 10% leaves room for that and for other CPUs' int8 kernels; a quantisation that loses more
# fails, and test_int8_keeps_head_in_float checks the ignored scope itself.
INT8_REL_TOL = 0.10


@pytest.fixture(scope="module")
def attention_model(tmp_path_factory):
    """(fused reference, OpenVINO folder) of yolov10n-PSALSKA + every attention baseline, nc=3, dynamic IR at 64."""
    from ultralytics.nn.yaml_edit import insert_rows

    d = "yolov10n-PSALSKA.yaml"
    for module, after in zip(ATTENTION, AFTER):
        d = insert_rows(d, module, after=(after,))
    torch.manual_seed(0)
    model = nontrivial(DetectionModel(d, nc=3, verbose=False))
    model.names = {0: "a", 1: "b", 2: "c"}
    pt = save_model(model, tmp_path_factory.mktemp("ov") / "att.pt")
    folder = YOLO(str(pt)).export(format="openvino", imgsz=64, dynamic=True)
    ref = copy.deepcopy(model).eval()
    ref.model[-1].nms = False
    ref.fuse(verbose=False)
    return ref, folder


@pytest.mark.parametrize("shape", [(1, 64, 64), (2, 96, 96), (2, 64, 96)])
def test_fp32_equals_pytorch(attention_model, shape):
    """Every attention baseline through OpenVINO FP32: the same detections as PyTorch, box by box."""
    ref_model, folder = attention_model
    ov = YOLO(folder).model
    x = torch.rand(shape[0], 3, *shape[1:], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = ref_model(x)
    out = ov(x)
    assert assert_same_detections(ref, out)[0] <= 1e-3


def test_metadata_round_trip_and_fp32_weights(attention_model):
    """metadata.yaml -> names, stride, imgsz, batch, dynamic; FP32 keeps f32 weights (no f16 constant in the IR)."""
    ref_model, folder = attention_model
    meta = yaml.safe_load(open(f"{folder}/metadata.yaml"))
    assert (meta["names"], meta["stride"], meta["imgsz"], meta["batch"]) == ({0: "a", 1: "b", 2: "c"}, 32, [64, 64], 1)
    assert (meta["task"], meta["dynamic"], meta["precision"], meta["format"]) == ("detect", True, "fp32", "openvino")
    for path in (folder, f"{folder}/att.xml"):  # the folder or its .xml
        m = YOLO(path).model
        assert m.names == ref_model.names and int(m.stride.max()) == 32 and m.imgsz == [64, 64] and m.dynamic
    types = {str(op.get_output_element_type(0)) for op in m.ov_model.get_ops() if op.get_type_name() == "Constant"}
    assert "<Type: 'float16'>" not in types and "<Type: 'float32'>" in types


def test_bad_requests(attention_model, tmp_path):
    """int8 without data, int8 for another format and TensorRT: clear errors before any work."""
    _, folder = attention_model
    pt = folder.replace("_openvino_model", ".pt")
    with pytest.raises(UserError, match="int8=True needs calibration images: give data="):
        YOLO(pt).export(format="openvino", int8=True)
    with pytest.raises(UserError, match="int8=True is for format=openvino"):
        YOLO(pt).export(format="onnx", int8=True, data="shapes.yaml")
    with pytest.raises(UserError, match="TensorRT.*not supported yet"):
        YOLO(pt).export(format="engine")
    with pytest.raises(UserError, match="holds no OpenVINO .xml"):
        YOLO(str(tmp_path))


def test_calibration_images(tiny_data, log_messages):
    """fraction picks the first images of the val split, letterboxed; fewer than NNCF's 300 warns; a fixed batch
    is filled by repeating images."""
    from ultralytics.engine.export_openvino import calibration_images

    batches = calibration_images(tiny_data, [64, 96], 0.5, 1)  # 8 val images -> 4
    assert len(batches) == 4 and batches[0].shape == (1, 3, 64, 96) and 0 <= batches[0].min() < batches[0].max() <= 1
    assert any("int8 calibration: 4 images" in m and "using the 4 there are" in m for m in log_messages)
    batches = calibration_images(tiny_data, [64, 64], 0.5, 3)  # 4 images in fixed batches of 3 -> 6 (2 repeated)
    assert [b.shape[0] for b in batches] == [3, 3] and (batches[1][1:] == batches[0][:2]).all()


@pytest.fixture(scope="module")
def table(make_shapes_yaml, tmp_path_factory):
    """The deployment table of the trained test model on 48 held-out shapes images at imgsz 128."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("nncf")
    from ultralytics.analysis.deploy import deploy_table

    data = make_shapes_yaml("ov_held_out", 2, 48, seed=7)
    return deploy_table(CKPT, data, DetectionValidator, imgsz=128, batch=4, warmup_runs=1, timed_runs=2, fraction=0.25,
                        project=str(tmp_path_factory.mktemp("deploy")), verbose=False)


def test_table_one_row_per_format(table):
    """PyTorch, TorchScript, ONNX Runtime, OpenVINO FP32 and INT8: one row each, each with its own mAP; the FP32
    files score what the .pt scores (same detections), INT8 within INT8_REL_TOL of FP32."""
    from ultralytics.analysis.deploy import markdown_table

    assert [r["format"] for r in table] == ["PyTorch", "TorchScript", "ONNX Runtime", "OpenVINO FP32",
                                            "OpenVINO INT8"]
    maps = {r["format"]: r["map50_95"] for r in table}
    assert maps["PyTorch"] > 0.1  # the trained model (0.15 on its own val split)
    for fmt in ("TorchScript", "ONNX Runtime", "OpenVINO FP32"):
        assert maps[fmt] == pytest.approx(maps["PyTorch"], abs=1e-3), fmt
    assert maps["OpenVINO INT8"] >= maps["OpenVINO FP32"] * (1 - INT8_REL_TOL)
    assert maps["OpenVINO INT8"] != maps["OpenVINO FP32"]  # it was quantised
    assert all(r["ms_b1"] > 0 and r["ms_bn"] > 0 and r["batch"] == 4 and r["size_mb"] > 0 for r in table)
    assert table[-1]["file"].endswith("_int8_openvino_model") and table[-2]["file"].endswith("-shapes_openvino_model")
    md = markdown_table(table)
    assert md.count("\n") == 6 and "ms/image, batch 4" in md


def test_int8_keeps_head_in_float(table):
    """The INT8 IR has quantised convolutions, but none of the head's last convolutions reads a quantised input."""
    from openvino import Core

    ir = Core().read_model(next(Path(table[-1]["file"]).glob("*.xml")))
    fq = [op for op in ir.get_ordered_ops() if op.get_type_name() == "FakeQuantize"]
    assert len(fq) > 20
    head_convs = [op for op in ir.get_ordered_ops() if op.get_type_name() == "Convolution"
                  and re.search(r"one2one_cv[23]\.\d+\.2/", op.get_friendly_name())]
    assert len(head_convs) == 6  # 3 levels x (box, class)
    for op in head_convs:
        assert op.input_value(0).get_node().get_type_name() != "FakeQuantize", op.get_friendly_name()


def test_missing_package_row(tmp_path, monkeypatch):
    """A format whose package is missing is a row naming the pip command (no export, no mAP)."""
    import importlib.util

    from ultralytics.analysis import deploy

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nncf" else real(name, *a))
    rows = deploy.deploy_table(CKPT, "shapes.yaml", DetectionValidator, formats=["OpenVINO INT8"], project=str(tmp_path), verbose=False)
    assert len(rows) == 1 and rows[0]["note"] == "not installed: pip install nncf" and rows[0]["map50_95"] == ""
    assert "not installed: pip install nncf" in deploy.markdown_table(rows)
    with pytest.raises(UserError, match="not a .pt file"):
        deploy.deploy_table("yolov10n.yaml", "shapes.yaml", DetectionValidator, project=str(tmp_path))


def test_onnx_simplified_by_default(tmp_path, log_messages):
    """simplify=True is the default: onnxslim runs and the log gives the node counts; the file has the fewer nodes."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxslim")
    pt = tmp_path / "t.pt"
    pt.write_bytes(Path(CKPT).read_bytes())
    f = YOLO(str(pt)).export(format="onnx", imgsz=64)
    found = [tuple(map(int, c.groups())) for m in log_messages if (c := re.search(r"onnxslim: (\d+) -> (\d+)", m))]
    assert len(found) == 1
    before, after = found[0]
    assert 0 < after < before and after == len(onnx.load(f).graph.node)


def test_half_stores_fp16_weights(tmp_path):
    """half=True on the CPU: the IR's weights are FP16 (about half the .bin of FP32), its metadata says fp16."""
    pt = tmp_path / "h.pt"
    pt.write_bytes(Path(CKPT).read_bytes())
    folder = Path(YOLO(str(pt)).export(format="openvino", imgsz=64, half=True))
    m = YOLO(str(folder)).model
    types = {str(op.get_output_element_type(0)) for op in m.ov_model.get_ops() if op.get_type_name() == "Constant"}
    assert "<Type: 'float16'>" in types and m.precision == "fp16" and folder.name == "h_openvino_model"
    params = m.metadata["params"]
    assert 2 * params <= (folder / "h.bin").stat().st_size < 3 * params  # 2 bytes per weight (+ small constants)


def test_ignored_scope_patterns():
    """int8_head=last keeps only the head's last 1x1 convs (and decoding, top-k) in float; all keeps every head conv;
    the backbone and neck are quantised either way."""
    nncf = pytest.importorskip("nncf")
    from ultralytics.engine.export_openvino import _matches, ignored_scope

    names = {"last": "__module.model.model.23.one2one_cv3.1.2/aten::_convolution/Convolution",
             "inner": "__module.model.model.23.one2one_cv3.1.0.1.conv/aten::_convolution/Convolution",
             "dfl": "__module.model.model.23.dfl.conv/aten::_convolution/Convolution",
             "topk": "aten::topk/TopK", "neck": "__module.model.model.22.cv1.conv/aten::_convolution/Convolution",
             "other_head_index": "__module.model.model.2.one2one_cv3.1.2/aten::_convolution/Convolution"}
    for whole, kept in ((False, {"last", "dfl", "topk"}), (True, {"last", "inner", "dfl", "topk"})):
        _, patterns = ignored_scope(23, nncf, whole_head=whole)
        assert {k for k, n in names.items() if _matches(n, patterns)} == kept, whole


@pytest.mark.parametrize("kind", ["p2", "pruned"])
def test_p2_and_pruned_models_export_and_match(tmp_path, kind):
    """A P2 model (stride-4 level, four head inputs) and a pruned model (its stored architecture, no YAML) export to
    OpenVINO FP32 and give PyTorch's detections box by box."""
    torch.manual_seed(0)
    if kind == "p2":
        model = nontrivial(DetectionModel("yolov10n-p2-LSKA.yaml", nc=3, verbose=False))
    else:
        pytest.importorskip("torch_pruning")
        from ultralytics.nn.prune import prune_model

        model, _ = prune_model(nontrivial(DetectionModel("yolov10n-PSALSKA.yaml", nc=3, verbose=False)), ratio=0.3,
                               verbose=False)
    model.names = {0: "a", 1: "b", 2: "c"}
    pt = save_model(model, tmp_path / f"{kind}.pt")
    folder = YOLO(str(pt)).export(format="openvino", imgsz=64)
    ref = copy.deepcopy(YOLO(str(pt)).model).eval()  # reloaded: a pruned checkpoint rebuilds its own shape
    ref.model[-1].nms = False
    ref.fuse(verbose=False)
    assert sum(p.numel() for p in ref.parameters()) == sum(p.numel() for p in copy.deepcopy(model).fuse(
        verbose=False).parameters())
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = ref(x)
    assert assert_same_detections(expected, YOLO(folder).model(x))[0] <= 1e-3
