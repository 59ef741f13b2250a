"""Export to ONNX / TorchScript, and running the files through the backend interface.

The model is yolov10n-LSKA with random weights made non-trivial: random BN statistics and random head
outputs, so scores spread over (0, 1) and boxes vary from anchor to anchor (a freshly built model gives
nearly equal scores everywhere, which would hide ordering errors).

Detections through a file are compared with PyTorch's row by row: a one-to-one pairing in which every pair has
the same class, scores within SCORE_TOL and every box coordinate within BOX_TOL pixels. Both runtimes compute in
float32 but sum the convolutions in another order, so features differ by a few float32 ulps (relative ~1e-7)
and these differences grow through ~100 layers; measured here (imgsz <= 160, boxes up to ~160 px, where one
float32 ulp is 1.5e-5 px): ONNX Runtime's boxes differ from PyTorch's by at most 1.5e-4 px and its scores by
5e-7; TorchScript's are bit-identical on the model's own tensors and within 3e-5 px through predict (the .pt
is fused there). BOX_TOL = 1e-3 px and SCORE_TOL = 1e-5 leave a factor of 6 and 20 for other CPUs and library
versions and are still far below what a wrong box (a swapped coordinate, a wrong stride or letterbox offset,
another anchor: >= 1 px) or a wrong class would give; `-s` prints the differences.

The ONNX tests import onnx/onnxruntime themselves (pytest.importorskip), so without them only those skip.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from scipy.optimize import linear_sum_assignment

from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel
from ultralytics.nn.weights import save_model
from ultralytics.utils import UserError

IMGSZ = 128
GAIN = 1.5
BOX_TOL = 1e-3  # pixels, each box coordinate (see the module docstring)
SCORE_TOL = 1e-5
FORMATS = ["onnx", "torchscript"]


def needs(fmt: str) -> None:
    """Skip the calling test when the runtime of `fmt` is missing (only ONNX needs packages of its own)."""
    if fmt == "onnx":
        pytest.importorskip("onnx")
        pytest.importorskip("onnxruntime")


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
def exports(lska):
    """export(fmt) -> path of the dynamic export of the lska model at imgsz 128 (made once per format)."""
    _, pt = lska
    done = {}

    def export(fmt: str) -> str:
        needs(fmt)
        if fmt not in done:
            done[fmt] = YOLO(pt).export(format=fmt, imgsz=IMGSZ, dynamic=True)
        return done[fmt]

    return export


def pair_rows(ref: torch.Tensor, out: torch.Tensor) -> tuple[float, float]:
    """ref, out (K, 6) rows [x1, y1, x2, y2, score, class]: assert a one-to-one pairing in which each pair has the
    same class, scores within SCORE_TOL and boxes within BOX_TOL px (rows of nearly equal score may come in either
    order, so the pairing is solved, not read off the order); returns (max box, max score difference) of it."""
    assert ref.shape == out.shape, (ref.shape, out.shape)
    ref, out = ref.double(), out.double()
    dbox = (ref[:, None, :4] - out[None, :, :4]).abs().amax(-1)  # (K, K)
    dscore = (ref[:, None, 4] - out[None, :, 4]).abs()
    ok = (dbox <= BOX_TOL) & (dscore <= SCORE_TOL) & (ref[:, None, 5] == out[None, :, 5])
    rows, cols = linear_sum_assignment((~ok).double().numpy())
    bad = [(int(r), int(c)) for r, c in zip(rows, cols) if not ok[r, c]]
    assert not bad, f"{len(bad)} of {len(ref)} PyTorch rows have no partner, e.g. {ref[bad[0][0]].tolist()}"
    return float(dbox[rows, cols].max()), float(dscore[rows, cols].max())


def assert_same_detections(ref: torch.Tensor, out: torch.Tensor) -> tuple[float, float]:
    """ref (B, K, 6) from PyTorch, out (B, 300, 6) from a file; K = min(300, anchors); returns the largest
    (box, score) difference.

    On images with fewer anchors than max_det (K < 300) the file gives 300 rows, of which the first K are
    PyTorch's (the rest are more (anchor, class) pairs, then zero-score padding); only those K are compared,
    row by row (pair_rows).
    """
    k = ref.shape[1]
    assert out.shape == (ref.shape[0], 300, 6)
    diffs = [pair_rows(r, o) for o, r in zip(out[:, :k], ref)]
    return max(d for d, _ in diffs), max(d for _, d in diffs)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("shape", [(1, 128, 128), (3, 128, 128), (3, 96, 160), (1, 64, 64)])
def test_export_equals_pytorch(lska, exports, fmt, shape):
    """Dynamic batch and image size: batch 1 and 3, the export size, another size, and A = 84 < max_det."""
    ref_model, _ = lska
    model = YOLO(exports(fmt)).model
    x = torch.rand(shape[0], 3, *shape[1:], generator=torch.Generator().manual_seed(sum(shape)))
    with torch.no_grad():
        ref, out = ref_model(x), model(x)
    assert ref[..., 4].std() > 0.01  # the model is non-trivial: scores spread
    dbox, dscore = assert_same_detections(ref, out)
    print(f"{fmt} {shape}: max difference {dbox:.2e} px, score {dscore:.1e}")


def test_static_export_batch3(lska, tmp_path):
    """dynamic=False batch=3: the fixed graph equals PyTorch; the backend runs a batch of 5 in chunks of 3."""
    import shutil

    needs("onnx")
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


@pytest.mark.parametrize("fmt", FORMATS)
def test_metadata_and_files(lska, exports, fmt):
    """Names, stride, imgsz, task and the fused parameter count are stored in each file; paths sit beside the .pt."""
    ref_model, pt = lska
    f = exports(fmt)
    assert f == str(pt.with_suffix(f".{fmt}"))
    if fmt == "onnx":
        import onnx

        meta = {p.key: json.loads(p.value) for p in onnx.load(f).metadata_props}
        assert meta["names"] == {str(i): f"c{i}" for i in range(6)}
        assert (meta["stride"], meta["imgsz"], meta["task"], meta["dynamic"]) == (32, [IMGSZ, IMGSZ], "detect", True)
        assert meta["params"] == sum(p.numel() for p in ref_model.parameters())
    m = YOLO(f).model
    assert m.names == {i: f"c{i}" for i in range(6)} and int(m.stride.max()) == 32 and m.imgsz == [128, 128]


def test_onnx_input_is_dynamic(exports):
    """The ONNX graph's input and output have named (dynamic) batch and image axes, not constants."""
    f = exports("onnx")
    import onnx

    g = onnx.load(f).graph
    dims = [d.dim_param or d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    out = [d.dim_param or d.dim_value for d in g.output[0].type.tensor_type.shape.dim]
    assert out[0] == "batch" and out[2] == 6


def result_rows(r) -> torch.Tensor:
    """(N, 6) [x1, y1, x2, y2, conf, class] of a Results, boxes in the original image's pixels."""
    return torch.cat([r.boxes.xyxy, r.boxes.conf[:, None], r.boxes.cls[:, None]], 1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_predict_through_backend(lska, exports, fmt):
    """YOLO('x.onnx').predict gives the .pt's detections box by box and class by class, mapped to the original
    image (two shapes: letterbox padding on either side)."""
    _, pt = lska
    f = exports(fmt)
    rng = np.random.default_rng(0)
    ims = [rng.integers(0, 255, (100, 140, 3), dtype=np.uint8), rng.integers(0, 255, (90, 90, 3), dtype=np.uint8)]
    ref = YOLO(pt).predict(ims, imgsz=IMGSZ, conf=0.5)
    out = YOLO(f).predict(ims, conf=0.5)  # imgsz from the file's metadata
    assert len(ref) == len(out) == 2
    for a, b, im in zip(ref, out, ims):
        assert len(a) > 5 and len(set(a.boxes.cls.tolist())) > 1  # many boxes of several classes to compare
        dbox, dscore = pair_rows(result_rows(a), result_rows(b))
        print(f"{fmt} {im.shape[1]}x{im.shape[0]}: {len(a)} boxes, max difference {dbox:.2e} px, score {dscore:.1e}")
        assert a.boxes.xyxy[:, 2].max() > 0.5 * im.shape[1]  # boxes in the original image, not the 128 letterbox


def test_pair_rows_can_fail():
    """The comparison refuses a box moved by 2 * BOX_TOL, another class, and a duplicated row."""
    ref = torch.tensor([[10.0, 20.0, 50.0, 60.0, 0.9, 1.0], [12.0, 22.0, 52.0, 62.0, 0.9, 2.0]])
    assert pair_rows(ref, ref.flip(0)) == (0.0, 0.0)  # equal scores: either order
    for bad in (ref + torch.tensor([2 * BOX_TOL, 0, 0, 0, 0, 0]), ref * torch.tensor([1, 1, 1, 1, 1, 0]),
                ref[[0, 0]]):
        with pytest.raises(AssertionError, match="have no partner"):
            pair_rows(ref, bad)


def test_val_onnx_equals_pt(lska, exports, tmp_path):
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
    f_onnx = exports("onnx")
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
    m_pt, m_onnx = YOLO(pt).val(**args), YOLO(f_onnx).val(**args)
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
    needs("onnx")
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

    needs("onnx")
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

    needs("onnx")  # export.py's default format
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
