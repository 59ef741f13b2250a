"""P2 models: four head levels (strides 4, 8, 16, 32), head widths as the base model's, and the shipped YAMLs
equal to the rows worked out here (the P2 path) plus insert_rows (their LSKA variants)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from ultralytics.nn.tasks import MODELS_DIR, DetectionModel, yaml_model_load
from ultralytics.nn.yaml_edit import insert_rows

SCALES = "nsmblx"
P2_NOTE = """YOLOv10 with a P2 (stride 4) output, scale {s}: the head reads four levels, strides 4, 8, 16, 32.
The rows are yolov10{s}.yaml's with a P2 path added (tests/test_p2.py p2_rows): the top-down path goes one
step further (rows 17-19: upsample the P3 map, concat backbone row 2, C2f -> P2 output), and the bottom-up
path starts from P2 (rows 20-22: strided Conv, concat row 16, C2f -> P3 output). Rows 23-28 are the base
model's bottom-up rows 17-22, renumbered.
Head widths: v10Detect [nc, 1] takes its hidden widths (box c2, class c3) from input level 1, the P3 map,
as wide as the base model's level 0. Upstream's rule (level 0) would take them from the thinner P2 map and
narrow every branch, P3-P5 included (class width 128 -> 80 at s, 320 -> 160 at x); with [nc, 1] the P3-P5
branches are exactly the base model's and only the P2 branch is new (docs/13-small-objects.md, P2 models)."""
LSKA_NOTE = """YOLOv10 P2 + LSKA after each of the four neck outputs, scale {s}: rows 20, 24, 28 and 32 (k_size 7)
follow the P2, P3, P4 and P5 outputs of yolov10{s}-p2.yaml and the head reads them. Written by
ultralytics.nn.yaml_edit.insert_rows("yolov10{s}-p2.yaml", "LSKA", [7], after=[19, 22, 25, 28])."""

UPSAMPLE = [-1, 1, "nn.Upsample", ["None", 2, "nearest"]]


def p2_rows(base: dict) -> dict:
    """{'backbone', 'head'} of the P2 model made from a base yolov10 dict (rows 0..23, head reads 16, 19, 22).

    The reference the shipped yolov10*-p2.yaml are compared with: every base row is kept with its module and
    args; the P2 rows are added between the top-down and the bottom-up path.
    """
    b = copy.deepcopy(base["backbone"] + base["head"])
    assert len(b) == 24 and b[23][0] == [16, 19, 22]
    head = b[11:17] + [
        UPSAMPLE,  # 17: P3 (row 16) x2
        [[-1, 2], 1, "Concat", [1]],  # 18: + backbone P2 (row 2)
        [-1, 3, "C2f", [128]],  # 19: P2 output (stride 4)
        [-1, 1, "Conv", [128, 3, 2]],  # 20: down to stride 8
        [[-1, 16], 1, "Concat", [1]],  # 21: + top-down P3
        [-1, 3, "C2f", [256]],  # 22: P3 output
        b[17],  # 23: base 17 (Conv), reads the P3 output
        [[-1, 13], 1, "Concat", [1]],  # 24: base 18
        b[19],  # 25: P4 output (base 19)
        b[20],  # 26: base 20 (SCDown)
        [[-1, 10], 1, "Concat", [1]],  # 27: base 21
        b[22],  # 28: P5 output (base 22)
        [[19, 22, 25, 28], 1, "v10Detect", ["nc", 1]],  # 29: head, widths from level 1 (P3)
    ]
    return {"backbone": b[:11], "head": head}


def build(name: str, **kw) -> DetectionModel:
    return DetectionModel(name, verbose=False, **kw)


@pytest.mark.parametrize("scale", SCALES)
def test_shipped_yamls_equal_the_reference_rows(scale):
    """yolov10{s}-p2.yaml = p2_rows(base); yolov10{s}-p2-LSKA.yaml = insert_rows(p2, LSKA after the 4 outputs)."""
    base = yaml_model_load(f"yolov10{scale}.yaml")
    p2 = yaml_model_load(f"yolov10{scale}-p2.yaml")
    ref = p2_rows(base)
    assert p2["backbone"] == ref["backbone"] and p2["head"] == ref["head"]
    assert p2["scales"] == base["scales"] and p2["nc"] == base["nc"]
    made = insert_rows(f"yolov10{scale}-p2.yaml", "LSKA", [7], after=[19, 22, 25, 28])
    lska = yaml_model_load(f"yolov10{scale}-p2-LSKA.yaml")
    for k in ("backbone", "head", "scales", "nc"):
        assert made[k] == lska[k], k
    assert lska["head"][-1] == [[20, 24, 28, 32], 1, "v10Detect", ["nc", 1]]
    assert [lska["head"][i - 11] for i in (20, 24, 28, 32)] == [[-1, 1, "LSKA", [7]]] * 4


@pytest.mark.parametrize("name", ["yolov10n-p2.yaml", "yolov10s-p2-LSKA.yaml"])
def test_strides_and_head_input_shapes(name):
    """Strides (4, 8, 16, 32); the head reads (32, 64, 128, 256) channels at n and (64, 128, 256, 512) at s."""
    m = build(name).eval()
    assert m.stride.tolist() == [4.0, 8.0, 16.0, 32.0]
    shapes = []
    hook = m.model[-1].register_forward_pre_hook(lambda mod, inp: shapes.append([tuple(t.shape) for t in inp[0]]))
    with torch.no_grad():
        y = m(torch.zeros(1, 3, 64, 96))
    hook.remove()
    c = 32 if name.startswith("yolov10n") else 64
    assert shapes == [[(1, c, 16, 24), (1, 2 * c, 8, 12), (1, 4 * c, 4, 6), (1, 8 * c, 2, 3)]]
    assert tuple(y.shape) == (1, 300, 6)  # 384 + 96 + 24 + 6 = 510 anchors, top 300
    out = m.train()(torch.zeros(1, 3, 64, 96))
    assert [tuple(t.shape[2:]) for t in out["one2many"]] == [(16, 24), (8, 12), (4, 6), (2, 3)]
    assert [t.shape[1] for t in out["one2one"]] == [144] * 4  # 4 * reg_max + nc


@pytest.mark.parametrize("scale", SCALES)
def test_p3_p5_branches_equal_the_base_models(scale):
    """Head levels 1-3 of the P2 model have exactly the base model's levels 0-2 (names and shapes), both branches;
    level 0 (P2) reads half the P3 channels at the same hidden widths. Upstream's rule (level 0) would not."""
    if scale in "lx" and not __import__("os").environ.get("YOLO_SCAN_ALL"):
        pytest.skip("l and x take seconds to build on 2 cores; YOLO_SCAN_ALL=1 runs them")
    base, p2 = build(f"yolov10{scale}.yaml").model[-1], build(f"yolov10{scale}-p2.yaml").model[-1]

    def shapes(branch, i):
        return [(k, tuple(v.shape)) for k, v in branch[i].state_dict().items()]

    for name in ("cv2", "cv3", "one2one_cv2", "one2one_cv3"):
        for i in range(3):
            assert shapes(getattr(p2, name), i + 1) == shapes(getattr(base, name), i), (name, i)
    c_p3 = p2.cv2[1][0].conv.in_channels
    assert p2.cv2[0][0].conv.in_channels * 2 == c_p3
    assert p2.cv3[0][0][1].conv.out_channels == base.cv3[0][0][1].conv.out_channels  # class width c3
    assert p2.width_level == 1 and base.width_level == 0


def test_upstream_width_rule_would_narrow_the_branches():
    """The same P2 rows with `[nc]` (widths from level 0, P2): the s model's class width drops 128 -> 80."""
    d = yaml_model_load("yolov10s-p2.yaml")
    d["head"][-1] = [[19, 22, 25, 28], 1, "v10Detect", ["nc"]]
    narrow, wide = build(d).model[-1], build("yolov10s-p2.yaml").model[-1]
    assert [wide.cv3[i][0][1].conv.out_channels for i in range(4)] == [128] * 4
    assert [narrow.cv3[i][0][1].conv.out_channels for i in range(4)] == [80] * 4


def test_base_models_keep_their_parameters():
    """The head's width_level default leaves the 3-level models as they were (counts from test_model_scan)."""
    assert sum(p.numel() for p in build("yolov10n.yaml").parameters()) == 2_775_520
    assert sum(p.numel() for p in build("yolov10n-LSKA.yaml").parameters()) == 2_869_152


def test_bad_width_level_names_the_row():
    from ultralytics.utils import UserError

    d = yaml_model_load("yolov10n-p2.yaml")
    d["head"][-1] = [[19, 22, 25, 28], 1, "v10Detect", ["nc", 4]]
    with pytest.raises(UserError, match=r"row 29 .*width_level 4 must index one of the 4 input levels"):
        build(d)


def test_p2_trains_validates_and_exports(tiny_data, tmp_path):
    """One tiny epoch at imgsz 64, validation of the result, ONNX and TorchScript exports equal to PyTorch."""
    from ultralytics import YOLO

    model = YOLO("yolov10n-p2.yaml")
    model.train(data=tiny_data, project=str(tmp_path), name="p2", imgsz=64, batch=4, workers=0, epochs=1,
                device="cpu", plots=False, seed=0, deterministic=True, warmup_epochs=0, verbose=False)
    pt = tmp_path / "p2" / "weights" / "last.pt"
    assert pt.is_file()
    metrics = YOLO(str(pt)).val(data=tiny_data, imgsz=64, batch=4, workers=0, plots=False, verbose=False,
                                project=str(tmp_path))
    assert 0.0 <= metrics.box.map <= 1.0
    ref_model = YOLO(str(pt)).model.eval()
    assert ref_model.stride.tolist() == [4.0, 8.0, 16.0, 32.0]
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = copy.deepcopy(ref_model).fuse(verbose=False)(x)
    ts = YOLO(str(pt)).export(format="torchscript", imgsz=64)
    with torch.no_grad():
        out = torch.jit.load(ts)(x)
    out = out[0] if isinstance(out, (list, tuple)) else out
    k = ref.shape[1]
    assert torch.allclose(out[:, :k, 4], ref[:, :, 4], atol=1e-5)
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    f = YOLO(str(pt)).export(format="onnx", imgsz=64)
    sess = ort.InferenceSession(str(f), providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    assert y.shape == (1, 300, 6)
    np.testing.assert_allclose(y[:, :k, 4], ref[:, :, 4].numpy(), atol=1e-4)


def test_every_p2_yaml_builds_in_the_scan(tmp_path):
    """The scan builds and runs the P2 YAMLs (four maps per branch) and finds the committed table's figures.

    tests/test_model_scan.py scans the n and s files; here m (b, l and x too with YOLO_SCAN_ALL=1).
    """
    import os
    import shutil
    from pathlib import Path

    from ultralytics.nn.scan import read_table, scan

    scales = "mblx" if os.environ.get("YOLO_SCAN_ALL") else "m"
    names = [f"yolov10{s}-p2{v}.yaml" for s in scales for v in ("", "-LSKA")]
    for n in names:
        shutil.copy(MODELS_DIR / "v10" / n, tmp_path / n)
    rows, problems = scan(tmp_path)
    assert problems == []
    table = {r["yaml"]: r for r in read_table(Path(__file__).parent / "data" / "model_table.csv")}
    assert len(rows) == len(names)
    for r in rows:
        want = table[f"v10/{r['yaml']}"]
        assert (r["scale"], r["layers"], r["parameters"]) == (want["scale"], want["layers"], want["parameters"])


def test_base_weights_transfer_into_the_p3_p5_branches():
    """yolov10s weights -> yolov10s-p2: the head's levels 0-2 land in levels 1-3 (P3-P5), all of them, unchanged;
    the P2 branch (level 0) keeps its own initialisation."""
    base, p2 = build("yolov10s.yaml"), build("yolov10s-p2.yaml")
    p2_level0 = {k: v.clone() for k, v in p2.state_dict().items() if ".cv2.0." in k or ".cv3.0." in k}
    p2.load(base, verbose=False)
    b, p = base.state_dict(), p2.state_dict()
    for name in ("cv2", "cv3", "one2one_cv2", "one2one_cv3"):
        for i in range(3):
            keys = [k for k in b if k.startswith(f"model.23.{name}.{i}.")]
            assert keys and all(torch.equal(p[k.replace(f"model.23.{name}.{i}.", f"model.29.{name}.{i + 1}.")], b[k])
                                for k in keys), (name, i)
    assert all(torch.equal(p[k], v) for k, v in p2_level0.items())
    assert all(torch.equal(p[k.replace("model.17.", "model.23.")], b[k]) for k in b if k.startswith("model.17."))
