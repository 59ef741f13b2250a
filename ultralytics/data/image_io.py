"""Image file reading: any common format -> BGR uint8 (H, W, 3), EXIF-rotated, with clear errors."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ultralytics.utils import UserError

IMG_FORMATS = frozenset({"bmp", "jpeg", "jpg", "png", "tif", "tiff", "webp", "mpo", "pfm", "dng", "gif"})
MIN_IMAGE_SIDE = 2  # images with a side shorter than this many pixels are skipped as "too small"
_EXIF_ORIENTATION = 0x0112
_JPEG_END = b"\xff\xd9"
# libjpeg(-turbo) DCT scaling: decode a JPEG at 1/2, 1/4 or 1/8 of its size for little more than the entropy decode
REDUCED_COLOR = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


class ImageReadError(UserError):
    """An image file that cannot be used; `.reason` is a short key: empty, truncated, unreadable, too_small."""

    def __init__(self, path: str | Path, reason: str, detail: str = ""):
        self.path, self.reason, self.detail = str(path), reason, detail
        super().__init__(f"image {path}: {reason.replace('_', ' ')}" + (f" ({detail})" if detail else ""))


def is_image_file(path: str | Path) -> bool:
    """True when the file suffix is a known image format (case-insensitive)."""
    return Path(path).suffix[1:].lower() in IMG_FORMATS


def _read_bytes(path: str | Path) -> np.ndarray:
    """Whole file as a uint8 array; raises ImageReadError for missing, unreadable or zero-byte files."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as e:  # missing, a directory, no permission
        raise ImageReadError(path, "unreadable", f"{type(e).__name__}: {e.strerror or e}") from None
    if data.size == 0:
        raise ImageReadError(path, "empty", "zero-byte file")
    return data


def _is_jpeg(data: np.ndarray) -> bool:
    """JPEG files start with the SOI marker FF D8."""
    return data.size >= 2 and data[0] == 0xFF and data[1] == 0xD8


def _pil_decode(data: np.ndarray, path: str | Path) -> np.ndarray:
    """Slow path: decode with PIL (EXIF transpose, any mode -> RGB, 16-bit scaled) and return BGR uint8."""
    try:
        with Image.open(io.BytesIO(data.tobytes())) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit grey: scale to 8 bits
                a = np.asarray(im, dtype=np.float64)
                top = 65535.0 if im.mode.startswith("I;16") or a.max() <= 65535 else float(a.max())
                a = np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
                return cv2.cvtColor(a, cv2.COLOR_GRAY2BGR)
            rgb = np.asarray(im.convert("RGB"))
    except OSError as e:
        reason = "truncated" if "truncated" in str(e).lower() else "unreadable"
        raise ImageReadError(path, reason, str(e)) from None
    except Exception as e:  # PIL raises many types for corrupt files (SyntaxError, ValueError, ...)
        raise ImageReadError(path, "unreadable", f"{type(e).__name__}: {e}") from None
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _cv2_decode(data: np.ndarray, flags: int) -> np.ndarray | None:
    """cv2.imdecode, None when OpenCV cannot decode the bytes (it raises cv2.error for some corrupt files)."""
    try:
        return cv2.imdecode(data, flags)
    except cv2.error:
        return None


def reduce_factor(shape: tuple[int, int], target: int) -> int:
    """Largest DCT scale (1, 2, 4 or 8) for an image of shape (h, w) whose long side is then resized to
    `target`: the reduced image's long side is still >= target, so the final resize only shrinks."""
    f = 8
    while f > 1 and max(shape) < f * target:
        f //= 2
    return f


def imread(path: str | Path, reduce: int = 1) -> np.ndarray:
    """Read an image file -> BGR uint8 (H, W, 3), EXIF orientation applied.

    Handles grayscale, RGBA (alpha dropped), palette, CMYK and 16-bit (scaled to 8 bits) files.
    reduce: 2, 4 or 8 decodes a (complete) JPEG at that fraction of its size (sides rounded up), much faster;
    other formats and truncated JPEGs are decoded at full size (the caller resizes to its target either way).
    Raises ImageReadError (a UserError) naming the file for zero-byte, truncated or unreadable files.
    """
    data = _read_bytes(path)
    if _is_jpeg(data) and bytes(data[-2:]) != _JPEG_END:
        im = None  # no end marker: truncated unless PIL can decode it fully (some files carry trailing bytes)
    else:
        flag = REDUCED_COLOR.get(reduce, cv2.IMREAD_COLOR) if _is_jpeg(data) else cv2.IMREAD_COLOR
        im = _cv2_decode(data, flag)  # applies EXIF orientation, drops alpha, 16 -> 8 bit
    if im is None:
        im = _pil_decode(data, path)
    if min(im.shape[:2]) < MIN_IMAGE_SIDE:
        raise ImageReadError(path, "too_small", f"{im.shape[1]}x{im.shape[0]} px")
    return im


def image_info(path: str | Path) -> tuple[int, int]:
    """Check an image file cheaply (header + integrity, no full decode when avoidable) -> (h, w) after EXIF.

    Raises ImageReadError with reason empty / truncated / unreadable / too_small.
    """
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise ImageReadError(path, "unreadable", e.strerror or str(e)) from None
    if size == 0:
        raise ImageReadError(path, "empty", "zero-byte file")
    try:
        with Image.open(path) as im:
            w, h = im.size
            fmt = im.format
            im.verify()  # checks structure (PNG chunk CRCs etc.) without decoding pixels
        with Image.open(path) as im:  # verify() leaves the image unusable: reopen for the EXIF header
            orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
        # The scan must accept exactly the files imread() can decode during training: a file that passes here
        # and fails there would stop a training mid-epoch. verify() checks every PNG chunk CRC, little else.
        if fmt in ("JPEG", "MPO"):
            with open(path, "rb") as f:
                f.seek(-2, os.SEEK_END)
                if f.read() != _JPEG_END:  # maybe truncated: a full decode decides
                    with Image.open(path) as im2:
                        im2.load()
                elif _cv2_decode(np.fromfile(str(path), np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8) is None:
                    imread(path)  # corrupt entropy data (a 1/8-scale decode runs it all, fast): PIL decides
        elif fmt != "PNG":
            imread(path)  # BMP, TIFF, GIF, WebP, ...: verify() does not read the pixels; decode them
    except ImageReadError:
        raise
    except UnidentifiedImageError:  # a format PIL does not know (e.g. PFM): let OpenCV decode it
        return imread(path).shape[:2]
    except OSError as e:
        reason = "truncated" if "truncated" in str(e).lower() else "unreadable"
        raise ImageReadError(path, reason, str(e)) from None
    except Exception as e:
        raise ImageReadError(path, "unreadable", f"{type(e).__name__}: {e}") from None
    if orientation in (5, 6, 7, 8):  # rotated by 90 or 270 degrees
        w, h = h, w
    if min(w, h) < MIN_IMAGE_SIDE:
        raise ImageReadError(path, "too_small", f"{w}x{h} px")
    return h, w


def fit_shape(shape0: tuple[int, int], imgsz) -> tuple[int, int]:
    """(h, w) of an (h0, w0) image scaled to fit imgsz (an int: the long side; or (H, W)), sides rounded up."""
    (H, W), (h0, w0) = ((imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz)), shape0
    r = min(H / h0, W / w0)
    return min(math.ceil(h0 * r), H), min(math.ceil(w0 * r), W)


def resize_to_fit(im: np.ndarray, imgsz, shape0: tuple[int, int] | None = None, augment: bool = False) -> np.ndarray:
    """The loaders' resize: image (h, w, 3) of an (h0, w0) original (default its own shape) -> fit_shape(shape0).

    INTER_AREA when shrinking without augmentation (validation, prediction), INTER_LINEAR otherwise (training
    shrinks, upscaling). im may be a reduced-scale decode of the original (then shape0 is the original's).
    """
    shape0 = tuple(shape0 or im.shape[:2])
    h, w = fit_shape(shape0, imgsz)
    if im.shape[:2] == (h, w):
        return im
    interp = cv2.INTER_LINEAR if (augment or h > shape0[0] or w > shape0[1]) else cv2.INTER_AREA
    return cv2.resize(im, (w, h), interpolation=interp)


def read_resized(path: str | Path, imgsz, shape0: tuple[int, int] | None = None, fast_decode: bool = True,
                 augment: bool = False) -> tuple[np.ndarray, tuple[int, int]]:
    """Read an image file as the model sees it -> (BGR (h, w, 3) fitted to imgsz, original (h0, w0)).

    fast_decode: a JPEG at least twice the target size is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT
    scaling, reduce_factor) before the resize: several times faster, and the pixels differ from a full decode
    (docs/09, 'Fast JPEG decoding'). shape0: the original (h, w) if known (the label cache), needed to pick
    the factor; without it the file's header is read. Training, validation and prediction all read through
    here, so a model is scored on the pixels it is shown.
    """
    if shape0 is None and fast_decode:
        shape0 = header_shape(path)
    f = reduce_factor(shape0, max(fit_shape(shape0, imgsz))) if fast_decode and shape0 else 1
    im = imread(path, f)
    shape0 = tuple(shape0) if f > 1 else im.shape[:2]
    return resize_to_fit(im, imgsz, shape0, augment), shape0


def header_shape(path: str | Path) -> tuple[int, int] | None:
    """(h, w) after EXIF rotation from the file header only (no decode); None when PIL cannot read it."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                w, h = h, w
    except Exception:  # the decode that follows reports the problem with its own message
        return None
    return h, w


def model_view(im0: np.ndarray, file: str | Path | None, imgsz, fast_decode: bool = True):
    """An image to predict -> (BGR image fitted to imgsz exactly as validation loads it, (gain_h, gain_w)).

    im0: the full decode (kept for the results); file: the path it was read from, or None (an array, a video
    frame). With fast_decode a JPEG file at least twice the target size is decoded again at reduced scale,
    as read_resized does for validation, so prediction and validation show the model the same pixels.
    """
    shape0 = im0.shape[:2]
    f = reduce_factor(shape0, max(fit_shape(shape0, imgsz))) if fast_decode and file is not None else 1
    im = im0
    if f > 1:
        with open(file, "rb") as fh:
            if fh.read(2) == b"\xff\xd8":  # a JPEG (other formats have no reduced decode)
                im = imread(file, f)
    im = resize_to_fit(im, imgsz, shape0)
    return im, (im.shape[0] / shape0[0], im.shape[1] / shape0[1])
