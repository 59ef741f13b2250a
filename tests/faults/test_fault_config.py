"""Bad configuration: every setting of default.yaml with a wrong type or range, bad data and model YAMLs.

The bad values are generated from the schema (the '# (type, qualifiers)' annotations), so a new setting is
covered the day it is added. Each must stop with a UserError naming the key before anything is written.
"""

from __future__ import annotations

import copy
import math
import re

import pytest
import yaml

from ultralytics import YOLO
from ultralytics.cfg import _check_cond, get_cfg, load_cfg_schema
from ultralytics.nn.tasks import DetectionModel, yaml_model_load
from ultralytics.utils import UserError

from .helpers import TINY_MODEL, Checks, raises

SCHEMA = load_cfg_schema()
NUMERIC = ("int", "float")


def _out_of_range(spec) -> list:
    """Numbers that break the first condition group the key has (each group must hold)."""
    out, is_int = [], "int" in spec.types and "float" not in spec.types
    for ors in spec.conds:
        cands = []
        for op, a, b in ors:
            step = 1 if is_int else 0.5
            cands += {"range": [a - step, b + step], ">=": [a - step], ">": [a], "<=": [a + step], "<": [a],
                      "==": [a + step]}[op]
        for c in cands:
            c = int(c) if is_int else float(c)
            if not any(_check_cond(c, cond) for cond in ors):
                out.append(c)
    return out


def bad_values(key: str) -> list[tuple[str, object]]:
    """(what is wrong, value) pairs the key must refuse, generated from its annotation.

    'What is wrong' is the scenario: each reaches another branch of cfg._validate (no type accepts the value;
    a typed-list element; a bool given a number; a choice; a range; NaN). The keys are its values.
    """
    spec, vals = SCHEMA[key], []
    if "dict" not in spec.types:
        vals.append(("a dict for a non-dict key", {"nested": 1}))
    if not any(t.startswith("list") for t in spec.types):
        vals.append(("a list for a non-list key", [1, 2]))
    elif "list" not in spec.types:  # typed lists: an element of the wrong type
        vals.append(("a typed list with an element of the wrong type", [{"x": 1}]))
    if "str" not in spec.types:
        vals.append(("text for a non-text key", "not-a-value"))
        if "bool" in spec.types and not any(t in spec.types for t in NUMERIC):
            vals += [("a number other than 0/1 for a bool key", v) for v in (2, 0.5)]
    if spec.choices:
        vals.append(("text that is not one of the choices", "nonsense-choice"))
    if any(t in spec.types for t in NUMERIC):
        vals += [("a number out of range", v) for v in _out_of_range(spec)]
        if spec.conds and "float" in spec.types:
            vals.append(("NaN for a ranged float", float("nan")))
    return vals


CASES = [(k, what, v) for k in SCHEMA for what, v in bad_values(k)]


def test_every_key_has_bad_values():
    assert {k for k, _, _ in CASES} == set(SCHEMA)
    assert len(CASES) > 2 * len(SCHEMA)


@pytest.mark.parametrize("key,what,value", CASES, ids=[f"{k}={v!r}" for k, _, v in CASES])
def test_bad_setting_names_the_key(key, what, value, faults):
    c = Checks()
    c("UserError naming the key", *raises(lambda: get_cfg(overrides={key: value}), UserError, rf"'{key}'"))
    faults.record("config", f"setting: {what}", c)


def test_bad_settings_stop_training_before_anything_is_written(fault_data, tmp_path, faults):
    """Through YOLO.train: the same refusal, and no run directory is made."""
    model = YOLO(str(TINY_MODEL))
    extra = [("epochs", -3), ("epochs", 0), ("batch", 0), ("batch", -2), ("imgsz", 16), ("workers", -1),
             ("lr0", 0.0), ("resume", 3)]
    for key, value in [(k, v) for k, _, v in CASES] + extra:  # one scenario (train() -> get_cfg), many values
        if key in ("model", "mode", "data", "project"):  # set by the call itself
            continue
        c = Checks()
        c("UserError naming the key", *raises(
            lambda: model.train(data=fault_data, project=str(tmp_path), **{key: value}), UserError, rf"'?{key}'?"))
        c("nothing written", not any(tmp_path.iterdir()), f"{key}={value!r} left files behind")
        faults.record("config", "train() refuses a bad setting before writing", c)


def test_infinite_floats_are_refused(faults):
    keys = [k for k, s in SCHEMA.items() if "float" in s.types and s.conds]
    assert keys
    for k in keys:
        c = Checks()
        c("UserError naming the key", *raises(lambda: get_cfg(overrides={k: math.inf}), UserError, rf"'{k}'"))
        faults.record("config", "setting: inf for a ranged float", c)


def test_imgsz_not_a_multiple_of_stride_rounds_up_with_a_warning(fault_data, tmp_path, faults, log_messages):
    model = YOLO(str(TINY_MODEL))
    model.train(data=fault_data, project=str(tmp_path), name="r", imgsz=50, epochs=1, batch=4, workers=0,
                device="cpu", plots=False, val=False, warmup_epochs=0)
    assert any("imgsz=50 must be a multiple of max stride 32, updating to 64" in m for m in log_messages)
    tr = model.trainer
    from ultralytics.utils.checkpoint import read_checkpoint

    c = Checks()
    c("imgsz 64 everywhere", tr.args.imgsz == 64 and tr.train_loader.dataset.imgsz == 64
      and tr.validator.args.imgsz == 64
      and read_checkpoint(tmp_path / "r" / "weights" / "last.pt")["train_args"]["imgsz"] == 64)
    faults.record("config", "imgsz not a multiple of the stride", c)


# --- data YAMLs -----------------------------------------------------------------------------------------------
def _data_cases(root):
    ok = {"path": str(root), "train": "images/train", "val": "images/val", "names": {0: "a", 1: "b"}}
    return {
        "missing names": ({k: v for k, v in ok.items() if k != "names"}, "key 'names'"),
        "names with a gap": ({**ok, "names": {0: "a", 2: "b"}}, "key 'names'"),
        "names a string": ({**ok, "names": "a b"}, "key 'names'"),
        "names with text keys": ({**ok, "names": {"x": "a"}}, "key 'names'"),
        "nc disagrees": ({**ok, "nc": 5}, "key 'nc'"),
        "missing train": ({k: v for k, v in ok.items() if k != "train"}, "key 'train'"),
        "missing val": ({k: v for k, v in ok.items() if k != "val"}, "key 'val'"),
        "train path absent": ({**ok, "train": "images/nowhere"}, "'train' path"),
        "root path absent": ({**ok, "path": str(root / "nowhere")}, "'path'"),
        "not a mapping": (["a", "b"], "must be a mapping"),
        "bad YAML syntax": ("names: [a, b\ntrain: :", "not valid YAML"),
        "unknown builtin": ({**ok, "builtin": "nope"}, "key 'builtin'"),
    }


def test_bad_data_yaml_names_the_key(tmp_path, faults):
    root = tmp_path / "ds"
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
    model = YOLO(str(TINY_MODEL))
    for name, (content, words) in _data_cases(root).items():
        f = tmp_path / f"{name.replace(' ', '_')}.yaml"
        f.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
        c = Checks()
        c("UserError naming the file and the key", *raises(
            lambda: model.train(data=str(f), project=str(tmp_path / "runs"), epochs=1, imgsz=64, device="cpu",
                                workers=0), UserError, rf"(?s)^(?=.*{re.escape(words)})(?=.*{re.escape(f.name)})"))
        faults.record("config", f"data YAML: {name}", c)


# --- model YAMLs ----------------------------------------------------------------------------------------------
BASE = yaml_model_load("yolov10n.yaml")


def _row(section: str, i: int, row):
    def f(d):
        d[section][i] = row
    return f


MODEL_CASES = {  # name -> (edit, words the error must contain)
    "from refers forward": (_row("backbone", 2, [5, 3, "C2f", [128, True]]), r"row 2 .*'from' index 5"),
    "from refers to itself (cycle)": (_row("backbone", 2, [2, 3, "C2f", [128, True]]), r"row 2 .*'from' index 2"),
    "from before the first row": (_row("backbone", 2, [-50, 3, "C2f", [128, True]]), r"row 2 .*'from' index -50"),
    "from a string": (_row("backbone", 2, ["a", 3, "C2f", [128, True]]), r"row 2 .*'from' index 'a'"),
    "from a float": (_row("backbone", 2, [-1.0, 3, "C2f", [128, True]]), r"row 2 .*'from' index -1.0"),
    "from list with a bad index": (_row("head", 1, [[-1, 99], 1, "Concat", [1]]), r"row 12 .*'from' index 99"),
    "first row not reading the image": (_row("backbone", 0, [0, 1, "Conv", [64, 3, 2]]), r"row 0 .*first row"),
    "row with 3 fields": (_row("backbone", 2, [-1, 3, "C2f"]), r"row 2 .*\[from, repeats, module, args\]"),
    "row not a list": (_row("backbone", 2, "C2f"), r"row 2 .*\[from, repeats, module, args\]"),
    "unknown module os.system": (_row("backbone", 2, [-1, 1, "os.system", ["ls"]]), r"row 2 .*unknown module"),
    "unknown module eval": (_row("backbone", 2, [-1, 1, "eval", ["1"]]), r"row 2 .*unknown module 'eval'"),
    "bad nn.Upsample args": (_row("head", 0, [-1, 1, "nn.Upsample", ["x", "y", "z", "w", "v"]]),
                             r"row 11 .*cannot build nn.Upsample"),
    "nc zero": (lambda d: d.__setitem__("nc", 0), r"'nc' must be a positive integer"),
    "nc a string": (lambda d: d.__setitem__("nc", "eighty"), r"'nc' must be a positive integer"),
    "last row not the head": (lambda d: d["head"].pop(), r"last row must be the detection head"),
}
# Faults that once gave a raw TypeError/RuntimeError/KeyError (several from deep inside torch), now named:
MODEL_GAPS = {
    "args not a list": (_row("backbone", 1, [-1, 1, "Conv", 128]), r"row 1 "),
    "negative channels": (_row("backbone", 1, [-1, 1, "Conv", [-128, 3, 2]]), r"row 1 "),
    "zero channels": (_row("backbone", 1, [-1, 1, "Conv", [0, 3, 2]]), r"row 1 "),
    "channels a string": (_row("backbone", 1, [-1, 1, "Conv", ["x", 3, 2]]), r"row 1 "),
    "repeats a string": (_row("backbone", 2, [-1, "two", "C2f", [128, True]]), r"row 2 "),
    "repeats negative": (_row("backbone", 2, [-1, -3, "C2f", [128, True]]), r"row 2 "),
    "stride zero": (_row("backbone", 1, [-1, 1, "Conv", [128, 3, 0]]), r"row 1 "),
    "concat of different sizes": (_row("head", 1, [[-1, 4], 1, "Concat", [1]]), r"row 12 "),
    "no head list": (lambda d: d.pop("head"), r"'head'"),
    "backbone not a list": (lambda d: d.__setitem__("backbone", 5), r"'backbone'"),
    "scale with one number": (lambda d: d.__setitem__("scales", {"n": [0.33]}), r"scale"),
    "no rows at all": (lambda d: (d.__setitem__("backbone", []), d.__setitem__("head", [])), r"row"),
}


def _build(edit):
    d = copy.deepcopy(BASE)
    edit(d)
    return DetectionModel(d, verbose=False)


@pytest.mark.parametrize("name", list(MODEL_CASES))
def test_bad_model_yaml_names_the_row(name, faults):
    edit, words = MODEL_CASES[name]
    c = Checks()
    c("UserError naming the row or key", *raises(lambda: _build(edit), UserError, words))
    faults.record("config", f"model YAML: {name}", c)


@pytest.mark.parametrize("name", list(MODEL_GAPS))
def test_bad_model_yaml_gaps(name, faults):
    edit, words = MODEL_GAPS[name]
    c = Checks()
    c("UserError naming the row or key", *raises(lambda: _build(edit), UserError, words))
    faults.record("config", f"model YAML: {name}", c)


def test_imgsz_list_in_training_is_clear(fault_data, tmp_path, faults):
    c = Checks()
    c("UserError naming imgsz", *raises(lambda: YOLO(str(TINY_MODEL)).train(
        data=fault_data, project=str(tmp_path), imgsz=[64, 96], epochs=1, batch=4, workers=0, device="cpu",
        plots=False, val=False), UserError, "imgsz"))
    faults.record("config", "imgsz a list in training", c)
