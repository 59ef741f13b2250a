"""Class-activation heatmaps: the formulas on hand-made tensors, a hand-made model and image, the tool's files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from ultralytics.analysis import heatmap
from ultralytics.utils import UserError


def positive_model(nc: int = 2):
    """Tiny detector (five 3x3 stride-2 Convs, head on rows 2, 3, 4) with every weight made positive.

    On a black image with one white patch, every activation is >= 0, zero away from the patch, and every
    class score grows with every activation: the gradient says the map must peak on the patch.
    """
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    yaml = {"nc": nc, "backbone": [[-1, 1, "Conv", [8, 3, 2]] for _ in range(5)],
            "head": [[[2, 3, 4], 1, "v10Detect", ["nc"]]]}
    m = DetectionModel(yaml, verbose=False).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(p.abs() if not name.endswith("bias") else torch.zeros_like(p))
        for seq in m.model[-1].one2one_cv3:
            seq[-1].weight.mul_(1e-3)  # class logits stay where the sigmoid has a gradient
    return m


def patch_image(h=96, w=160, box=(100, 30, 124, 54)):
    """Black BGR image (h, w) with a white square at x1, y1, x2, y2."""
    im = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = box
    im[y1:y2, x1:x2] = 255
    return im


def test_cam_formulas_on_hand_made_tensors():
    a = torch.zeros(1, 2, 8, 8)
    a[0, 0, 2, 5] = 1.0  # channel 0: one unit
    a[0, 1, 6, 1] = 3.0  # channel 1: a stronger unit, but the score falls with it
    g = torch.zeros(1, 2, 8, 8)
    g[0, 0] = 0.5
    g[0, 1] = -1.0
    for method in ("layercam", "gradcam"):
        m = heatmap.cam(a, g, method)[0]
        assert m.shape == (8, 8)
        assert divmod(int(m.argmax()), 8) == (2, 5)
        assert m[6, 1] == 0  # negative evidence is cut by the ReLU
        assert m[2, 5] == pytest.approx(0.5)
    # LayerCAM weighs each location by its own positive gradient; Grad-CAM by the channel's mean
    g2 = torch.zeros(1, 1, 4, 4)
    g2[0, 0, 0, 0] = 4.0
    a2 = torch.ones(1, 1, 4, 4)
    assert heatmap.cam(a2, g2, "layercam")[0].tolist()[0] == [4.0, 0.0, 0.0, 0.0]
    assert heatmap.cam(a2, g2, "gradcam")[0].unique().tolist() == [0.25]
    with pytest.raises(UserError, match="layercam, gradcam"):
        heatmap.cam(a2, g2, "scorecam")


@pytest.mark.parametrize("method", ["layercam", "gradcam"])
def test_map_peaks_on_the_patch_of_a_hand_made_model_and_image(method):
    model = positive_model()
    im = patch_image()
    r = heatmap.image_heatmap(model, im, [2], method=method, conf=0.0, imgsz=128)
    m = r["map"]
    assert m.shape == im.shape[:2] and m.max() == pytest.approx(1.0)
    y, x = np.unravel_index(m.argmax(), m.shape)
    assert 100 - 4 <= x < 124 + 4 and 30 - 4 <= y < 54 + 4, (x, y)
    assert m[24:72, :40].max() < 0.05  # far from the patch and from the grey letterbox pad: nothing
    assert r["raw"].shape == (1, *im.shape[:2])


def test_gradient_flows_through_the_one_to_one_branch():
    """The head detaches the one-to-one inputs in its own forward; the heatmap must not get a zero map."""
    model = positive_model()
    r = heatmap.image_heatmap(model, patch_image(), [2, 3, 4], conf=0.0, imgsz=128)
    assert (r["raw"].reshape(3, -1).max(1) > 0).all()


def test_run_writes_overlays_of_the_original_size_and_npy(tmp_path):
    src = tmp_path / "imgs"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), patch_image())
    cv2.imwrite(str(src / "b.jpg"), patch_image(120, 90, (10, 10, 40, 40)))
    res = heatmap.run(model=positive_model(), source=str(src), conf=0.0, imgsz=128, save_npy=True,
                      project=str(tmp_path / "hm"), device="cpu", classes=[1])
    assert [r["file"].name for r in res] == ["a.png", "b.png"]
    assert cv2.imread(str(res[0]["file"])).shape == (96, 160, 3)
    assert cv2.imread(str(res[1]["file"])).shape == (120, 90, 3)
    assert np.load(res[0]["file"].with_suffix(".npy")).shape == (3, 96, 160)
    assert len(res[0]["dets"]) and set(res[0]["dets"][:, 5].tolist()) == {1.0}  # classes=[1]
    assert all(r["seconds"] > 0 for r in res)


def test_bad_inputs_are_clear_errors(tmp_path):
    model = positive_model()
    im_dir = tmp_path / "one"
    im_dir.mkdir()
    cv2.imwrite(str(im_dir / "a.png"), patch_image())
    with pytest.raises(UserError, match=r"valid layers are the rows 0\.\.4"):
        heatmap.run(model=model, source=str(im_dir), layers=[5], project=str(tmp_path))
    with pytest.raises(UserError, match="layercam, gradcam"):
        heatmap.run(model=model, source=str(im_dir), method="cam", project=str(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images found"):
        heatmap.run(model=model, source=str(tmp_path / "empty"), project=str(tmp_path))
    model.model[-1].one2one_cv2 = None
    with pytest.raises(UserError, match="one-to-one head"):
        heatmap.run(model=model, source=str(im_dir), project=str(tmp_path))
