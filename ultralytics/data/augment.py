"""Augmentations on one sample dict; every random draw comes from the np.random.Generator passed in.

A sample ("labels") dict holds:
  img (H, W, 3) uint8 BGR, cls (n, 1) float32, bboxes (n, 4) float32 xyxy in pixels of img,
  im_file, ori_shape (h0, w0), resized_shape (h, w), ratio_pad: (rh, rw) after loading, then
  ((rh, rw), (pad_w, pad_h)) after LetterBox; optional index, rect_shape (h, w), mosaic_border,
  mosaic_pool (dataset indices of the batch) and image_memo (their loaded images).
No transform writes into its input image (cached images are shared), each returns a new array.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

PAD_VALUE = 114


class Compose:
    """Apply transforms in order: t(labels, rng) for each."""

    def __init__(self, transforms: list):
        """transforms: callables (labels, rng) -> labels."""
        self.transforms = list(transforms)

    def __call__(self, labels: dict, rng: np.random.Generator | None = None) -> dict:
        """Run every transform."""
        for t in self.transforms:
            labels = t(labels, rng)
        return labels

    def __repr__(self) -> str:
        """Names of the transforms."""
        return f"Compose({', '.join(type(t).__name__ for t in self.transforms)})"


class LetterBox:
    """Resize keeping the aspect ratio, then pad with grey to new_shape (h, w) (or a stride multiple if auto)."""

    def __init__(self, new_shape=(640, 640), auto: bool = False, scale_fill: bool = False, scaleup: bool = True,
                 center: bool = True, stride: int = 32):
        """auto: pad only to the next stride multiple; scale_fill: stretch, no pad; scaleup: allow enlarging."""
        self.new_shape = (new_shape, new_shape) if isinstance(new_shape, int) else tuple(new_shape)
        self.auto, self.scale_fill, self.scaleup, self.center, self.stride = auto, scale_fill, scaleup, center, stride

    def __call__(self, labels: dict | None = None, rng=None, image: np.ndarray | None = None):
        """Letterbox labels['img'] (+ boxes, ratio_pad), or a bare `image` -> the letterboxed image."""
        labels = {} if labels is None else labels
        img = labels["img"] if image is None else image
        h, w = img.shape[:2]
        new_h, new_w = labels.pop("rect_shape", self.new_shape)
        r = min(new_h / h, new_w / w)
        if not self.scaleup:
            r = min(r, 1.0)
        unpad_w, unpad_h = int(round(w * r)), int(round(h * r))
        rw, rh = r, r
        dw, dh = new_w - unpad_w, new_h - unpad_h
        if self.auto:
            dw, dh = dw % self.stride, dh % self.stride
        elif self.scale_fill:
            dw = dh = 0
            unpad_w, unpad_h = new_w, new_h
            rw, rh = new_w / w, new_h / h
        if self.center:
            dw, dh = dw / 2, dh / 2
            top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
            left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
        else:
            top, bottom, left, right = 0, int(dh), 0, int(dw)
        if (unpad_w, unpad_h) != (w, h):
            img = cv2.resize(img, (unpad_w, unpad_h), interpolation=cv2.INTER_LINEAR)
        if top or bottom or left or right:
            img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
        if image is not None:
            return img
        labels["img"] = img
        if len(labels.get("bboxes", ())):
            labels["bboxes"] = labels["bboxes"] * np.array([rw, rh, rw, rh], np.float32) + np.array(
                [left, top, left, top], np.float32)
        prev = labels.get("ratio_pad", (1.0, 1.0))
        labels["ratio_pad"] = ((prev[0] * rh, prev[1] * rw), (left, top))
        labels["resized_shape"] = img.shape[:2]
        return labels


class Mosaic:
    """Four images on a (2s, 2s) grey canvas around a random centre; RandomPerspective crops it back to s."""

    def __init__(self, dataset, imgsz: int = 640, p: float = 1.0):
        """dataset: has __len__ and get_image_and_label(i) -> sample dict; p: probability of a mosaic."""
        self.dataset, self.imgsz, self.p = dataset, imgsz, p
        self.border = (-imgsz // 2, -imgsz // 2)

    def __call__(self, labels: dict, rng: np.random.Generator) -> dict:
        """Make the mosaic (or pass the sample through with probability 1 - p).

        Partners come from labels['mosaic_pool'] (the other images of the batch, decoded once into
        labels['image_memo']) when it holds >= 3 of them, else from the whole dataset.
        """
        pool, memo = labels.pop("mosaic_pool", None), labels.pop("image_memo", None)
        pool = [j for j in pool if j != labels.get("index")] if pool else []
        apply = rng.random() < self.p
        if len(pool) >= 3:  # partners from the same batch (already decoded)
            others = [pool[k] for k in rng.integers(0, len(pool), 3)]
        else:
            others = rng.integers(0, len(self.dataset), 3)
        if not apply:
            return labels
        s = self.imgsz
        xc, yc = (int(rng.uniform(-b, 2 * s + b)) for b in self.border)  # centre in [s/2, 3s/2)
        canvas = np.full((2 * s, 2 * s, 3), PAD_VALUE, np.uint8)
        cls, boxes = [], []
        for k, lab in enumerate([labels] + [self.dataset.get_image_and_label(int(i), memo) for i in others]):
            img = lab["img"]
            h, w = img.shape[:2]
            if k == 0:  # top left
                x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
                x1b, y1b, x2b, y2b = w - (x2a - x1a), h - (y2a - y1a), w, h
            elif k == 1:  # top right
                x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, 2 * s), yc
                x1b, y1b, x2b, y2b = 0, h - (y2a - y1a), min(w, x2a - x1a), h
            elif k == 2:  # bottom left
                x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(2 * s, yc + h)
                x1b, y1b, x2b, y2b = w - (x2a - x1a), 0, w, min(y2a - y1a, h)
            else:  # bottom right
                x1a, y1a, x2a, y2a = xc, yc, min(xc + w, 2 * s), min(2 * s, yc + h)
                x1b, y1b, x2b, y2b = 0, 0, min(w, x2a - x1a), min(y2a - y1a, h)
            canvas[y1a:y2a, x1a:x2a] = img[y1b:y2b, x1b:x2b]
            if len(lab["bboxes"]):
                cls.append(lab["cls"])
                boxes.append(lab["bboxes"] + np.array([x1a - x1b, y1a - y1b] * 2, np.float32))
        cls = np.concatenate(cls) if cls else np.zeros((0, 1), np.float32)
        boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
        boxes = boxes.clip(0, 2 * s)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return {"img": canvas, "cls": cls[keep], "bboxes": boxes[keep], "im_file": labels["im_file"],
                "ori_shape": labels["ori_shape"], "resized_shape": (2 * s, 2 * s),
                "ratio_pad": labels["ratio_pad"], "mosaic_border": self.border}


def box_candidates(box1: np.ndarray, box2: np.ndarray, wh_thr: float = 2, ar_thr: float = 100,
                   area_thr: float = 0.1, eps: float = 1e-16) -> np.ndarray:
    """Boxes worth keeping after a warp: box1 before (n, 4), box2 after (n, 4) xyxy -> bool (n,).

    Operators only, so numpy arrays and torch tensors (any device) both work."""
    w1, h1 = box1[:, 2] - box1[:, 0], box1[:, 3] - box1[:, 1]
    w2, h2 = box2[:, 2] - box2[:, 0], box2[:, 3] - box2[:, 1]
    aspect_ok = (w2 / (h2 + eps) < ar_thr) & (h2 / (w2 + eps) < ar_thr)  # max(w/h, h/w) < ar_thr
    return (w2 > wh_thr) & (h2 > wh_thr) & (w2 * h2 / (w1 * h1 + eps) > area_thr) & aspect_ok


class RandomPerspective:
    """Random rotation, scale, shear, translation and perspective; boxes follow their 4 corners."""

    def __init__(self, degrees: float = 0.0, translate: float = 0.1, scale: float = 0.5, shear: float = 0.0,
                 perspective: float = 0.0, border=(0, 0), pre_transform=None):
        """border: (h, w) pixels added (negative: cropped) on each side; pre_transform runs unless mosaicked."""
        self.degrees, self.translate, self.scale, self.shear = degrees, translate, scale, shear
        self.perspective, self.border, self.pre_transform = perspective, tuple(border), pre_transform

    def matrix(self, in_shape: tuple, out_shape: tuple, rng: np.random.Generator) -> tuple[np.ndarray, float]:
        """Random 3x3 warp from an image of in_shape (h, w) to out_shape (h, w), and its scale factor."""
        C = np.eye(3)
        C[0, 2], C[1, 2] = -in_shape[1] / 2, -in_shape[0] / 2  # centre at the origin
        P = np.eye(3)
        P[2, 0], P[2, 1] = rng.uniform(-self.perspective, self.perspective, 2)
        a, s = rng.uniform(-self.degrees, self.degrees), rng.uniform(1 - self.scale, 1 + self.scale)
        R = np.eye(3)
        R[:2] = cv2.getRotationMatrix2D(angle=a, center=(0, 0), scale=s)
        S = np.eye(3)
        S[0, 1], S[1, 0] = np.tan(rng.uniform(-self.shear, self.shear, 2) * math.pi / 180)
        T = np.eye(3)
        tx, ty = rng.uniform(0.5 - self.translate, 0.5 + self.translate, 2)
        T[0, 2], T[1, 2] = tx * out_shape[1], ty * out_shape[0]
        return T @ S @ R @ P @ C, s

    def draw(self, labels: dict, rng: np.random.Generator) -> tuple[dict, tuple[int, int], np.ndarray, float]:
        """Letterbox unless mosaicked, then draw the warp -> (labels, output (h, w), 3x3 warp, its scale)."""
        if self.pre_transform is not None and "mosaic_border" not in labels:
            labels = self.pre_transform(labels, rng)
        border = labels.pop("mosaic_border", self.border)
        shape = labels["img"].shape[:2]
        out_h, out_w = shape[0] + 2 * border[0], shape[1] + 2 * border[1]
        M, s = self.matrix(shape, (out_h, out_w), rng)
        return labels, (out_h, out_w), M, s

    def __call__(self, labels: dict, rng: np.random.Generator) -> dict:
        """Warp labels['img'] and its boxes; drop boxes that became too small or thin."""
        labels, (out_h, out_w), M, s = self.draw(labels, rng)
        img = labels["img"]
        if (out_h, out_w) != img.shape[:2] or not np.array_equal(M, np.eye(3)):
            if self.perspective:
                img = cv2.warpPerspective(img, M, (out_w, out_h), borderValue=(PAD_VALUE,) * 3)
            else:
                img = cv2.warpAffine(img, M[:2], (out_w, out_h), borderValue=(PAD_VALUE,) * 3)
        boxes = labels["bboxes"]
        if len(boxes):
            new = self.transform_boxes(boxes, M, (out_h, out_w))
            keep = box_candidates(boxes * np.float32(s), new)
            labels["cls"], labels["bboxes"] = labels["cls"][keep], new[keep]
        labels["img"], labels["resized_shape"] = img, img.shape[:2]
        return labels

    def transform_boxes(self, boxes: np.ndarray, M: np.ndarray, shape: tuple) -> np.ndarray:
        """xyxy boxes (n, 4) -> boxes (n, 4) enclosing their warped corners, clipped to shape (h, w)."""
        n = len(boxes)
        xy = np.ones((n * 4, 3), np.float64)
        xy[:, :2] = boxes[:, [0, 1, 2, 3, 0, 3, 2, 1]].reshape(n * 4, 2)  # x1y1, x2y2, x1y2, x2y1
        xy = xy @ M.T
        xy = (xy[:, :2] / xy[:, 2:3] if self.perspective else xy[:, :2]).reshape(n, 8)
        x, y = xy[:, 0::2], xy[:, 1::2]
        new = np.stack([x.min(1), y.min(1), x.max(1), y.max(1)], 1)
        new[:, [0, 2]] = new[:, [0, 2]].clip(0, shape[1])
        new[:, [1, 3]] = new[:, [1, 3]].clip(0, shape[0])
        return new.astype(np.float32)


class RandomHSV:
    """Random hue, saturation and value gains applied through one 3-channel lookup table."""

    def __init__(self, hgain: float = 0.5, sgain: float = 0.5, vgain: float = 0.5):
        """Gains are the maximum relative changes (hue in fractions of the colour circle)."""
        self.gains = np.array([hgain, sgain, vgain], np.float64)

    def __call__(self, labels: dict, rng: np.random.Generator) -> dict:
        """Shift the colours of labels['img']."""
        r = rng.uniform(-1, 1, 3) * self.gains + 1
        if not self.gains.any():
            return labels
        x = np.arange(256, dtype=np.float64)
        luts = (((x * r[0]) % 180).astype(np.uint8), np.clip(x * r[1], 0, 255).astype(np.uint8),
                np.clip(x * r[2], 0, 255).astype(np.uint8))
        # one single-channel table per plane: OpenCV's 3-channel LUT is about 1.5x slower than split + 3 LUTs + merge
        planes = cv2.split(cv2.cvtColor(labels["img"], cv2.COLOR_BGR2HSV))
        hsv = cv2.merge([cv2.LUT(p, lut) for p, lut in zip(planes, luts)])
        labels["img"] = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        return labels


class RandomFlip:
    """Flip image and boxes left-right ('horizontal') or up-down ('vertical') with probability p."""

    def __init__(self, p: float = 0.5, direction: str = "horizontal"):
        """direction: 'horizontal' or 'vertical'."""
        if direction not in ("horizontal", "vertical"):
            raise ValueError(f"RandomFlip direction must be 'horizontal' or 'vertical', got {direction!r}")
        self.p, self.direction = p, direction

    def __call__(self, labels: dict, rng: np.random.Generator) -> dict:
        """Maybe flip."""
        if not rng.random() < self.p:
            return labels
        img, b = labels["img"], labels["bboxes"]
        h, w = img.shape[:2]
        if self.direction == "horizontal":
            labels["img"] = cv2.flip(img, 1)
            if len(b):
                labels["bboxes"] = np.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1)
        else:
            labels["img"] = cv2.flip(img, 0)
            if len(b):
                labels["bboxes"] = np.stack([b[:, 0], h - b[:, 3], b[:, 2], h - b[:, 1]], 1)
        return labels


class DeferredAugment:
    """augment_device mode: draw the affine, HSV and flip parameters exactly as RandomPerspective, RandomHSV and
    the two RandomFlips draw them, and leave the pixels and boxes to batch_augment.BatchAugment on a device.

    The image stays a canvas of side `canvas` (the mosaic's 2s; a letterboxed image is centred on it when
    mosaics are on, so a batch stacks); labels['aug_params'] carries (warp 3x3, scale, HSV gains, flipud, fliplr).
    """

    def __init__(self, perspective: RandomPerspective, hsv: RandomHSV, flipud: RandomFlip, fliplr: RandomFlip,
                 canvas: int):
        """The per-image steps whose draws are reproduced; canvas: side of the images sent to the device."""
        self.perspective, self.hsv, self.flipud, self.fliplr, self.canvas = perspective, hsv, flipud, fliplr, canvas

    def __call__(self, labels: dict, rng: np.random.Generator) -> dict:
        """Draw the parameters; centre a letterboxed image on the canvas."""
        labels, (out_h, out_w), M, s = self.perspective.draw(labels, rng)
        img = labels["img"]
        r = rng.uniform(-1, 1, 3) * self.hsv.gains + 1
        ud, lr = rng.random() < self.flipud.p, rng.random() < self.fliplr.p
        top, left = (self.canvas - img.shape[0]) // 2, (self.canvas - img.shape[1]) // 2
        if top or left:  # centre on the canvas; the warp then starts with the shift back
            canvas = np.full((self.canvas, self.canvas, 3), PAD_VALUE, np.uint8)
            canvas[top:top + img.shape[0], left:left + img.shape[1]] = img
            shift = np.eye(3)
            shift[0, 2], shift[1, 2] = -left, -top
            M = M @ shift
            labels["img"] = canvas
            if len(labels["bboxes"]):
                labels["bboxes"] = labels["bboxes"] + np.array([left, top, left, top], np.float32)
        labels["aug_params"] = torch.from_numpy(np.concatenate([M.ravel(), [s], r, [ud, lr]]).astype(np.float64))
        labels["resized_shape"] = (out_h, out_w)
        return labels


class Format:
    """Final step: img -> uint8 tensor (3, H, W) RGB; boxes -> normalised xywh (n, 4); batch_idx zeros (n,)."""

    def __call__(self, labels: dict, rng=None) -> dict:
        """Convert the sample to tensors in the batch format."""
        img = labels.pop("img")
        h, w = img.shape[:2]
        b = labels.pop("bboxes").astype(np.float32).reshape(-1, 4)
        b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
        b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
        xywh = np.stack([(b[:, 0] + b[:, 2]) / (2 * w), (b[:, 1] + b[:, 3]) / (2 * h),
                         (b[:, 2] - b[:, 0]) / w, (b[:, 3] - b[:, 1]) / h], 1)
        n = len(xywh)
        labels["img"] = torch.from_numpy(np.stack(cv2.split(img)[::-1]))  # BGR HWC -> RGB CHW, one copy
        labels["cls"] = torch.from_numpy(labels["cls"].astype(np.float32).reshape(n, 1))
        labels["bboxes"] = torch.from_numpy(xywh.astype(np.float32))
        labels["batch_idx"] = torch.zeros(n)
        return labels


def build_transforms(dataset, imgsz: int, hyp, augment: bool, defer: bool = False) -> Compose:
    """The pipeline of a dataset: train (mosaic, affine, HSV, flips) or val (letterbox, no scale-up).

    defer: the affine, HSV and flips only draw their parameters (DeferredAugment); BatchAugment applies them."""
    if not augment:
        return Compose([LetterBox((imgsz, imgsz), scaleup=False), Format()])
    steps = [Mosaic(dataset, imgsz, p=hyp.mosaic)] if hyp.mosaic > 0 else []
    per_image = [
        RandomPerspective(hyp.degrees, hyp.translate, hyp.scale, hyp.shear, hyp.perspective,
                          pre_transform=LetterBox((imgsz, imgsz))),
        RandomHSV(hyp.hsv_h, hyp.hsv_s, hyp.hsv_v),
        RandomFlip(hyp.flipud, "vertical"),
        RandomFlip(hyp.fliplr, "horizontal"),
    ]
    if defer:
        per_image = [DeferredAugment(*per_image, canvas=2 * imgsz if hyp.mosaic > 0 else imgsz)]
    return Compose(steps + per_image + [Format()])
