"""Export to ONNX / TorchScript, and running the files through the backend interface.

The model is yolov10n-LSKA with random weights made non-trivial: random BN statistics and random head
outputs, so scores spread over (0, 1) and boxes vary from anchor to anchor (a freshly built model gives
nearly equal scores everywhere, which would hide ordering errors).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel
from ultralytics.nn.weights import save_model
from ultralytics.utils import UserError

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

IMGSZ = 128
GAIN = 1.5


def nontrivial(model: DetectionModel, seed: int = 0) -> DetectionModel:
    """Random weights made non-trivial (in place); returns the model in eval mode.

    A freshly built model's features fade to nearly constant maps layer by layer (PyTorch's default conv
    init shrinks the variance), so its scores tie at many anchors. Here every conv is re-drawn with
    variance-preserving (fan-in) init and the BN affine parameters are random: features vary across the
    image, scores spread over (0, 1), boxes vary from anchor to anchor.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d) and m.weight.requires_grad:
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * GAIN / fan_in ** 0.5)
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
        head = model.model[-1]
        for seq in list(head.one2one_cv2) + list(head.one2one_cv3):
            seq[-1].bias.copy_(torch.randn(seq[-1].bias.shape, generator=g))
    return model.eval()


@pytest.fixture(scope="module")
def lska(tmp_path_factory):
    """(fused reference model, path of its .pt) for yolov10n-LSKA with nc=6 and non-trivial weights."""
    torch.manual_seed(0)  # whatever nontrivial() does not re-draw is the same in every run
    model = nontrivial(DetectionModel("yolov10n-LSKA.yaml", nc=6, verbose=False))
    model.names = {i: f"c{i}" for i in range(6)}
    pt = save_model(model, tmp_path_factory.mktemp("export") / "lska.pt")
    return copy.deepcopy(model).fuse(verbose=False).eval(), pt


@pytest.fixture(scope="module")
def exported(lska):
    """{format: path} of the dynamic ONNX and TorchScript exports of the lska model at imgsz 128."""
    _, pt = lska
    return {fmt: YOLO(pt).export(format=fmt, imgsz=IMGSZ, dynamic=True) for fmt in ("onnx", "torchscript")}


def assert_same_detections(ref: torch.Tensor, out: torch.Tensor, atol_score: float = 1e-4) -> None:
    """ref (B, K, 6) from PyTorch, out (B, 300, 6) from a file; K = min(300, anchors).

    On images with fewer anchors than max_det (K < 300) the file gives 300 rows, of which the first K are
    PyTorch's (the rest are more (anchor, class) pairs, then zero-score padding); only those K are compared.

    Scores (sorted) equal within atol_score; each row's box and class equal those of a PyTorch row of the
    same score (rows of nearly equal score may come in either order).
    """
    k = ref.shape[1]
    assert out.shape == (ref.shape[0], 300, 6)
    out = out[:, :k]
    assert torch.allclose(out[..., 4], ref[..., 4], atol=atol_score, rtol=0)
    for o, r in zip(out, ref):  # (K, 6) each
        same_score = (o[:, None, 4] - r[None, :, 4]).abs() < 1e-5  # (K, K)
        same_box = ((o[:, None, :4] - r[None, :, :4]).abs().amax(-1) < 2e-3) & (o[:, None, 5] == r[None, :, 5])
        assert (same_score & same_box).any(1).all()


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("shape", [(1, 128, 128), (3, 128, 128), (3, 96, 160), (1, 64, 64)])
def test_export_equals_pytorch(lska, exported, fmt, shape):
    """Dynamic batch and image size: batch 1 and 3, the export size, another size, and A = 84 < max_det."""
    ref_model, _ = lska
    model = YOLO(exported[fmt]).model
    x = torch.rand(shape[0], 3, *shape[1:], generator=torch.Generator().manual_seed(sum(shape)))
    with torch.no_grad():
        ref, out = ref_model(x), model(x)
    assert ref[..., 4].std() > 0.01  # the model is non-trivial: scores spread
    assert_same_detections(ref, out)


def test_static_export_batch3(lska, tmp_path):
    """dynamic=False batch=3: the fixed graph equals PyTorch; the backend runs a batch of 5 in chunks of 3."""
    import shutil

    ref_model, pt = lska
    pt = shutil.copy(pt, tmp_path / "static.pt")  # its .onnx is written beside it, not over the module's file
    f = YOLO(pt).export(format="onnx", imgsz=IMGSZ, batch=3, dynamic=False)
    model = YOLO(f).model
    assert not model.dynamic and model.batch == 3
    x = torch.rand(5, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert_same_detections(ref_model(x), model(x))
    with pytest.raises(UserError, match="at most 128x128"):
        model(torch.rand(1, 3, 160, 128))


def test_metadata_and_files(lska, exported):
    """Names, stride, imgsz, task and the fused parameter count are stored in each file; paths sit beside the .pt."""
    import onnx

    ref_model, pt = lska
    assert exported["onnx"] == str(pt.with_suffix(".onnx"))
    assert exported["torchscript"] == str(pt.with_suffix(".torchscript"))
    meta = {p.key: json.loads(p.value) for p in onnx.load(exported["onnx"]).metadata_props}
    assert meta["names"] == {str(i): f"c{i}" for i in range(6)}
    assert (meta["stride"], meta["imgsz"], meta["task"], meta["dynamic"]) == (32, [IMGSZ, IMGSZ], "detect", True)
    assert meta["params"] == sum(p.numel() for p in ref_model.parameters())
    for f in exported.values():
        m = YOLO(f).model
        assert m.names == {i: f"c{i}" for i in range(6)} and int(m.stride.max()) == 32 and m.imgsz == [128, 128]


def test_onnx_input_is_dynamic(exported):
    """The ONNX graph's input and output have named (dynamic) batch and image axes, not constants."""
    import onnx

    g = onnx.load(exported["onnx"]).graph
    dims = [d.dim_param or d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    out = [d.dim_param or d.dim_value for d in g.output[0].type.tensor_type.shape.dim]
    assert out[0] == "batch" and out[2] == 6


def test_predict_through_backend(lska, exported):
    """YOLO('x.onnx').predict gives the .pt's detections (same boxes mapped to the original image)."""
    _, pt = lska
    rng = np.random.default_rng(0)
    ims = [rng.integers(0, 255, (100, 140, 3), dtype=np.uint8), rng.integers(0, 255, (90, 90, 3), dtype=np.uint8)]
    ref = YOLO(pt).predict(ims, imgsz=IMGSZ, conf=0.5)
    for f in exported.values():
        out = YOLO(f).predict(ims, conf=0.5)  # imgsz from the file's metadata
        for a, b in zip(ref, out):
            assert len(a) == len(b) > 0
            assert torch.allclose(a.boxes.conf, b.boxes.conf, atol=1e-4)


def test_val_onnx_equals_pt(lska, exported, tmp_path):
    """mAP of the ONNX file equals that of the .pt within 0.001, on a dataset where it is high.

    A random model scores ~0 mAP on real labels, which would make any comparison pass. So the labels of the
    dataset are the .pt's own 3 best detections on each image (predicted through PyTorch): the .pt then
    scores well, and the ONNX file only does as well if its boxes, scores and classes are the same. The
    images are noise: uniform regions give exactly equal scores at many anchors, whose order top-k may
    break either way (a tie, not a difference between the runtimes).
    """
    import cv2
    import yaml

    _, pt = lska
    images = tmp_path / "own" / "images" / "val"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(8):
        cv2.imwrite(str(images / f"im{i}.png"), rng.integers(0, 255, (IMGSZ, IMGSZ, 3), dtype=np.uint8))
    labels = images.parent.parent / "labels" / "val"
    labels.mkdir(parents=True)
    for r in YOLO(pt).predict(str(images), imgsz=IMGSZ, conf=0.0):
        top = r[r.boxes.conf.argsort(descending=True)[:3]]
        (labels / f"{Path(r.path).stem}.txt").write_text("".join(f"{line}\n" for line in top.to_txt_lines()))
    data = tmp_path / "own.yaml"
    data.write_text(yaml.safe_dump({"path": str(images.parent.parent), "train": "images/val", "val": "images/val",
                                    "names": {i: f"c{i}" for i in range(6)}}))
    args = dict(data=str(data), imgsz=IMGSZ, batch=4, workers=0, plots=False, verbose=False, project=str(tmp_path))
    m_pt, m_onnx = YOLO(pt).val(**args), YOLO(exported["onnx"]).val(**args)
    assert m_pt.box.map50 > 0.5
    assert abs(m_pt.box.map - m_onnx.box.map) < 1e-3 and abs(m_pt.box.map50 - m_onnx.box.map50) < 1e-3


def test_cli_export(lska, tmp_path):
    """`yolo export model=x.pt format=torchscript` writes the file beside the weights and returns its path."""
    import shutil

    from ultralytics.cli import entrypoint

    _, pt = lska
    pt = shutil.copy(pt, tmp_path / "cli.pt")
    out = entrypoint(["export", f"model={pt}", "format=torchscript", "imgsz=64"])
    assert out == str(tmp_path / "cli.torchscript") and Path(out).stat().st_size > 1e6


def test_bad_inputs(lska, tmp_path):
    """Unknown format, nms=True, an opset torch cannot write, half on CPU, ONNX without our metadata."""
    import onnx

    _, pt = lska
    model = YOLO(pt)
    with pytest.raises(UserError, match="format"):
        model.export(format="tflite")
    with pytest.raises(UserError, match="nms=True is not supported"):
        model.export(format="onnx", nms=True)
    with pytest.raises(UserError, match="opset=99.*writes ONNX opsets 7 to"):
        model.export(format="onnx", opset=99)
    with pytest.raises(UserError, match="torch could not write the model as ONNX opset 7: .*upsample.*try opset=17"):
        model.export(format="onnx", opset=7, imgsz=64)  # in torch's range, but Upsample has no opset-7 form
    with pytest.raises(UserError, match="half=True export needs a CUDA device"):
        model.export(format="onnx", half=True, device="cpu")
    try:
        import onnxslim  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match="simplify=True needs the 'onnxslim' package.*pip install onnxslim"):
            model.export(format="onnx", simplify=True)
    bare = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["images"], ["output0"])], "g",
        [onnx.helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, [1, 3, 64, 64])],
        [onnx.helper.make_tensor_value_info("output0", onnx.TensorProto.FLOAT, [1, 3, 64, 64])]))
    onnx.save(bare, tmp_path / "foreign.onnx")
    with pytest.raises(UserError, match="foreign.onnx.*lacks the metadata.*missing: task, names, stride, imgsz"):
        YOLO(tmp_path / "foreign.onnx")
    with pytest.raises(UserError, match="unknown format '.tflite'|must be a model YAML"):
        YOLO(tmp_path / "m.tflite")
    with pytest.raises(UserError, match="exported ONNX file"):
        YOLO(pt.with_suffix(".onnx")).train()


def test_val_static_onnx(lska, tmp_path):
    """A fixed-shape ONNX file (dynamic=False) validates too: square letterboxes of its size, batches in chunks."""
    import shutil

    import cv2

    from ultralytics.nn.backend import ExportedModel

    _, pt = lska
    pt = shutil.copy(pt, tmp_path / "static.pt")
    f = YOLO(pt).export(format="onnx", imgsz=64, batch=2, dynamic=False)
    seen = []

    def spy(module, inputs, output):
        seen.append(tuple(inputs[0].shape))

    model = YOLO(f)
    assert isinstance(model.model, ExportedModel)
    model.model.register_forward_hook(spy)
    images = tmp_path / "ds" / "images" / "val"
    images.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(3):
        cv2.imwrite(str(images / f"im{i}.png"), rng.integers(0, 255, (48 + 16 * i, 64, 3), dtype=np.uint8))
    (tmp_path / "ds" / "labels" / "val").mkdir(parents=True)
    for i in range(3):
        (tmp_path / "ds" / "labels" / "val" / f"im{i}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    data = tmp_path / "ds.yaml"
    data.write_text(f"path: {tmp_path / 'ds'}\ntrain: images/val\nval: images/val\nnames: {{0: a, 1: b, 2: c, 3: d, "
                    "4: e, 5: f}\n")
    m = model.val(data=str(data), batch=3, workers=0, plots=False, verbose=False, project=str(tmp_path))
    assert seen == [(3, 3, 64, 64)] and m.box.map >= 0


def test_export_script(lska, tmp_path):
    """`python export.py model=x.pt format=onnx ...` (the root script) writes x.onnx and prints its path."""
    import shutil
    import subprocess
    import sys

    from ultralytics.utils import REPO_ROOT

    _, pt = lska
    pt = shutil.copy(pt, tmp_path / "script.pt")
    out = subprocess.run([sys.executable, str(REPO_ROOT / "export.py"), f"model={pt}", "imgsz=64", "dynamic=True"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"exported {tmp_path / 'script.onnx'}" in out.stdout and YOLO(tmp_path / "script.onnx").model.dynamic
    bad = subprocess.run([sys.executable, str(REPO_ROOT / "export.py"), f"model={pt}", "format=tflite"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert bad.returncode == 1 and bad.stderr.startswith("ERROR: ")  # one line naming the key and the choices
    assert "format='tflite'" in bad.stderr and "torchscript/onnx" in bad.stderr and "Traceback" not in bad.stderr
