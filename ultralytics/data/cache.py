"""Label cache: verified labels of a dataset in one .npz-format file, keyed by a hash of the files.

The file holds plain arrays and a JSON header only (loaded with allow_pickle=False: loading it runs
no code). It is written to a temporary file and moved into place with os.replace, so a reader sees
either the old complete file or the new complete file. A cache whose version or hash differs, or that
fails to load, is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ultralytics.utils import LOGGER

if TYPE_CHECKING:  # the annotation only; labels.py imports this module
    from ultralytics.data.labels import LabelReport

CACHE_VERSION = 1


def files_hash(paths: list[str], extra: str = "") -> str:
    """SHA-256 over each path with its size and mtime (or 'missing'), plus an extra string."""
    h = hashlib.sha256(f"v{CACHE_VERSION}|{extra}".encode())
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}|missing\n".encode())
    return h.hexdigest()


def save_cache(path: Path, key: str, records: list[dict], report: dict) -> bool:
    """Write the kept records (im_file, shape, cls, bboxes) and the report; True when written.

    records: dicts with 'im_file', 'shape' (h, w), 'cls' (n,), 'bboxes' (n, 4).
    """
    counts = np.array([len(r["cls"]) for r in records], dtype=np.int64)
    cls = np.concatenate([r["cls"] for r in records]) if records else np.zeros(0, np.float32)
    bboxes = np.concatenate([r["bboxes"] for r in records]) if records else np.zeros((0, 4), np.float32)
    header = {"version": CACHE_VERSION, "hash": key, "im_files": [r["im_file"] for r in records], "report": report}
    buf = io.BytesIO()
    np.savez(buf, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), counts=counts,
             shapes=np.array([r["shape"] for r in records], dtype=np.int64).reshape(-1, 2),
             cls=cls.astype(np.float32), bboxes=bboxes.astype(np.float32).reshape(-1, 4))
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buf.getvalue())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    except OSError as e:
        LOGGER.warning(f"WARNING ⚠️ label cache not written: {path.parent} is not writable ({e.strerror or e})")
        return False
    return True


def load_cache(path: Path, key: str) -> tuple[list[dict], dict] | None:
    """Read a cache written by save_cache -> (records, report), or None when absent, stale or corrupt."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(z["header"].tobytes().decode())
            if header.get("version") != CACHE_VERSION or header.get("hash") != key:
                return None
            counts, shapes, cls, bboxes = z["counts"], z["shapes"], z["cls"], z["bboxes"]
        files = header["im_files"]
        if len(files) != len(counts) or counts.sum() != len(cls) or len(cls) != len(bboxes):
            return None
        ends = np.cumsum(counts)
        starts = ends - counts
        records = [{"im_file": f, "shape": (int(s[0]), int(s[1])), "cls": cls[a:b], "bboxes": bboxes[a:b]}
                   for f, s, a, b in zip(files, shapes, starts, ends)]
        return records, header["report"]
    except Exception as e:  # truncated / foreign / corrupt file: rebuild
        LOGGER.info(f"label cache {path} could not be read ({type(e).__name__}), rebuilding")
        return None


def scan_labels(im_files: list[str], label_files: list[str], nc: int, cache_path: Path | None,
                prefix: str = "") -> tuple[list[dict], LabelReport]:
    """Verified labels of the images (from the cache when it is current, else scanned and cached).

    Returns the kept records ({'im_file', 'shape', 'cls' (n,), 'bboxes' (n, 4) xywh}) and the LabelReport.
    """
    from concurrent.futures import ThreadPoolExecutor

    from ultralytics.data.labels import LabelReport, verify_image_label
    from ultralytics.utils import NUM_THREADS

    key = files_hash(im_files + label_files, extra=f"nc={nc}")
    if cache_path is not None:
        hit = load_cache(cache_path, key)
        if hit is not None:
            records, report = hit
            report = LabelReport.from_dict(report)
            LOGGER.info(f"{prefix}Labels from cache {cache_path}: {report.summary()}")
            return records, report
    report, records = LabelReport(), []
    with ThreadPoolExecutor(NUM_THREADS) as pool:
        for rec, lb in zip(pool.map(verify_image_label, im_files, label_files, [nc] * len(im_files)), label_files):
            report.add(rec, lb)
            if rec["ok"]:
                records.append({k: rec[k] for k in ("im_file", "shape", "cls", "bboxes")})
    LOGGER.info(f"{prefix}Scanned labels: {report.summary()}")
    if cache_path is not None:
        if Path(cache_path).parent.is_dir():
            if save_cache(cache_path, key, records, report.to_dict()):
                LOGGER.info(f"{prefix}Label cache written: {cache_path}")
        else:
            LOGGER.info(f"{prefix}No label cache: folder {Path(cache_path).parent} does not exist")
    return records, report
