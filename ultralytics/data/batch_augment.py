"""Random affine, HSV and flips of a whole batch as tensor operations on any device (augment_device=...).

The loader's DeferredAugment draws each image's parameters exactly as the per-image path draws them (same
generator, same order) and sends them as `aug_params` (B, 15) float64: the 3x3 warp from the canvas to the
output (9), its scale (1), the HSV gains (3), flip up-down (1), flip left-right (1). The canvas is the mosaic
(2s, 2s), or the letterboxed image, centred on a canvas of that size when mosaics are on (so a batch stacks).
BatchAugment then warps the images with one grid_sample (grid from affine_grid, bilinear, grey 114 outside),
jitters HSV as OpenCV's uint8 HSV does, flips, and moves the boxes with the same corner rule and
box_candidates filter as RandomPerspective. Boxes arrive and leave as normalised xywh (of the canvas, then
of the output). The same code runs on the CPU (tests) and on CUDA.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ultralytics.data.augment import PAD_VALUE, box_candidates
from ultralytics.utils import UserError

N_PARAMS = 15


def _pixel_to_norm(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """3x3 map from pixel coordinates (pixel i centred at i) to grid_sample's [-1, 1] (align_corners=False)."""
    m = torch.eye(3, dtype=like.dtype, device=like.device)
    m[0, 0], m[0, 2], m[1, 1], m[1, 2] = 2 / w, 1 / w - 1, 2 / h, 1 / h - 1
    return m


def warp_images(img: torch.Tensor, M: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """img (B, C, H, W) float, M (B, 3, 3) canvas -> output pixel maps -> (B, C, oh, ow) float, grey outside.

    Like cv2.warpAffine / warpPerspective with bilinear sampling and borderValue 114: output pixel (x, y)
    samples the input at M^-1 (x, y, 1).
    """
    b, _, h, w = img.shape
    oh, ow = out_hw
    mf = M.to(torch.float64)
    H = _pixel_to_norm(h, w, mf) @ torch.linalg.inv(mf) @ torch.linalg.inv(_pixel_to_norm(oh, ow, mf))
    eye = torch.eye(2, 3, dtype=img.dtype, device=img.device).expand(b, 2, 3)
    base = F.affine_grid(eye, [b, 1, oh, ow], align_corners=False)  # (B, oh, ow, 2) output coords in [-1, 1]
    Hf = H.to(img.dtype)
    xy = base @ Hf[:, :2, :2].transpose(1, 2).unsqueeze(1) + Hf[:, :2, 2].view(b, 1, 1, 2)
    if (mf[:, 2, :2] != 0).any():  # perspective: divide by the third homogeneous coordinate
        wz = base @ Hf[:, 2, :2].view(b, 1, 2, 1) + Hf[:, 2, 2].view(b, 1, 1, 1)
        xy = xy / wz
    out = F.grid_sample(img - PAD_VALUE, xy, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + PAD_VALUE


def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """RGB 0..255 (B, 3, H, W) -> OpenCV's uint8 HSV scale: H 0..180, S and V 0..255 (rounded like OpenCV)."""
    r, g, b = x.unbind(1)
    v, _ = x.max(1)
    mn, _ = x.min(1)
    d = v - mn
    safe = torch.where(d > 0, d, torch.ones_like(d))
    h = torch.where(v == r, 60 * (g - b) / safe,
                    torch.where(v == g, 120 + 60 * (b - r) / safe, 240 + 60 * (r - g) / safe))
    h = torch.where(d > 0, h, torch.zeros_like(h)) % 360
    s = torch.where(v > 0, 255 * d / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    return torch.stack([(h / 2).round() % 180, s.round(), v], 1)


def _hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """OpenCV-scale HSV (H 0..180, S, V 0..255) -> RGB 0..255, rounded."""
    h, s, v = hsv[:, 0] * 2 / 60, hsv[:, 1] / 255, hsv[:, 2]
    out = []
    for n in (5, 3, 1):  # R, G, B
        k = (n + h) % 6
        out.append(v - v * s * torch.clamp(torch.minimum(k, 4 - k), 0, 1))
    return torch.stack(out, 1).round()


def hsv_jitter(img: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """RGB 0..255 (B, 3, H, W) whole numbers, gains (B, 3) -> jittered as RandomHSV's lookup tables do."""
    hsv = _rgb_to_hsv(img)
    g = gains.to(img.dtype).view(-1, 3, 1, 1)
    h = torch.floor(torch.remainder(hsv[:, :1] * g[:, :1], 180))
    sv = torch.floor(torch.clamp(hsv[:, 1:] * g[:, 1:], 0, 255))
    return _hsv_to_rgb(torch.cat([h, sv], 1))


def transform_boxes(xyxy: torch.Tensor, M: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Boxes (n, 4) xyxy and their images' warps M (n, 3, 3) -> boxes enclosing the warped corners, clipped."""
    n = len(xyxy)
    pts = xyxy[:, [0, 1, 2, 3, 0, 3, 2, 1]].reshape(n, 4, 2).to(M.dtype)
    pts = torch.cat([pts, torch.ones_like(pts[..., :1])], -1) @ M.transpose(1, 2)  # (n, 4, 3)
    xy = pts[..., :2] / pts[..., 2:3]
    oh, ow = out_hw
    x, y = xy[..., 0], xy[..., 1]
    return torch.stack([x.amin(1).clamp(0, ow), y.amin(1).clamp(0, oh), x.amax(1).clamp(0, ow),
                        y.amax(1).clamp(0, oh)], 1)


def augment_device(value, train_device: torch.device | str) -> torch.device | None:
    """The augment_device setting -> the device BatchAugment runs on (None: augmentation stays in the loader).

    'cpu' -> the CPU; 'cuda', 'cuda:N' or a GPU index -> the training device, which must then be a GPU (under
    DDP each rank augments on its own GPU)."""
    text = str(value if value is not None else "").strip().lower()
    if text in ("", "none", "false"):
        return None
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:") or text.isdigit():
        dev = torch.device(train_device)
        if dev.type != "cuda":
            raise UserError(f"augment_device={value}: training runs on {dev}, not on a GPU; use augment_device=cpu "
                            "or leave it empty (augmentation in the loader workers)")
        return dev
    raise UserError(f"augment_device={value!r}: expected empty, cpu, cuda or a GPU index")


class BatchAugment:
    """Apply the loader's deferred augmentation parameters to a collated batch on `device`."""

    def __init__(self, imgsz: int, device: torch.device | str):
        """imgsz: output side (the training image size)."""
        self.imgsz, self.device = int(imgsz), torch.device(device)

    def __call__(self, batch: dict) -> dict:
        """batch with 'aug_params' (B, 15) -> img (B, 3, s, s) uint8 on device, boxes/cls/batch_idx filtered."""
        p = batch.pop("aug_params").to(self.device, torch.float64)
        img = batch["img"].to(self.device, non_blocking=True)
        b, _, ch, cw = img.shape
        s = self.imgsz
        M, scale, gains, ud, lr = p[:, :9].view(b, 3, 3), p[:, 9], p[:, 10:13], p[:, 13] > 0.5, p[:, 14] > 0.5
        x = warp_images(img.float(), M, (s, s)).round().clamp(0, 255)  # the per-image path's uint8 warp
        if (gains != 1).any():
            x = hsv_jitter(x, gains)
        x = torch.where(ud.view(b, 1, 1, 1), x.flip(2), x)
        x = torch.where(lr.view(b, 1, 1, 1), x.flip(3), x)
        batch["img"] = x.clamp(0, 255).to(torch.uint8)
        bi = batch["batch_idx"].to(self.device).long()
        xywh = batch["bboxes"].to(self.device, torch.float64)
        canvas = xywh.new_tensor([cw, ch, cw, ch])
        xyxy = torch.cat([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1) * canvas
        new = transform_boxes(xyxy, M[bi], (s, s)).to(torch.float32)
        keep = box_candidates((xyxy * scale[bi, None]).to(torch.float32), new)
        new, bi = new[keep], bi[keep]
        fu, fl = ud[bi], lr[bi]
        new = torch.stack([torch.where(fl, s - new[:, 2], new[:, 0]), torch.where(fu, s - new[:, 3], new[:, 1]),
                           torch.where(fl, s - new[:, 0], new[:, 2]), torch.where(fu, s - new[:, 1], new[:, 3])], 1)
        batch["bboxes"] = torch.cat([(new[:, :2] + new[:, 2:]) / 2, new[:, 2:] - new[:, :2]], 1) / s
        batch["cls"] = batch["cls"].to(self.device)[keep]
        batch["batch_idx"] = batch["batch_idx"].to(self.device)[keep]
        return batch
