"""The model tree: figures of every scale, the LSKA variants, state_dict names, fusion and errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from ultralytics import YOLO
from ultralytics.nn.Addmodules import LSKA, PSALSKA
from ultralytics.nn.registry import register_module
from ultralytics.nn.tasks import DetectionModel, guess_scale, yaml_model_load
from ultralytics.utils import UserError

REFERENCE = Path(__file__).resolve().parent / "data" / "yolov10n.state_dict.txt"  # facts kept in the repo

FIGURES = {  # name: (layers or None, parameters, GFLOPs at 640 as Ultralytics / the YOLOv10 paper print them)
    "yolov10n.yaml": (385, 2_775_520, 8.74),
    "yolov10s.yaml": (None, 8_128_272, 25.11),
    "yolov10m.yaml": (None, 16_576_768, 64.48),
    "yolov10b.yaml": (None, 20_574_384, 99.35),
    "yolov10l.yaml": (None, 25_888_688, 127.88),
    "yolov10x.yaml": (None, 31_808_960, 171.85),
    "yolov10n-LSKA.yaml": (403, 2_869_152, 8.91),
    "yolov10n-PSALSKA.yaml": (None, 2_742_752, 8.71),
}


@pytest.mark.parametrize("name", FIGURES)
def test_summary_figures(name):
    layers, params, gflops = FIGURES[name]
    n_l, n_p, n_g, flops = DetectionModel(name, verbose=False).info(verbose=False)
    assert n_p == params
    assert n_g == params - 16  # the DFL conv is frozen
    assert flops == pytest.approx(gflops, abs=0.05)
    if layers is not None:
        assert n_l == layers


def test_summary_line_format(capsys):
    YOLO("yolov10n.yaml").info()
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out == "YOLOv10n summary: 385 layers, 2,775,520 parameters, 2,775,504 gradients, 8.7 GFLOPs"


def test_blog_lska_summary_line_exactly(capsys):
    """The blog's printed line for its LSKA model (25 classes) comes out character for character."""
    DetectionModel("yolov10n-LSKA.yaml", nc=25, verbose=False).info()
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out == "YOLOv10n-LSKA summary: 403 layers, 2,810,422 parameters, 2,810,406 gradients, 8.6 GFLOPs"


@pytest.mark.parametrize("scale", "smblx")
def test_variant_scales_build(scale):
    base = DetectionModel(f"yolov10{scale}.yaml", verbose=False)
    lska = DetectionModel(f"yolov10{scale}-LSKA.yaml", verbose=False)
    psa = DetectionModel(f"yolov10{scale}-PSALSKA.yaml", verbose=False)
    assert lska.yaml["scale"] == psa.yaml["scale"] == scale
    assert isinstance(psa.model[10], PSALSKA)
    assert [type(lska.model[i]) for i in (17, 21, 25)] == [LSKA] * 3
    neck_widths = [base.model[i].cv2.conv.out_channels for i in (16, 19, 22)]
    assert [lska.model[i].conv1.out_channels for i in (17, 21, 25)] == neck_widths
    n_base = sum(p.numel() for p in base.parameters())
    extra = sum(sum(p.numel() for p in lska.model[i].parameters()) for i in (17, 21, 25))
    assert sum(p.numel() for p in lska.parameters()) == n_base + extra


def test_state_dict_matches_reference():
    expected = []
    for line in REFERENCE.read_text().splitlines():
        m = re.match(r"(\S+) \((.*)\) (\S+)", line)
        shape = tuple(int(x) for x in m.group(2).split(",") if x.strip())
        expected.append((m.group(1), shape, m.group(3)))
    sd = DetectionModel("yolov10n.yaml", verbose=False).state_dict()
    got = [(k, tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in sd.items()]
    assert got == expected


@pytest.mark.parametrize("k,geometry", [(7, (3, 3, 2)), (11, (3, 5, 2)), (23, (5, 7, 3)), (35, (5, 11, 3)),
                                        (41, (5, 13, 3)), (53, (5, 17, 3))])
def test_lska_geometry(k, geometry):
    k0, k1, d = geometry
    m = LSKA(8, k)
    assert m.conv0h.weight.shape == (8, 1, 1, k0) and m.conv0v.weight.shape == (8, 1, k0, 1)
    assert m.conv_spatial_h.weight.shape == (8, 1, 1, k1) and m.conv_spatial_h.dilation == (1, d)
    assert m.conv_spatial_v.weight.shape == (8, 1, k1, 1) and m.conv_spatial_v.dilation == (d, 1)
    assert all(getattr(m, n).bias is not None for n in ("conv0h", "conv0v", "conv_spatial_h",
                                                         "conv_spatial_v", "conv1"))
    x = torch.randn(2, 8, 13, 17)
    assert m(x).shape == x.shape
    # the attention gates the input: a zero input gives a zero output
    assert torch.equal(m(torch.zeros(1, 8, 9, 9)), torch.zeros(1, 8, 9, 9))


def test_lska_forward_is_the_documented_composition():
    m = LSKA(4, 11)
    x = torch.randn(1, 4, 20, 20)
    ref = x * m.conv1(m.conv_spatial_v(m.conv_spatial_h(m.conv0v(m.conv0h(x)))))
    assert torch.equal(m(x), ref)


def test_lska_unsupported_k_lists_sizes():
    with pytest.raises(ValueError, match=r"k_size=9 .*7, 11, 23, 35, 41, 53"):
        LSKA(8, 9)


def test_psalska_transfers_psa_weights():
    base = DetectionModel("yolov10n.yaml", verbose=False)
    psalska = DetectionModel("yolov10n-PSALSKA.yaml", verbose=False)
    n = psalska.load(base, verbose=False)
    own = psalska.state_dict()
    assert n == sum(1 for k, v in base.state_dict().items() if k in own and own[k].shape == v.shape)
    assert torch.equal(psalska.model[10].cv1.conv.weight, base.model[10].cv1.conv.weight)
    assert torch.equal(psalska.model[10].ffn[0].conv.weight, base.model[10].ffn[0].conv.weight)


def test_forward_shapes_train_and_eval():
    m = DetectionModel("yolov10n-LSKA.yaml", nc=6, verbose=False)
    x = torch.rand(2, 3, 256, 320)
    out = m.train()(x)
    assert set(out) == {"one2many", "one2one"}
    assert [tuple(p.shape) for p in out["one2one"]] == [(2, 70, 32, 40), (2, 70, 16, 20), (2, 70, 8, 10)]
    assert m.stride.tolist() == [8.0, 16.0, 32.0]
    y = m.eval()(x)
    assert y.shape == (2, 300, 6)
    assert (y[..., 4] >= 0).all() and (y[..., 4] <= 1).all()
    assert y[..., 5].min() >= 0 and y[..., 5].max() <= 5
    assert (y[..., 4].diff(dim=1) <= 0).all()  # sorted by score
    assert (y[..., 2] >= y[..., 0]).all() and (y[..., 3] >= y[..., 1]).all()


def test_one2one_branch_reads_detached_features():
    m = DetectionModel("yolov10n.yaml", nc=3, verbose=False).train()
    out = m(torch.rand(1, 3, 64, 64))
    sum(o.sum() for o in out["one2one"]).backward()
    assert m.model[0].conv.weight.grad is None or m.model[0].conv.weight.grad.abs().sum() == 0
    assert m.model[23].one2one_cv2[0][0].conv.weight.grad.abs().sum() > 0


def test_fuse_counts_and_output():
    m = DetectionModel("yolov10n.yaml", verbose=False)
    g = torch.Generator().manual_seed(0)
    for mod in m.modules():  # non-trivial BN statistics so that folding is really exercised
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
    m.eval()
    x = torch.rand(1, 3, 320, 320, generator=g)
    head = m.model[-1]

    def decoded():  # (1, A, 4 + nc) before top-k, so that near-tied scores cannot reorder rows
        feats = []
        hook = head.register_forward_hook(lambda mod, inp, out: feats.append(inp[0]))
        out = m(x)
        hook.remove()
        raw = head.decode(head._branch(feats[0], head.one2one_cv2, head.one2one_cv3))
        return out, raw / torch.tensor([320.0] * 4 + [1.0] * head.nc)  # boxes as fractions of the image

    out_before, before = decoded()
    m.fuse(verbose=False)
    _, n_p, _, flops = m.info(verbose=False)
    assert n_p == 2_299_264
    assert flops == pytest.approx(6.70, abs=0.05)  # the YOLOv10 paper's and Ultralytics' 6.7
    out_after, after = decoded()
    assert torch.allclose(after, before, atol=1e-4)
    assert torch.allclose(out_after[..., 4], out_before[..., 4], atol=1e-4)  # the same top scores


def test_scale_from_name_and_argument():
    assert guess_scale("yolov10s-LSKA.yaml") == "s"
    assert guess_scale("path/to/yolov10x.yaml") == "x"
    assert guess_scale("mymodel.yaml") is None
    d = yaml_model_load("yolov10n-LSKA.yaml")
    d["scales"] = {"n": [0.33, 0.25, 1024], "s": [0.33, 0.5, 1024]}
    m = DetectionModel(d, scale="s", verbose=False)
    assert m.model[0].conv.out_channels == 32


def test_nc_override():
    m = DetectionModel("yolov10n.yaml", nc=3, verbose=False)
    assert m.nc == 3 and m.model[-1].one2one_cv3[0][2].out_channels == 3


def test_yaml_by_path(tmp_path):
    src = yaml_model_load("yolov10n-PSALSKA.yaml")
    f = tmp_path / "yolov10n-mine.yaml"
    f.write_text(Path(src["yaml_file"]).read_text())
    assert YOLO(str(f)).model.yaml["scale"] == "n"


# --- registration without editing tasks.py --------------------------------------------------------

class ChannelGate(nn.Module):
    """A user's attention: x * sigmoid(w) per channel."""

    def __init__(self, c1: int, scale: float = 1.0):
        super().__init__()
        self.w = nn.Parameter(torch.full((1, c1, 1, 1), scale))

    def forward(self, x):
        return x * self.w.sigmoid()


def test_register_module_from_outside():
    register_module(ChannelGate, "same")
    d = yaml_model_load("yolov10n.yaml")
    d["head"].insert(6, [-1, 1, "ChannelGate", [2.0]])  # after row 16
    d["head"][7:] = [[f if not isinstance(f, list) else [x + (x >= 17) if x >= 0 else x for x in f], n, m, a]
                     for f, n, m, a in d["head"][7:]]
    m = DetectionModel(d, verbose=False)
    assert isinstance(m.model[17], ChannelGate) and m.model[17].w.shape == (1, 64, 1, 1)
    assert sum(p.numel() for p in m.parameters()) == 2_775_520 + 64
    assert m.model[-1].f == [16, 20, 23]  # references past the inserted row moved by one


# --- errors a user can cause ----------------------------------------------------------------------

def _yaml_with(tmp_path, edit) -> Path:
    d = yaml_model_load("yolov10n.yaml")
    edit(d)
    d.pop("yaml_file")
    import yaml

    f = tmp_path / "yolov10n-broken.yaml"
    f.write_text(yaml.safe_dump(d))
    return f


def test_unknown_module_names_file_row_and_closest(tmp_path):
    f = _yaml_with(tmp_path, lambda d: d["head"].__setitem__(6, [-1, 1, "LKSA", [7]]))
    with pytest.raises(UserError, match=r"yolov10n-broken.yaml, row 17 .*unknown module 'LKSA'.*LSKA"):
        DetectionModel(str(f), verbose=False)


def test_wrong_number_of_args(tmp_path):
    f = _yaml_with(tmp_path, lambda d: d["backbone"].__setitem__(5, [-1, 1, "SCDown", [512]]))
    with pytest.raises(UserError, match=r"row 5 .*cannot build SCDown\(c1: int, c2: int, k: int, s: int\)"):
        DetectionModel(str(f), verbose=False)


def test_from_out_of_range_and_forward_reference(tmp_path):
    f = _yaml_with(tmp_path, lambda d: d["head"].__setitem__(1, [[-1, 30], 1, "Concat", [1]]))
    with pytest.raises(UserError, match=r"row 12 .*'from' index 30"):
        DetectionModel(str(f), verbose=False)
    f = _yaml_with(tmp_path, lambda d: d["head"].__setitem__(1, [[-1, -40], 1, "Concat", [1]]))
    with pytest.raises(UserError, match=r"row 12 .*'from' index -40"):
        DetectionModel(str(f), verbose=False)


def test_missing_yaml():
    with pytest.raises(UserError, match=r"model YAML 'yolov10q-LSKA.yaml' not found.*yolov10"):
        YOLO("yolov10q-LSKA.yaml")


def test_bad_lska_k_in_yaml(tmp_path):
    f = _yaml_with(tmp_path, lambda d: d["head"].insert(6, [-1, 1, "LSKA", [9]]))
    with pytest.raises(UserError, match=r"row 17 .*LSKA.*k_size=9 is not supported"):
        DetectionModel(str(f), verbose=False)
