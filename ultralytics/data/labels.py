"""YOLO label files: parse and check rows, verify image+label pairs, and count what was dropped and why.

Label rows are `class x_center y_center width height` (normalised 0-1), or a polygon
`class x1 y1 x2 y2 x3 y3 ...` (>= 3 points) which becomes its enclosing box.
Row policy (a bad row is dropped, the image is kept with its good rows):
- columns:        not 5 values and not an odd count >= 7 (polygon)
- non_numeric:    a value that is not a number, or NaN / inf
- class_id:       class not an integer in [0, nc)
- size:           width or height <= 0 (also after clipping to the image)
- out_of_bounds:  a coordinate below -0.01 or above 1.01; smaller excess is clipped: box edges are
                  clipped to [0, 1] (boxes reaching past the border are normal in real datasets)
- duplicate:      a row identical (after parsing) to an earlier row of the same file
- not_utf8:       a row with bytes that are not UTF-8
Image policy: empty / truncated / unreadable / missing / too_small image files are skipped;
an unreadable label file skips its image; no label file or an empty one makes a background image.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ultralytics.data.image_io import ImageReadError, image_info
from ultralytics.utils import LOGGER

COORD_TOL = 0.01  # coordinates may exceed [0, 1] by this much (then clipped); more drops the row
ROW_REASONS = ("columns", "non_numeric", "class_id", "size", "out_of_bounds", "duplicate", "not_utf8")
IMAGE_REASONS = ("missing", "empty", "truncated", "unreadable", "too_small", "label_unreadable")
_N_EXAMPLES = 5


def parse_label_bytes(raw: bytes, nc: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
    """Parse the bytes of a label file -> cls (n,) float32, bboxes (n, 4) float32 xywh in [0, 1], dropped rows.

    dropped: list of (row number starting at 1, reason) for every row not kept.
    """
    if raw.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte order mark
        raw = raw[3:]
    rows, dropped, seen = [], [], set()
    for i, line in enumerate(raw.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            parts = line.decode("utf-8").split()
        except UnicodeDecodeError:
            dropped.append((i, "not_utf8"))
            continue
        row, reason = _parse_row(parts, nc)
        if reason is None:
            key = tuple(row)
            if key in seen:
                reason = "duplicate"
            else:
                seen.add(key)
                rows.append(row)
        if reason is not None:
            dropped.append((i, reason))
    if not rows:
        return np.zeros(0, np.float32), np.zeros((0, 4), np.float32), dropped
    a = np.asarray(rows, dtype=np.float32)
    return a[:, 0], a[:, 1:5], dropped


def _parse_row(parts: list[str], nc: int) -> tuple[list[float] | None, str | None]:
    """One label row -> ([cls, x, y, w, h], None) or (None, reason)."""
    n = len(parts)
    if n != 5 and not (n >= 7 and n % 2 == 1):
        return None, "columns"
    try:
        v = np.array([float(p) for p in parts], dtype=np.float64)
    except ValueError:
        return None, "non_numeric"
    if not np.isfinite(v).all():
        return None, "non_numeric"
    c = v[0]
    if c != int(c) or not 0 <= c < nc:
        return None, "class_id"
    lo, hi = -COORD_TOL, 1.0 + COORD_TOL
    if n == 5:
        x, y, w, h = v[1:]
        if w <= 0 or h <= 0:
            return None, "size"
        if not (lo <= x <= hi and lo <= y <= hi and w <= hi and h <= hi):
            return None, "out_of_bounds"
        x1, y1, x2, y2 = x - w / 2, y - h / 2, x + w / 2, y + h / 2
    else:  # polygon -> enclosing box
        xs, ys = v[1::2], v[2::2]
        if ((xs < lo) | (xs > hi) | (ys < lo) | (ys > hi)).any():
            return None, "out_of_bounds"
        x1, y1, x2, y2 = xs.min(), ys.min(), xs.max(), ys.max()
    x1, y1, x2, y2 = (float(np.clip(t, 0.0, 1.0)) for t in (x1, y1, x2, y2))
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return None, "size"
    return [c, (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], None


def verify_image_label(im_file: str, lb_file: str, nc: int) -> dict:
    """Check one image and its label file -> a record with the status of the pair.

    Returns {'im_file', 'ok': bool, 'reason': image-level reason or None, 'detail': str,
    'shape': (h, w), 'cls': (n,) float32, 'bboxes': (n, 4) xywh normalised float32,
    'label': 'found' | 'missing' | 'empty', 'dropped': [(row, reason), ...]}.
    """
    rec = {"im_file": im_file, "ok": False, "reason": None, "detail": "", "shape": (0, 0),
           "cls": np.zeros(0, np.float32), "bboxes": np.zeros((0, 4), np.float32), "label": "missing",
           "dropped": []}
    try:
        rec["shape"] = image_info(im_file)
    except ImageReadError as e:
        reason = "missing" if "No such file" in e.detail else e.reason
        rec.update(reason=reason, detail=e.detail)
        return rec
    try:
        raw = Path(lb_file).read_bytes()
    except FileNotFoundError:
        rec["ok"] = True  # background image
        return rec
    except OSError as e:
        rec.update(reason="label_unreadable", detail=f"{lb_file}: {e.strerror or e}")
        return rec
    rec["cls"], rec["bboxes"], rec["dropped"] = parse_label_bytes(raw, nc)
    rec["label"] = "found" if raw.strip() else "empty"
    rec["ok"] = True
    return rec


class LabelReport:
    """Counts of images and rows kept or dropped, by reason: every skipped image, the first few rows of each."""

    def __init__(self):
        """Start empty; fill with add()."""
        self.found = 0
        self.used = 0
        self.backgrounds = 0
        self.missing_labels = 0
        self.instances = 0
        self.images_skipped: Counter = Counter()
        self.rows_dropped: Counter = Counter()
        self.examples: dict[str, list[str]] = {}

    def _example(self, reason: str, text: str, limit: int | None = _N_EXAMPLES) -> None:
        """Keep the first `limit` examples of a reason (all of them with limit=None)."""
        lst = self.examples.setdefault(reason, [])
        if limit is None or len(lst) < limit:
            lst.append(text)

    def add(self, rec: dict, lb_file: str = "") -> None:
        """Account for one verify_image_label() record."""
        self.found += 1
        if not rec["ok"]:
            self.images_skipped[rec["reason"]] += 1
            self._example(rec["reason"], f"{rec['im_file']}" + (f" ({rec['detail']})" if rec["detail"] else ""),
                          limit=None)  # every skipped image is named; dropped rows are counted, a few named
            return
        self.used += 1
        n = len(rec["cls"])
        self.instances += n
        self.backgrounds += n == 0
        self.missing_labels += rec["label"] == "missing"
        for row, reason in rec["dropped"]:
            self.rows_dropped[reason] += 1
            self._example(reason, f"{lb_file or rec['im_file']}:{row}")

    def stats(self) -> dict:
        """Plain dict of the counts (JSON-safe)."""
        return {"images_found": self.found, "images_used": self.used,
                "images_skipped": dict(self.images_skipped), "rows_dropped": dict(self.rows_dropped),
                "backgrounds": self.backgrounds, "missing_labels": self.missing_labels,
                "instances": self.instances}

    def to_dict(self) -> dict:
        """Everything, for the label cache."""
        return {"stats": self.stats(), "examples": self.examples}

    @classmethod
    def from_dict(cls, d: dict) -> "LabelReport":
        """Rebuild from to_dict() output."""
        r, s = cls(), d["stats"]
        r.found, r.used, r.backgrounds = s["images_found"], s["images_used"], s["backgrounds"]
        r.missing_labels, r.instances = s["missing_labels"], s["instances"]
        r.images_skipped, r.rows_dropped = Counter(s["images_skipped"]), Counter(s["rows_dropped"])
        r.examples = {k: list(v) for k, v in d["examples"].items()}
        return r

    def summary(self) -> str:
        """One line: images used/found, backgrounds, instances."""
        return (f"{self.used}/{self.found} images used, {self.backgrounds} backgrounds "
                f"({self.missing_labels} without a label file), {self.instances} instances")

    def warn(self, prefix: str = "") -> None:
        """Log ONE warning listing skipped images and dropped rows by reason, with examples; silent if clean."""
        if not self.images_skipped and not self.rows_dropped:
            return
        lines = [f"{prefix}WARNING ⚠️ some data was not used ({self.summary()}):"]
        for kind, counter in (("images skipped", self.images_skipped), ("label rows dropped", self.rows_dropped)):
            for reason, n in sorted(counter.items()):
                ex = self.examples.get(reason, [])
                more = ", ..." if n > len(ex) else ""
                lines.append(f"  {kind}: {n} {reason}: {', '.join(ex)}{more}")
        LOGGER.warning("\n".join(lines))
