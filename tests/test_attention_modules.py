"""The attention baselines: shapes, gradients, closed forms from the papers, parameter counts, BN convention, fuse."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from ultralytics.nn.Addmodules import (ATTENTION_BASELINES, CBAM, ECA, EMA, LKA, SE, CoordAtt, SimAM,
                                       TripletAttention)
from ultralytics.nn.Addmodules.ECA import eca_kernel
from ultralytics.nn.registry import lookup
from ultralytics.nn.tasks import DetectionModel
from ultralytics.nn.yaml_edit import insert_rows
from ultralytics.utils import UserError

CLASSES = {"SE": SE, "CBAM": CBAM, "ECA": ECA, "CoordAtt": CoordAtt, "SimAM": SimAM, "EMA": EMA, "LKA": LKA,
           "TripletAttention": TripletAttention}


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", ATTENTION_BASELINES)
def test_registered_same_rule(name):
    assert lookup(name) == (CLASSES[name], "same")


@pytest.mark.parametrize("name", ATTENTION_BASELINES)
@pytest.mark.parametrize("c", [8, 24, 100])  # 24 and 100: not multiples of SE's 16 or CoordAtt's 32
def test_shape_preserved_and_gradient_reaches_input(name, c):
    torch.manual_seed(0)
    m = CLASSES[name](c)
    x = torch.randn(2, c, 7, 9, requires_grad=True)
    y = m(x)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in m.parameters())


def test_parameter_counts_by_hand():
    c = 64
    assert n_params(SE(c)) == c * 4 + 4 + 4 * c + c  # fc1 64->4 with bias, fc2 4->64 with bias
    assert n_params(SE(c, 8)) == c * 8 + 8 + 8 * c + c
    assert n_params(SE(24)) == 24 * 1 + 1 + 1 * 24 + 24  # 24 // 16 = 1
    assert n_params(CBAM(c)) == 2 * c * 4 + 2 * 49  # shared MLP without bias + one 7x7 conv 2->1
    assert n_params(ECA(c)) == 3 and n_params(ECA(256)) == 5 and n_params(ECA(c, 7)) == 7
    mip = 8  # max(8, 64 // 32)
    assert n_params(CoordAtt(c)) == c * mip + 2 * mip + 2 * (mip * c + c)  # conv+BN, then two 1x1 with bias
    assert n_params(CoordAtt(512)) == 512 * 16 + 2 * 16 + 2 * (16 * 512 + 512)
    assert n_params(SimAM(c)) == 0
    g = 8  # EMA: 8 channels per group
    assert n_params(EMA(c)) == (g * g + g) + (9 * g * g + g) + 2 * g
    k0, k1 = 5, 7  # VAN's LKA
    assert n_params(LKA(c)) == c * (k0 * k0 + 1) + c * (k1 * k1 + 1) + c * c + c
    assert n_params(TripletAttention(c)) == n_params(TripletAttention(512)) == 3 * (2 * 49 + 2)


def test_eca_kernel_from_channels():
    # t = int((log2 C + 1) / 2), made odd: C=8 -> 2 -> 3; 64 -> 3; 128 -> 4 -> 5; 256 -> 4 -> 5; 1024 -> 5
    assert [eca_kernel(c) for c in (8, 64, 128, 256, 1024)] == [3, 3, 5, 5, 5]
    with pytest.raises(ValueError, match="odd"):
        ECA(64, 4)


def test_simam_matches_the_paper_formula():
    torch.manual_seed(1)
    x = torch.randn(2, 3, 4, 5)
    lam = 1e-4
    ref = torch.empty_like(x)
    for b in range(2):
        for c in range(3):
            t = x[b, c]
            n = t.numel() - 1
            mu = t.mean()
            var = ((t - mu) ** 2).sum() / n
            e_inv = (t - mu) ** 2 / (4 * (var + lam)) + 0.5
            ref[b, c] = t * torch.sigmoid(e_inv)
    assert torch.allclose(SimAM(3)(x), ref, atol=1e-6)
    assert torch.allclose(SimAM()(x), ref, atol=1e-6)  # the channel count is accepted and ignored


def test_se_matches_the_paper_formula():
    torch.manual_seed(2)
    m = SE(32, 4)
    x = torch.randn(2, 32, 5, 6)
    z = x.mean((2, 3))  # (2, 32) squeeze
    w1, b1 = m.fc1.weight.flatten(1), m.fc1.bias
    w2, b2 = m.fc2.weight.flatten(1), m.fc2.bias
    s = torch.sigmoid(torch.relu(z @ w1.T + b1) @ w2.T + b2)
    assert torch.allclose(m(x), x * s[:, :, None, None], atol=1e-6)


def test_cbam_matches_the_paper_formula():
    torch.manual_seed(3)
    m = CBAM(16, 4)
    x = torch.randn(1, 16, 6, 6)
    w1, w2 = m.channel.mlp[0].weight.flatten(1), m.channel.mlp[2].weight.flatten(1)

    def mlp(v):
        return torch.relu(v @ w1.T) @ w2.T

    mc = torch.sigmoid(mlp(x.mean((2, 3))) + mlp(x.amax((2, 3))))
    x1 = x * mc[:, :, None, None]
    pooled = torch.stack([x1.mean(1), x1.amax(1)], 1)
    ms = torch.sigmoid(torch.nn.functional.conv2d(pooled, m.spatial.conv.weight, padding=3))
    assert torch.allclose(m(x), x1 * ms, atol=1e-6)


def test_eca_matches_the_paper_formula():
    m = ECA(8)  # k = 3
    with torch.no_grad():
        m.conv.weight.copy_(torch.tensor([[[0.5, -1.0, 2.0]]]))
    x = torch.randn(1, 8, 3, 3)
    z = x.mean((2, 3))[0]
    zp = torch.cat([z.new_zeros(1), z, z.new_zeros(1)])  # zero padding at both channel ends
    s = torch.sigmoid(torch.stack([0.5 * zp[i] - zp[i + 1] + 2.0 * zp[i + 2] for i in range(8)]))
    assert torch.allclose(m(x), x * s[None, :, None, None], atol=1e-6)


def test_lka_is_vans_geometry_and_gates_the_input():
    m = LKA(8)
    assert m.conv0.kernel_size == (5, 5) and m.conv0.groups == 8
    assert m.conv_spatial.kernel_size == (7, 7) and m.conv_spatial.dilation == (3, 3)
    assert m.conv1.kernel_size == (1, 1)
    x = torch.randn(1, 8, 12, 12)
    assert torch.allclose(m(x), x * m.conv1(m.conv_spatial(m.conv0(x))))


def test_coordatt_output_channels_must_equal_input():
    assert CoordAtt(24, 24).conv_h.out_channels == 24
    with pytest.raises(ValueError, match="must equal its input channels 24"):
        CoordAtt(24, 256)


def test_ema_groups_fall_back_to_a_divisor():
    assert EMA(64).groups == 8 and EMA(100).groups == 5 and EMA(12).groups == 6 and EMA(7).groups == 7


def test_triplet_attention_is_the_mean_of_three_gates():
    torch.manual_seed(4)
    m = TripletAttention(5).eval()
    x = torch.randn(1, 5, 6, 7)

    def gate(g, v):  # v pooled over dim 1 to [max; mean], k x k conv + BN, sigmoid
        z = torch.cat([v.amax(1, keepdim=True), v.mean(1, keepdim=True)], 1)
        return v * torch.sigmoid(g.conv.bn(g.conv.conv(z)))

    ref = (gate(m.cw, x.transpose(1, 2)).transpose(1, 2) + gate(m.hc, x.transpose(1, 3)).transpose(1, 3)
           + gate(m.hw, x)) / 3
    assert torch.allclose(m(x), ref, atol=1e-6)


def test_batchnorm_follows_the_model_convention():
    for m in (CoordAtt(64), TripletAttention(64)):
        bns = [b for b in m.modules() if isinstance(b, nn.BatchNorm2d)]
        assert bns and all(b.eps == 1e-3 and b.momentum == 0.03 for b in bns)


@pytest.mark.parametrize("name", ATTENTION_BASELINES)
def test_survives_fuse(name):
    """yolov10n with the module after the three neck outputs: fused and unfused eval outputs agree."""
    m = DetectionModel(insert_rows("yolov10n.yaml", name, [], after=[16, 19, 22]), nc=3, verbose=False)
    g = torch.Generator().manual_seed(0)
    for mod in m.modules():  # non-trivial BN statistics, so that folding is exercised
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
    m.eval()
    feats = []
    hook = m.model[-1].register_forward_pre_hook(lambda mod, inp: feats.append([t.clone() for t in inp[0]]))
    x = torch.rand(1, 3, 64, 64, generator=g)
    m(x)
    m.fuse(verbose=False)
    m(x)
    hook.remove()
    assert m.is_fused
    for a, b in zip(feats[0], feats[1]):  # the head's inputs: every module before it, fused
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_bad_args_in_yaml_are_user_errors():
    d = insert_rows("yolov10n.yaml", "CoordAtt", [999], after=[16])
    with pytest.raises(UserError, match=r"row 17 .*CoordAtt.*must equal its input channels 64"):
        DetectionModel(d, verbose=False)
    se = DetectionModel(insert_rows("yolov10n.yaml", "SE", [8], after=[16]), verbose=False).model[17]
    assert isinstance(se, SE) and se.np == 64 * 8 + 8 + 8 * 64 + 64  # the YAML's reduction 8 reached SE
