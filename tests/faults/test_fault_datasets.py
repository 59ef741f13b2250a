"""Hostile or broken datasets: garbage labels and broken images are skipped, reported once, the rest all used.

Fuzzed three ways: label bytes (hypothesis, derandomized), image files of six formats corrupted by a seeded
generator (the label scan and the training-time decoder must agree on every file, or a training would stop
mid-epoch), and whole datasets (seeded) that are scanned, trained on for an epoch and validated.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ultralytics import YOLO
from ultralytics.data.image_io import ImageReadError, image_info, imread
from ultralytics.data.labels import ROW_REASONS, parse_label_bytes
from ultralytics.utils import LOGGER

from . import hostile_data as hd
from .helpers import TINY_MODEL


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def warnings(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == logging.WARNING]


@pytest.fixture
def log():
    h = _Capture()
    LOGGER.addHandler(h)
    yield h
    LOGGER.removeHandler(h)


# --- label bytes ----------------------------------------------------------------------------------------------
@settings(derandomize=True, max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_good=st.integers(0, 6), n_bad=st.integers(0, 12))
def test_label_fuzz_known_reasons(seed, n_good, n_bad):
    """Generated label files of known content: every bad row is dropped with its reason and row number."""
    raw, kept, dropped = hd.label_file(np.random.default_rng(seed), n_good, n_bad)
    cls, boxes, got = parse_label_bytes(raw, hd.NC)
    assert got == dropped and len(cls) == kept


@settings(derandomize=True, max_examples=300, deadline=None)
@given(raw=st.one_of(st.binary(max_size=400), st.lists(st.sampled_from(
    ["0", "5", "6", "-1", "0.5", "1.0", "1e30", "-1e30", "nan", "inf", "1.01", "-0.01", "0.0", "x", "\u00e9",
     "1e-40", "2.5", " ", "\t"]), max_size=60).map(lambda t: " ".join(t).replace(" \t ", "\n").encode())))
def test_label_fuzz_any_bytes(raw):
    """Any bytes at all: no exception; kept boxes are finite, inside the image, of positive size, valid class."""
    cls, boxes, dropped = parse_label_bytes(raw, hd.NC)
    lines = [ln for ln in (raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw).splitlines() if ln.strip()]
    assert len(cls) + len(dropped) == len(lines)  # every row is kept or dropped, once
    assert all(reason in ROW_REASONS for _, reason in dropped)
    assert np.isfinite(boxes).all() and np.isfinite(cls).all()
    assert ((cls >= 0) & (cls < hd.NC) & (cls == np.round(cls))).all()
    x, y, w, h = boxes.T if len(boxes) else np.zeros((4, 0))
    assert ((w > 0) & (h > 0)).all()
    assert ((x - w / 2 >= -1e-6) & (x + w / 2 <= 1 + 1e-6) & (y - h / 2 >= -1e-6) & (y + h / 2 <= 1 + 1e-6)).all()


# --- image files ----------------------------------------------------------------------------------------------
def _corruptions(rng, data: bytes, n: int):
    for k in range(n):
        b = bytearray(data)
        kind = k % 3
        if kind == 0:  # flipped bytes past the header
            for i in rng.integers(min(20, len(b) - 3), len(b) - 2, int(rng.integers(1, 20))):
                b[i] = rng.integers(256)
        elif kind == 1:  # cut short
            b = b[: int(rng.integers(1, len(b)))]
        else:  # junk inserted
            i = int(rng.integers(0, len(b)))
            b[i:i] = rng.bytes(int(rng.integers(1, 50)))
        yield ("flipped", "cut", "inserted")[kind], bytes(b)


@pytest.mark.parametrize("fmt", ["jpg", "png", "bmp", "tif", "webp", "gif"])
def test_image_fuzz_scan_agrees_with_decoder(fmt, tmp_path, faults):
    """The label scan (image_info) accepts exactly the files the training-time reader (imread) decodes."""
    import io

    from PIL import Image

    rng = np.random.default_rng(["jpg", "png", "bmp", "tif", "webp", "gif"].index(fmt))
    buf = io.BytesIO()
    Image.fromarray(hd.noise(rng)).save(buf, format={"jpg": "JPEG", "tif": "TIFF"}.get(fmt, fmt.upper()))
    outcomes = {}
    for i, (how, data) in enumerate(_corruptions(rng, buf.getvalue(), 30)):
        p = tmp_path / f"{i}.{fmt}"
        p.write_bytes(data)
        scan = read = None
        try:
            scan = image_info(p)
        except ImageReadError as e:
            scan = e.reason
        try:
            read = imread(p).shape[:2]
        except ImageReadError as e:
            read = e.reason
        assert scan == read, f"{fmt} {how} #{i}: the scan says {scan}, the decoder {read}"
        outcomes[how, isinstance(scan, str)] = outcomes.get((how, isinstance(scan, str)), 0) + 1
    assert any(bad for _, bad in outcomes) and any(not bad for _, bad in outcomes) or fmt in ("png", "gif")
    faults.record("dataset", f"image fuzz {fmt}", n=30)


# --- whole datasets -------------------------------------------------------------------------------------------
def check_report(warnings: list[str], split_prefix: str, truth: dict, root: Path, split: str) -> None:
    """One warning for the split; each skipped image named once with its reason; row counts and examples right."""
    mine = [w for w in warnings if w.startswith(split_prefix) and "some data was not used" in w]
    assert len(mine) == 1, mine
    text = mine[0]
    for name, reason in truth["skipped"].items():
        path = str(root / "images" / split / name)
        assert text.count(path) == 1, (name, text)
        line = next(ln for ln in text.splitlines() if path in ln)
        assert re.match(rf"  images skipped: \d+ {reason}: ", line), (name, reason, line)
    expected_rows = {}
    for lb, rows in truth["dropped"].items():
        for n, reason in rows:
            expected_rows.setdefault(reason, set()).add(f"{root / 'labels' / split / lb}:{n}")
    for reason, examples in expected_rows.items():
        line = next(ln for ln in text.splitlines() if re.match(rf"  label rows dropped: \d+ {reason}: ", ln))
        assert int(line.split()[3]) == len(examples)
        shown = line.split(f" {reason}: ", 1)[1].removesuffix(", ...").split(", ")
        assert len(shown) == min(5, len(examples)) and set(shown) <= examples and len(set(shown)) == len(shown)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hostile_dataset_scan(seed, tmp_path, log, faults):
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    yaml_file, truth = hd.make_dataset(tmp_path, seed)
    d = check_det_dataset(str(yaml_file))
    for split in ("train", "val"):
        ds = YOLODataset(d[split], imgsz=64, augment=split == "train", hyp=_hyp(), data=d, prefix=f"{split}: ")
        assert ds.stats == hd.expected_stats(truth[split])
        assert {Path(f).name for f in ds.im_files} == truth[split]["used"]
        check_report(log.warnings(), f"{split}: ", truth[split], tmp_path, split)
        for i in range(len(ds)):  # every used image loads and augments
            assert ds[i]["img"].shape[0] == 3
        faults.record("dataset", f"seed {seed} {split}: bad images", n=len(truth[split]["skipped"]))
        faults.record("dataset", f"seed {seed} {split}: bad rows",
                      n=sum(len(r) for r in truth[split]["dropped"].values()))
    log.records.clear()
    again = YOLODataset(d["train"], imgsz=64, augment=False, data=d, prefix="train: ")  # from the cache
    assert again.stats == hd.expected_stats(truth["train"])
    check_report(log.warnings(), "train: ", truth["train"], tmp_path, "train")


def _hyp() -> dict:
    from ultralytics.cfg import load_default_cfg

    return load_default_cfg()


def test_training_and_validation_on_hostile_dataset(tmp_path, log, faults):
    """An epoch of training and the validations finish; bad files are reported once; every good image is used."""
    yaml_file, truth = hd.make_dataset(tmp_path / "data", 0)
    model = YOLO(str(TINY_MODEL))
    model.train(data=str(yaml_file), project=str(tmp_path / "runs"), name="hostile", epochs=1, imgsz=64, batch=4,
                workers=0, device="cpu", plots=False, seed=0, warmup_epochs=0, optimizer="SGD")
    tr = model.trainer
    root = tmp_path / "data"
    for split, loader in (("train", tr.train_loader), ("val", tr.test_loader)):
        ds = loader.dataset
        assert ds.stats == hd.expected_stats(truth[split])
        check_report(log.warnings(), f"{split}: ", truth[split], root, split)
    seen = set()  # one epoch of the train loader covers every used image
    tr.train_loader.set_epoch(0)
    for batch in tr.train_loader:
        seen |= {Path(f).name for f in batch["im_file"]}
    assert seen == truth["train"]["used"]
    assert tr.validator.seen == len(truth["val"]["used"])
    rows = (tmp_path / "runs" / "hostile" / "results.csv").read_text().splitlines()
    assert len(rows) == 2 and all(math.isfinite(float(v)) for v in rows[1].split(","))
    metrics = model.val(data=str(yaml_file), imgsz=64, batch=4, workers=0, plots=False, device="cpu",
                        project=str(tmp_path / "val"))
    assert all(math.isfinite(v) for v in metrics.results_dict.values())
    assert metrics.box.nc == hd.NC
    for split in ("train", "val"):
        faults.record("dataset", f"trained/validated past {split} bad images", n=len(truth[split]["skipped"]))
