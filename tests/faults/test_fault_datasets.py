"""Hostile or broken datasets: garbage labels and broken images are skipped, reported once, the rest all used.

Fuzzed three ways: label bytes (hypothesis, derandomized), image files of six formats corrupted by a seeded
generator (the label scan and the training-time decoder must agree on every file, or a training would stop
mid-epoch), and whole datasets (seeded) that are scanned, trained on for an epoch and validated.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
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
from .helpers import GOOD_USED, ROWS_ACCOUNTED, ROWS_KEPT, SKIPS_COUNTED, TINY_MODEL, Checks


def _holds(fn) -> tuple[bool, str]:
    """(fn() ran without an AssertionError, its message): an assert-style helper used as one check."""
    try:
        fn()
    except AssertionError as e:
        return False, str(e)[-3000:]
    return True, ""


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
def test_label_fuzz_known_reasons(seed, n_good, n_bad, faults):
    """Generated label files of known content: every bad row is dropped with its reason and row number."""
    raw, kept, dropped = hd.label_file(np.random.default_rng(seed), n_good, n_bad)
    cls, boxes, got = parse_label_bytes(raw, hd.NC)
    c = Checks()
    c(ROWS_KEPT, len(cls) == kept, f"{len(cls)} rows kept, {kept} good")
    c("each bad row dropped with its reason and number", got == dropped, f"{got} != {dropped}")
    faults.record("dataset", "label file of known good and bad rows", c, generated=1)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(raw=st.one_of(st.binary(max_size=400), st.lists(st.sampled_from(
    ["0", "5", "6", "-1", "0.5", "1.0", "1e30", "-1e30", "nan", "inf", "1.01", "-0.01", "0.0", "x", "\u00e9",
     "1e-40", "2.5", " ", "\t"]), max_size=60).map(lambda t: " ".join(t).replace(" \t ", "\n").encode())))
def test_label_fuzz_any_bytes(raw, faults):
    """Any bytes at all: no exception; kept boxes are finite, inside the image, of positive size, valid class."""
    cls, boxes, dropped = parse_label_bytes(raw, hd.NC)
    lines = [ln for ln in (raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw).splitlines() if ln.strip()]
    c = Checks()
    c(ROWS_ACCOUNTED, len(cls) + len(dropped) == len(lines), f"{len(cls)} + {len(dropped)} != {len(lines)} rows")
    c("drop reasons known", all(reason in ROW_REASONS for _, reason in dropped), dropped)
    x, y, w, h = boxes.T if len(boxes) else np.zeros((4, 0))
    c("kept boxes valid", np.isfinite(boxes).all() and np.isfinite(cls).all()
      and ((cls >= 0) & (cls < hd.NC) & (cls == np.round(cls))).all() and ((w > 0) & (h > 0)).all()
      and ((x - w / 2 >= -1e-6) & (x + w / 2 <= 1 + 1e-6) & (y - h / 2 >= -1e-6) & (y + h / 2 <= 1 + 1e-6)).all(),
      f"{cls} {boxes}")
    faults.record("dataset", "label file of any bytes", c, generated=1)


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
    outcomes, c = {}, Checks()
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
        c("the scan agrees with the decoder", scan == read,
          f"{fmt} {how} #{i}: the scan says {scan}, the decoder {read}")
        outcomes[how, isinstance(scan, str)] = outcomes.get((how, isinstance(scan, str)), 0) + 1
    c("corruptions both refused and decodable", any(bad for _, bad in outcomes) and any(
        not bad for _, bad in outcomes) or fmt in ("png", "gif"), outcomes)
    faults.record("dataset", f"corrupted {fmt} files (its own decoder)", c, generated=30)


# --- whole datasets -------------------------------------------------------------------------------------------
def check_report(warnings: list[str], split_prefix: str, truth: dict, root: Path, split: str) -> None:
    """One warning for the split; each skipped image named once with its reason; every count it prints (images
    used/found, backgrounds, images without labels, instances, images skipped and rows dropped per reason) equal to
    the truth's; examples right."""
    mine = [w for w in warnings if w.startswith(split_prefix) and "some data was not used" in w]
    assert len(mine) == 1, mine
    text = mine[0]
    used, found = len(truth["used"]), len(truth["used"]) + len(truth["skipped"])
    assert (f"({used}/{found} images used, {truth['backgrounds']} backgrounds ({truth['missing']} without a label "
            f"file), {truth['instances']} instances)") in text.splitlines()[0], text
    per_reason = Counter(truth["skipped"].values())
    for name, reason in truth["skipped"].items():
        path = str(root / "images" / split / name)
        assert text.count(path) == 1, (name, text)
        line = next(ln for ln in text.splitlines() if path in ln)
        assert line.startswith(f"  images skipped: {per_reason[reason]} {reason}: "), (name, reason, line)
    assert sum(ln.startswith("  images skipped: ") for ln in text.splitlines()) == len(per_reason), text
    expected_rows = {}
    for lb, rows in truth["dropped"].items():
        for n, reason in rows:
            expected_rows.setdefault(reason, set()).add(f"{root / 'labels' / split / lb}:{n}")
    for reason, examples in expected_rows.items():
        line = next(ln for ln in text.splitlines() if re.match(rf"  label rows dropped: \d+ {reason}: ", ln))
        assert int(line.split()[3]) == len(examples)
        shown = line.split(f" {reason}: ", 1)[1].removesuffix(", ...").split(", ")
        assert len(shown) == min(5, len(examples)) and set(shown) <= examples and len(set(shown)) == len(shown)
    assert sum(ln.startswith("  label rows dropped: ") for ln in text.splitlines()) == len(expected_rows), text


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hostile_dataset_scan(seed, tmp_path, log, faults):
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    yaml_file, truth = hd.make_dataset(tmp_path, seed)
    d = check_det_dataset(str(yaml_file))
    for split in ("train", "val"):
        c = Checks()
        ds = YOLODataset(d[split], imgsz=64, augment=split == "train", hyp=_hyp(), data=d, prefix=f"{split}: ")
        c(SKIPS_COUNTED, ds.stats == hd.expected_stats(truth[split]), ds.stats)
        c(GOOD_USED, {Path(f).name for f in ds.im_files} == truth[split]["used"], ds.im_files)
        c(SKIPS_COUNTED, *_holds(lambda: check_report(log.warnings(), f"{split}: ", truth[split], tmp_path, split)))
        c("every used image loads and augments", all(ds[i]["img"].shape[0] == 3 for i in range(len(ds))))
        if split == "train":
            log.records.clear()
            again = YOLODataset(d["train"], imgsz=64, augment=False, data=d, prefix="train: ")  # from the cache
            c("the same report from the cache", again.stats == hd.expected_stats(truth["train"]) and _holds(
                lambda: check_report(log.warnings(), "train: ", truth["train"], tmp_path, "train"))[0])
        # the seeds and splits are values of two scenarios; their bad images and rows are generated examples
        rows = Checks()  # the label rows: counted in the stats and the report (the images' checks are the above)
        rows(SKIPS_COUNTED, c[SKIPS_COUNTED], c.why.get(SKIPS_COUNTED, ""))
        faults.record("dataset", "generated dataset: bad images skipped", c, generated=len(truth[split]["skipped"]))
        faults.record("dataset", "generated dataset: bad label rows dropped", rows,
                      generated=sum(len(r) for r in truth[split]["dropped"].values()))


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
    c = Checks()
    for split, loader in (("train", tr.train_loader), ("val", tr.test_loader)):
        ds = loader.dataset
        c(SKIPS_COUNTED, ds.stats == hd.expected_stats(truth[split]), ds.stats)
        c(SKIPS_COUNTED, *_holds(lambda: check_report(log.warnings(), f"{split}: ", truth[split], root, split)))
    seen = set()  # one epoch of the train loader covers every used image
    tr.train_loader.set_epoch(0)
    for batch in tr.train_loader:
        seen |= {Path(f).name for f in batch["im_file"]}
    c(GOOD_USED, seen == truth["train"]["used"], seen ^ truth["train"]["used"])
    c(GOOD_USED, tr.validator.seen == len(truth["val"]["used"]), tr.validator.seen)
    rows = (tmp_path / "runs" / "hostile" / "results.csv").read_text().splitlines()
    c("one results row, finite", len(rows) == 2 and all(math.isfinite(float(v)) for v in rows[1].split(",")), rows)
    metrics = model.val(data=str(yaml_file), imgsz=64, batch=4, workers=0, plots=False, device="cpu",
                        project=str(tmp_path / "val"))
    c("val metrics finite", all(math.isfinite(v) for v in metrics.results_dict.values()) and metrics.box.nc == hd.NC,
      metrics.results_dict)
    faults.record("dataset", "an epoch of training and validation past bad files", c,
                  generated=sum(len(truth[s]["skipped"]) for s in ("train", "val")))
