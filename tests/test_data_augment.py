"""Tests of the augmentations: letterbox arithmetic, mosaic/affine box geometry, HSV, flips, format."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from ultralytics.data.augment import (Compose, Format, LetterBox, Mosaic, RandomFlip, RandomHSV,
                                      RandomPerspective, box_candidates)
from ultralytics.utils.ops import scale_boxes


def _sample(h, w, boxes, ratio=(1.0, 1.0)):
    img = np.zeros((h, w, 3), np.uint8)
    for x1, y1, x2, y2 in np.asarray(boxes, int):
        img[y1:y2, x1:x2] = 255
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return {"img": img, "cls": np.arange(len(b), dtype=np.float32).reshape(-1, 1), "bboxes": b,
            "im_file": "x.jpg", "ori_shape": (h, w), "resized_shape": (h, w), "ratio_pad": ratio}


@pytest.mark.parametrize("shape,kw,out_shape,ratio,pad", [
    ((100, 200), {}, (320, 320), (1.6, 1.6), (0, 80)),
    ((100, 199), {}, (320, 320), (320 / 199, 320 / 199), (0, 79)),
    ((100, 200), {"auto": True}, (160, 320), (1.6, 1.6), (0, 0)),
    ((100, 190), {"auto": True}, (192, 320), (320 / 190, 320 / 190), (0, 12)),
    ((100, 200), {"scaleup": False}, (320, 320), (1.0, 1.0), (60, 110)),
    ((100, 200), {"scale_fill": True}, (320, 320), (3.2, 1.6), (0, 0)),
])
def test_letterbox_arithmetic(shape, kw, out_shape, ratio, pad):
    h, w = shape
    s = _sample(h, w, [[10, 20, 30, 40]], ratio=(0.5, 0.5))
    out = LetterBox((320, 320), **kw)(s)
    assert out["img"].shape == (*out_shape, 3) and out["resized_shape"] == out_shape
    (rh, rw), (pw, ph) = out["ratio_pad"]
    assert (pw, ph) == pad
    np.testing.assert_allclose((rh, rw), (0.5 * ratio[0], 0.5 * ratio[1]), rtol=1e-6)
    expect = np.array([10 * ratio[1] + pw, 20 * ratio[0] + ph, 30 * ratio[1] + pw, 40 * ratio[0] + ph])
    np.testing.assert_allclose(out["bboxes"][0], expect, atol=1e-4)
    img = out["img"]  # the white box moved where the box says
    ys, xs = np.nonzero(img[..., 0] > 127)
    np.testing.assert_allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], expect, atol=1.01)
    if h * ratio[0] < out_shape[0]:
        assert (img[0, :, 0] == 114).all()  # grey padding at the top


def test_letterbox_odd_padding_and_inverse():
    s = _sample(100, 199, [[10, 20, 30, 40]])
    out = LetterBox((320, 320))(s)
    img = out["img"]
    assert (img[:79] == 114).all() and (img[-80:] == 114).all() and not (img[79:-80] == 114).all()
    back = scale_boxes((320, 320), torch.tensor(out["bboxes"]), (100, 199),
                       ratio_pad=((out["ratio_pad"][0][0],) * 2, out["ratio_pad"][1]))
    np.testing.assert_allclose(back[0].numpy(), [10, 20, 30, 40], atol=0.05)


def test_letterbox_rect_shape_and_bare_image():
    s = _sample(100, 200, [[0, 0, 10, 10]])
    s["rect_shape"] = (128, 224)
    out = LetterBox((640, 640), scaleup=False)(s)
    assert out["img"].shape == (128, 224, 3) and "rect_shape" not in out
    assert out["ratio_pad"][1] == (12, 14)
    im = LetterBox((64, 64))(image=np.zeros((32, 16, 3), np.uint8))
    assert im.shape == (64, 64, 3)


class _FakeDataset:
    """Four images, each with one white rectangle on black."""

    def __init__(self, s=64):
        self.items = [_sample(s, s - 8 * k, [[4 + 3 * k, 6, 30 + 2 * k, 40 - k]]) for k in range(4)]

    def __len__(self):
        return len(self.items)

    def get_image_and_label(self, i, memo=None):
        d = self.items[i]
        return {**d, "bboxes": d["bboxes"].copy(), "index": i}


def _boxes_match_pixels(img, boxes, tol=1.6):
    """Each box tightly bounds the white pixels near it."""
    white = img[..., 0] > 127
    h, w = white.shape
    for x1, y1, x2, y2 in boxes:
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        X1, Y1 = max(int(x1 - 3), 0), max(int(y1 - 3), 0)
        ys, xs = np.nonzero(white[Y1:int(y2 + 3), X1:int(x2 + 3)])
        assert len(xs)
        got = np.array([xs.min() + X1, ys.min() + Y1, xs.max() + X1 + 1, ys.max() + Y1 + 1])
        np.testing.assert_allclose(got, [x1, y1, x2, y2], atol=tol)


def _objects_inside_boxes(img, boxes, tol=1.6):
    """Every white blob of at least 10 px lies inside one of the boxes."""
    import cv2

    n, _, stats, _ = cv2.connectedComponentsWithStats((img[..., 0] > 127).astype(np.uint8))
    for x, y, bw, bh, area in stats[1:]:
        if area < 10:
            continue
        inside = ((boxes[:, 0] - tol <= x) & (boxes[:, 1] - tol <= y) & (x + bw <= boxes[:, 2] + tol)
                  & (y + bh <= boxes[:, 3] + tol))
        assert inside.any(), (x, y, bw, bh, boxes)


def _mosaic_pipeline(ds, s, **hyp):
    kw = dict(degrees=0.0, translate=0.1, scale=0.3, shear=0.0, perspective=0.0)
    kw.update(hyp)
    return Compose([Mosaic(ds, s, p=1.0), RandomPerspective(**kw, pre_transform=LetterBox((s, s)))])


def test_mosaic_affine_boxes_follow_pixels_and_reproducible():
    ds, s = _FakeDataset(), 64
    pipe = _mosaic_pipeline(ds, s)
    outs = []
    for seed in range(12):
        out = pipe(ds.get_image_and_label(0), np.random.default_rng([0, 1, seed]))
        assert out["img"].shape == (s, s, 3) and "mosaic_border" not in out
        assert len(out["bboxes"]) == len(out["cls"])
        _boxes_match_pixels(out["img"], out["bboxes"])
        outs.append(out)
    assert sum(len(o["bboxes"]) for o in outs) > 12  # several boxes survive on average
    again = pipe(ds.get_image_and_label(0), np.random.default_rng([0, 1, 3]))
    assert np.array_equal(again["img"], outs[3]["img"]) and np.array_equal(again["bboxes"], outs[3]["bboxes"])
    assert not np.array_equal(outs[3]["img"], outs[4]["img"])


def test_affine_rotation_boxes_enclose_object():
    ds, s = _FakeDataset(), 64
    pipe = _mosaic_pipeline(ds, s, degrees=30.0, shear=5.0, perspective=0.0005)
    for seed in range(10):
        out = pipe(ds.get_image_and_label(1), np.random.default_rng(seed))
        _objects_inside_boxes(out["img"], out["bboxes"])
        b = out["bboxes"]
        assert ((b >= 0) & (b <= s)).all()


def test_mosaic_partners_from_pool():
    ds = _FakeDataset()
    m = Mosaic(ds, 64, p=1.0)
    calls = []
    orig = ds.get_image_and_label
    ds.get_image_and_label = lambda i, memo=None: (calls.append(i), orig(i))[1]
    lab = orig(0)
    lab["mosaic_pool"], lab["image_memo"] = [0, 2, 3, 2], {}
    m(lab, np.random.default_rng(0))
    assert calls and set(calls) <= {2, 3}  # the sample itself is excluded from its partners


def test_box_candidates_rules():
    b1 = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 100, 10]], np.float32)
    b2 = np.array([[0, 0, 10, 10], [0, 0, 1.5, 10], [0, 0, 3, 3], [0, 0, 300, 2.5]], np.float32)
    assert box_candidates(b1, b2).tolist() == [True, False, False, False]


def test_random_hsv_lut_values():
    img = np.full((4, 4, 3), 100, np.uint8)  # grey: S = 0, V = 100
    out = RandomHSV(0.0, 0.0, 0.5)({"img": img}, np.random.default_rng(5))
    r = np.random.default_rng(5).uniform(-1, 1, 3) * np.array([0, 0, 0.5]) + 1
    assert (out["img"] == int(min(100 * r[2], 255))).all()
    assert (img == 100).all()  # input untouched
    same = RandomHSV(0.0, 0.0, 0.0)({"img": img}, np.random.default_rng(5))
    assert same["img"] is img


def test_random_hsv_each_channel_gets_its_own_gain():
    """Hue, saturation and value each move by their own drawn gain (hue wraps at 180): a per-pixel reference in
    HSV space, so tables applied to the wrong plane, or a hue that clips instead of wrapping, fail."""
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    gains = np.array([0.5, 0.7, 0.4])
    out = RandomHSV(*gains)({"img": img}, np.random.default_rng(11))["img"]
    r = np.random.default_rng(11).uniform(-1, 1, 3) * gains + 1
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.float64)
    ref = np.stack([(hsv[..., 0] * r[0]) % 180, np.clip(hsv[..., 1] * r[1], 0, 255),
                    np.clip(hsv[..., 2] * r[2], 0, 255)], -1).astype(np.uint8)
    assert np.array_equal(out, cv2.cvtColor(ref, cv2.COLOR_HSV2BGR))
    assert r[0] * 179 > 180 or r[0] < 1  # the draw exercises the wrap or a shrink of hue


def test_random_flip():
    s = _sample(50, 100, [[10, 20, 30, 40]])
    out = RandomFlip(1.0, "horizontal")(dict(s), np.random.default_rng(0))
    np.testing.assert_allclose(out["bboxes"], [[70, 20, 90, 40]])
    assert out["img"][25, 80, 0] == 255 and out["img"][25, 20, 0] == 0
    out = RandomFlip(1.0, "vertical")(dict(s), np.random.default_rng(0))
    np.testing.assert_allclose(out["bboxes"], [[10, 10, 30, 30]])
    out = RandomFlip(0.0, "horizontal")(dict(s), np.random.default_rng(0))
    assert out["img"] is s["img"]


def test_format_rgb_chw_and_normalised_xywh():
    img = np.zeros((10, 20, 3), np.uint8)
    img[..., 0], img[..., 2] = 1, 3  # B = 1, R = 3
    out = Format()({"img": img, "cls": np.array([[2.0]], np.float32),
                    "bboxes": np.array([[0, 0, 10, 5]], np.float32)})
    assert out["img"].shape == (3, 10, 20) and out["img"].dtype == torch.uint8 and out["img"].is_contiguous()
    assert out["img"][0, 0, 0] == 3 and out["img"][2, 0, 0] == 1
    torch.testing.assert_close(out["bboxes"], torch.tensor([[0.25, 0.25, 0.5, 0.5]]))
    assert out["cls"].shape == (1, 1) and out["batch_idx"].tolist() == [0.0]


def test_pipeline_inputs_are_not_modified():
    ds = _FakeDataset()
    before = [d["img"].copy() for d in ds.items]
    hyp = SimpleNamespace(mosaic=1.0, degrees=5.0, translate=0.1, scale=0.5, shear=1.0, perspective=0.0,
                          flipud=0.5, fliplr=0.5, hsv_h=0.015, hsv_s=0.7, hsv_v=0.4)
    from ultralytics.data.augment import build_transforms

    t = build_transforms(ds, 64, hyp, augment=True)
    for seed in range(5):
        t(ds.get_image_and_label(seed % 4), np.random.default_rng(seed))
    assert all(np.array_equal(a, d["img"]) for a, d in zip(before, ds.items))
