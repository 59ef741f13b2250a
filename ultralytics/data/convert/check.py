"""Cheap image checks for conversion: size from the header, integrity without a full decode, content hash.

One read of the file serves all three: the bytes are hashed (blake2b, for duplicates), PIL reads the
header (size, EXIF orientation) and `verify()`s the structure (PNG chunk CRCs; no pixel decode), and a
JPEG must end with its end-of-image marker FF D9 (a truncated download lacks it). A JPEG whose entropy
data is corrupt in the middle passes here; training's own label scan (ultralytics/data/labels.py) decodes
it at 1/8 scale and skips it with a warning. Formats other than JPEG/PNG are decoded fully (rare).
"""

from __future__ import annotations

import hashlib
import io

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ultralytics.data.image_io import (_EXIF_ORIENTATION, _JPEG_END, MIN_IMAGE_SIDE, ImageReadError, _cv2_decode,
                                       _pil_decode)


def inspect_image(path, data: bytes | None = None, max_bytes: int | None = None) -> tuple[int, int, str]:
    """(width, height after EXIF rotation, content hash) of an image file; ImageReadError when unusable.

    data: the image's bytes when they do not come from `path` (LabelMe imageData); max_bytes: read at most
    this many bytes (a larger file is `too_large`, whatever its size claimed when it was stat'ed).
    """
    if data is None:
        try:
            with open(path, "rb") as f:
                data = f.read() if max_bytes is None else f.read(max_bytes + 1)
        except FileNotFoundError:
            raise ImageReadError(path, "missing", "no such file") from None
        except OSError as e:
            raise ImageReadError(path, "unreadable", e.strerror or str(e)) from None
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageReadError(path, "too_large", f"over max_image_mb={max_bytes / 2**20:.3g}")
    if not data:
        raise ImageReadError(path, "empty", "zero-byte file")
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as im:
            (w, h), fmt = im.size, im.format
            im.verify()
        orientation = 1
        if fmt in ("JPEG", "MPO", "WEBP"):  # verify() leaves the image unusable: reopen for the EXIF header
            with Image.open(io.BytesIO(data)) as im:
                orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
        if fmt in ("JPEG", "MPO"):
            if data.rstrip(b"\x00")[-2:] != _JPEG_END:
                raise ImageReadError(path, "truncated", "JPEG end marker FF D9 missing")
        elif fmt != "PNG":
            h, w = _decode(path, data).shape[:2]
            orientation = 1
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        h, w = _decode(path, data).shape[:2]  # a format PIL does not know: OpenCV decides (raises ImageReadError)
        orientation = 1
    except Exception as e:  # noqa: BLE001 - PIL raises many types for corrupt files
        raise ImageReadError(path, "corrupt", f"{type(e).__name__}: {e}") from None
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    if min(w, h) < MIN_IMAGE_SIDE:
        raise ImageReadError(path, "too_small", f"{w}x{h} px")
    return w, h, digest


def _decode(path, data: bytes) -> np.ndarray:
    """Full decode of the bytes already read (formats other than JPEG/PNG); ImageReadError when OpenCV cannot."""
    arr = np.frombuffer(data, np.uint8)
    im = _cv2_decode(arr, cv2.IMREAD_COLOR)
    return _pil_decode(arr, path) if im is None else im
