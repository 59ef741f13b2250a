"""The effective receptive field: exact supports of hand-made convolution stacks, area ratios, the erf tool."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn

from ultralytics.analysis import erf
from ultralytics.utils import UserError


def tiny_yaml(nc: int = 2) -> dict:
    """Five 3x3 stride-2 Convs (strides 2..32) and a v10Detect reading rows 2, 3, 4 (P3, P4, P5)."""
    return {"nc": nc, "backbone": [[-1, 1, "Conv", [8, 3, 2]] for _ in range(5)],
            "head": [[[2, 3, 4], 1, "v10Detect", ["nc"]]]}


def tiny_model(nc: int = 2):
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    return DetectionModel(tiny_yaml(nc), verbose=False).eval()


def test_single_3x3_conv_erf_is_exactly_3x3_with_the_kernel_values():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.rand(2, 3, 15, 15)
    (m,) = erf.erf_map(conv, x)
    assert erf.support(m) == (3, 3)
    assert np.count_nonzero(m) == 9
    # d(sum_o y_o(7, 7)) / d x_c(7 + dy, 7 + dx) = sum_o w[o, c, 1 + dy, 1 + dx]; summed |.| over c and 2 images
    expected = 2 * conv.weight.detach().sum(0).abs().sum(0).double().numpy()
    assert np.allclose(m[6:9, 6:9], expected, rtol=1e-5)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_stack_of_k_3x3_convs_grows_by_2_per_conv(k):
    torch.manual_seed(k)
    stack = nn.Sequential(*(nn.Conv2d(3, 3, 3, padding=1) for _ in range(k)))
    (m,) = erf.erf_map(stack, torch.rand(1, 3, 31, 31))
    assert erf.support(m) == (2 * k + 1, 2 * k + 1)


@pytest.mark.parametrize("layers, rf", [
    ([(3, 2, 1), (3, 1, 1)], 1 + 2 + 2 * 2),  # stride 2 then 3x3: the second conv's reach doubles
    ([(3, 2, 1), (3, 2, 1), (3, 2, 1)], 1 + 2 * (1 + 2 + 4)),  # three stride-2 3x3: 15
    ([(5, 1, 1), (3, 1, 2)], 1 + 4 + 2 * 2),  # 5x5, then a 3x3 with dilation 2
])
def test_strided_and_dilated_stacks_follow_the_receptive_field_arithmetic(layers, rf):
    torch.manual_seed(1)
    net = nn.Sequential(*(nn.Conv2d(3, 3, k, s, padding=d * (k // 2), dilation=d) for k, s, d in layers))
    (m,) = erf.erf_map(net, torch.rand(1, 3, 64, 64))
    assert erf.support(m)[0] == rf


def test_area_ratio_of_a_uniform_square():
    m = np.zeros((21, 21))
    m[8:13, 8:13] = 1.0  # 5x5 around the centre (10, 10)
    assert erf.area_ratio(m, 0.2) == pytest.approx(9 / 441)  # 3x3 holds 9/25 >= 20 %; 1x1 holds 4 %
    assert erf.area_ratio(m, 0.5) == pytest.approx(25 / 441)
    assert erf.area_ratio(m, 0.99) == pytest.approx(25 / 441)
    assert np.isnan(erf.area_ratio(np.zeros((5, 5)), 0.5))
    assert erf.log_normalise(np.array([[0.0, 9.0]])).tolist() == [[0.0, 1.0]]


def test_model_erf_levels_and_growth_with_depth():
    model = tiny_model()
    x = torch.rand(2, 3, 128, 128)
    out = erf.model_erf(model, x)
    assert [(row, lv) for row, (_, lv, _) in out.items()] == [(2, "P3"), (3, "P4"), (4, "P5")]
    sup = [erf.support(m)[0] for m, _, _ in out.values()]
    assert sup == [15, 31, 63]  # 1 + 2 * (1 + 2 + 4), + 2 * 8, + 2 * 16
    ratios = [erf.area_ratio(erf.log_normalise(m), 0.99) for m, _, _ in out.values()]
    assert ratios[0] < ratios[1] < ratios[2]


def test_layer_indices_and_bad_ones_list_the_valid_ones():
    from ultralytics.analysis.rows import check_layers

    model = tiny_model()
    assert check_layers(model, None) == [2, 3, 4]  # the rows the head reads
    assert check_layers(model, "1,3") == [1, 3] and check_layers(model, [-1]) == [4]
    with pytest.raises(UserError, match=r"layers='x'.*valid layers are the rows 0\.\.4"):
        check_layers(model, "x")
    with pytest.raises(UserError, match=r"valid layers are the rows 0\.\.4"):
        erf.model_erf(tiny_model(), torch.rand(1, 3, 64, 64), layers=[7])


def _images(folder, n=2, size=(80, 96)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(folder / f"im{i}.png"), rng.integers(0, 255, (*size, 3), dtype=np.uint8))
    return folder


def test_run_writes_csv_png_for_two_models(tmp_path):
    src = _images(tmp_path / "imgs")
    res = erf.run(model=tiny_model(), model2=tiny_model(), source=str(src), n=2, imgsz=64,
                  project=str(tmp_path / "erf"), device="cpu")
    rows = list(csv.DictReader(open(res["save_dir"] / "erf.csv")))
    assert list(rows[0]) == ["model", "level", "threshold", "area_ratio"]
    assert len(rows) == 2 * 3 * 4
    assert {r["model"] for r in rows} == {"model", "model#2"}
    assert {float(r["threshold"]) for r in rows} == {0.2, 0.3, 0.5, 0.99}
    assert all(0 < float(r["area_ratio"]) <= 1 for r in rows)
    assert (res["save_dir"] / "erf.png").stat().st_size > 1000
    assert cv2.imread(str(res["save_dir"] / "erf.png")) is not None


def test_folder_without_images_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="no images found in .*empty"):
        erf.run(model=tiny_model(), source=str(tmp_path / "empty"), n=1, imgsz=64, project=str(tmp_path))
