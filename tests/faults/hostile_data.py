"""A seeded generator of hostile datasets: garbage label rows of known reasons and broken or odd image files.

Every generated item carries the outcome the data pipeline must give it, so tests can compare the
pipeline's report with the truth: which images are used, which are skipped and why, which rows are dropped
and why (row numbers included).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

NC = 6
NAMES = {i: f"c{i}" for i in range(NC)}


def _f(x: float) -> str:
    return f"{x:.6f}"


def good_row(rng) -> str:
    c = rng.integers(NC)
    x, y = rng.uniform(0.2, 0.8, 2)
    w, h = rng.uniform(0.05, 0.3, 2)
    return f"{c} {_f(x)} {_f(y)} {_f(w)} {_f(h)}"


def bad_row(rng, reason: str) -> bytes:
    """One label line that the parser must drop for `reason`."""
    x, y, w, h = (_f(v) for v in (*rng.uniform(0.3, 0.7, 2), *rng.uniform(0.05, 0.2, 2)))
    c = str(rng.integers(NC))
    if reason == "columns":
        n = int(rng.choice([1, 2, 3, 4, 6, 8]))
        line = " ".join(_f(v) for v in rng.uniform(0, 1, n))
    elif reason == "non_numeric":
        bad = str(rng.choice(["nan", "NaN", "inf", "-inf", "1e999", "abc", "0x1F", "1,5", "--1"]))
        vals = [c, x, y, w, h]
        vals[int(rng.integers(5))] = bad
        line = " ".join(vals)
    elif reason == "class_id":
        cls = str(rng.choice(["-1", str(NC), "99", "1.5", "1e9", "2.000001"]))
        line = f"{cls} {x} {y} {w} {h}"
    elif reason == "size":
        neg = str(rng.choice(["-0.1", "0", "-1e30", "-0.000001"]))
        line = f"{c} {x} {y} {neg} {h}" if rng.random() < 0.5 else f"{c} {x} {y} {w} {neg}"
    elif reason == "out_of_bounds":  # a centre off the image, or a size past it (a negative size is 'size')
        vals, pos = [c, x, y, w, h], int(rng.integers(1, 5))
        vals[pos] = str(rng.choice(["1e30", "3.4e38", "1.5", "-2", "100"] if pos < 3 else ["1e30", "1.5", "100"]))
        line = " ".join(vals)
    elif reason == "not_utf8":
        return b"\xff" + bytes(rng.integers(128, 256, int(rng.integers(1, 20))).tolist()) + b" 0.5 0.5"
    else:
        raise ValueError(reason)
    return line.encode()


ROW_REASONS = ("columns", "non_numeric", "class_id", "size", "out_of_bounds", "not_utf8", "duplicate")


def label_file(rng, n_good: int, n_bad: int) -> tuple[bytes, int, list[tuple[int, str]]]:
    """(file bytes, rows kept, [(row number, reason) dropped]) with blank lines, CRLF and duplicates mixed in."""
    good = [good_row(rng) for _ in range(n_good)]
    lines: list[tuple[bytes, str | None]] = [(g.encode(), None) for g in good]
    for _ in range(n_bad):
        reason = str(rng.choice(ROW_REASONS))
        if reason == "duplicate":
            if not good:
                continue
            lines.append((good[int(rng.integers(len(good)))].encode(), "duplicate"))
        else:
            lines.append((bad_row(rng, reason), reason))
    order = rng.permutation(len(lines))
    lines = [lines[i] for i in order]
    # a duplicate must come after its original: re-label in file order
    seen, out, dropped, n_row = set(), [], [], 0
    for text, reason in lines:
        if rng.random() < 0.15:
            out.append(b"   ")  # blank line: not a row, but it counts in the numbering
            n_row += 1
        n_row += 1
        if reason in (None, "duplicate"):
            reason = "duplicate" if text in seen else None
            seen.add(text)
        out.append(text)
        if reason is not None:
            dropped.append((n_row, reason))
    sep = b"\r\n" if rng.random() < 0.3 else b"\n"
    return sep.join(out) + sep, len(seen), dropped


def _jpeg(img: np.ndarray, quality: int = 90) -> bytes:
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def _png(img: np.ndarray) -> bytes:
    return cv2.imencode(".png", img)[1].tobytes()


def _pil(mode_img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    mode_img.save(buf, format=fmt)
    return buf.getvalue()


def noise(rng, h: int = 48, w: int = 64) -> np.ndarray:
    img = cv2.GaussianBlur((rng.random((h, w, 3)) * 255).astype(np.uint8), (5, 5), 0)
    return img


def corrupt_jpeg(rng) -> tuple[bytes, str]:
    """(bytes, reason) of a JPEG with an intact end marker whose entropy-coded data no decoder accepts."""
    from ultralytics.data.image_io import ImageReadError, imread

    import tempfile

    base = _jpeg(noise(rng, 96, 128))
    fd, name = tempfile.mkstemp(suffix=".jpg")  # decoded from a file, as the pipeline does
    os.close(fd)
    tmp = Path(name)
    try:
        for _ in range(2000):
            b = bytearray(base)
            for i in rng.integers(200, len(b) - 2, 8):
                b[i] = rng.integers(256)
            if b[-2:] != b"\xff\xd9":
                continue
            tmp.write_bytes(bytes(b))
            try:
                imread(tmp)
            except ImageReadError as e:
                return bytes(b), e.reason
    finally:
        tmp.unlink(missing_ok=True)
    raise RuntimeError("no undecodable JPEG found")


def image_files(rng, prefix: str) -> dict[str, tuple[bytes, str | None]]:
    """name -> (bytes, skip reason or None if the image must be used). Odd-but-valid files must be used."""
    img = noise(rng)
    gray16 = (rng.random((40, 50)) * 65535).astype(np.uint16)
    files = {
        "png_named.jpg": (_png(img), None),  # wrong extension, valid content
        "gray16.png": (_png(gray16), None),  # 16-bit
        "cmyk.jpg": (_pil(Image.fromarray(img[..., ::-1]).convert("CMYK"), "JPEG"), None),
        "rgba.png": (_pil(Image.fromarray(np.dstack([img, img[..., :1]])), "PNG"), None),
        "palette.gif": (_pil(Image.fromarray(img).convert("P"), "GIF"), None),
        "tall.bmp": (_pil(Image.fromarray(noise(rng, 90, 20)), "BMP"), None),
        "zero.jpg": (b"", "empty"),
        "trunc.jpg": (_jpeg(img)[: int(len(_jpeg(img)) * rng.uniform(0.3, 0.8))], "truncated"),
        "trunc.png": (_png(img)[: int(len(_png(img)) * rng.uniform(0.3, 0.8))], "truncated"),
        "trunc.bmp": (_pil(Image.fromarray(img), "BMP")[:700], "truncated"),
        "text.jpg": (b"this is not an image\n" * 5, "unreadable"),
        "random.png": (rng.bytes(500), "unreadable"),
        "one_px.png": (_png(np.zeros((1, 1, 3), np.uint8)), "too_small"),
        "one_row.jpg": (_jpeg(noise(rng, 1, 64)), "too_small"),
        "corrupt_data.jpg": corrupt_jpeg(rng),
    }
    return {f"{prefix}{k}": v for k, v in files.items()}


def write_split(root: Path, split: str, rng, n_plain: int) -> dict:
    """Write images/<split> and labels/<split>; return the truth: used, skipped {name: reason}, dropped rows."""
    im_dir, lb_dir = root / "images" / split, root / "labels" / split
    im_dir.mkdir(parents=True)
    lb_dir.mkdir(parents=True)
    prefix = f"{split[:2]}_"
    files = image_files(rng, prefix)
    for i in range(n_plain):
        files[f"{prefix}plain{i}.jpg"] = (_jpeg(noise(rng)), None)
    truth = {"used": set(), "skipped": {}, "dropped": {}, "instances": 0, "backgrounds": 0, "missing": 0}
    for name, (data, reason) in files.items():
        (im_dir / name).write_bytes(data)
        if reason is not None:
            truth["skipped"][name] = reason
            (lb_dir / (Path(name).stem + ".txt")).write_text(good_row(rng) + "\n")
            continue
        truth["used"].add(name)
        kind = rng.random()
        if name.endswith("plain0.jpg"):  # no label file: a background image
            truth["missing"] += 1
            truth["backgrounds"] += 1
            continue
        n_good = 0 if name.endswith("plain1.jpg") else int(rng.integers(1, 4))
        raw, kept, dropped = label_file(rng, n_good, int(rng.integers(0, 6)) if kind < 0.8 else 0)
        (lb_dir / (Path(name).stem + ".txt")).write_bytes(raw)
        truth["instances"] += kept
        truth["backgrounds"] += kept == 0
        truth["dropped"][Path(name).stem + ".txt"] = dropped
    # an image whose label path is a folder: the label cannot be read, the image is skipped
    (im_dir / f"{prefix}labeldir.jpg").write_bytes(_jpeg(noise(rng)))
    (lb_dir / f"{prefix}labeldir.txt").mkdir()
    truth["skipped"][f"{prefix}labeldir.jpg"] = "label_unreadable"
    (im_dir / f"{prefix}notes.txt").write_text("not an image: ignored, not counted\n")
    return truth


def make_dataset(root: Path, seed: int, n_plain_train: int = 8, n_plain_val: int = 3) -> tuple[Path, dict]:
    """A hostile dataset under root with its data YAML; returns (yaml path, {split: truth})."""
    import yaml

    rng = np.random.default_rng(seed)
    truth = {"train": write_split(root, "train", rng, n_plain_train), "val": write_split(root, "val", rng, n_plain_val)}
    f = root / "hostile.yaml"
    f.write_text(yaml.safe_dump({"path": str(root), "train": "images/train", "val": "images/val", "names": NAMES}))
    return f, truth


def expected_stats(t: dict) -> dict:
    """The dataset.stats the truth implies."""
    from collections import Counter

    rows = Counter(r for d in t["dropped"].values() for _, r in d)
    return {"images_found": len(t["used"]) + len(t["skipped"]), "images_used": len(t["used"]),
            "images_skipped": dict(Counter(t["skipped"].values())), "rows_dropped": dict(rows),
            "backgrounds": t["backgrounds"], "missing_labels": t["missing"], "instances": t["instances"]}
