"""Bad configuration: every setting of default.yaml with a wrong type or range, bad data and model YAMLs.

The bad values are generated from the schema (the '# (type, qualifiers)' annotations), so a new setting is
covered the day it is added. Each must stop with a UserError naming the key before anything is written.
"""

from __future__ import annotations

import copy
import math

import pytest
import yaml

from ultralytics import YOLO
from ultralytics.cfg import _check_cond, get_cfg, load_cfg_schema
from ultralytics.nn.tasks import DetectionModel, yaml_model_load
from ultralytics.utils import UserError

from .helpers import TINY_MODEL

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


def bad_values(key: str) -> list:
    """Values the key must refuse, generated from its annotation."""
    spec, vals = SCHEMA[key], []
    if "dict" not in spec.types:
        vals.append({"nested": 1})
    if not any(t.startswith("list") for t in spec.types):
        vals.append([1, 2])
    elif "list" not in spec.types:  # typed lists: an element of the wrong type
        vals.append([{"x": 1}])
    if "str" not in spec.types:
        vals.append("not-a-value")
        if "bool" in spec.types and not any(t in spec.types for t in NUMERIC):
            vals += [2, 0.5]
    if spec.choices:
        vals.append("nonsense-choice")
    if any(t in spec.types for t in NUMERIC):
        vals += _out_of_range(spec)
        if spec.conds and "float" in spec.types:
            vals.append(float("nan"))
    return vals


CASES = [(k, v) for k in SCHEMA for v in bad_values(k)]


def test_every_key_has_bad_values():
    assert {k for k, _ in CASES} == set(SCHEMA)
    assert len(CASES) > 2 * len(SCHEMA)


@pytest.mark.parametrize("key,value", CASES, ids=[f"{k}={v!r}" for k, v in CASES])
def test_bad_setting_names_the_key(key, value, faults):
    with pytest.raises(UserError, match=rf"'{key}'"):
        get_cfg(overrides={key: value})
    faults.record("config", f"{key}={value!r}")


def test_bad_settings_stop_training_before_anything_is_written(fault_data, tmp_path, faults):
    """Through YOLO.train: the same refusal, and no run directory is made."""
    model, n = YOLO(str(TINY_MODEL)), 0
    for key, value in CASES + [("epochs", -3), ("epochs", 0), ("batch", 0), ("batch", -2), ("imgsz", 16),
                               ("workers", -1), ("lr0", 0.0), ("resume", 3)]:
        if key in ("model", "mode", "data", "project"):  # set by the call itself
            continue
        with pytest.raises(UserError, match=rf"'?{key}'?"):
            model.train(data=fault_data, project=str(tmp_path), **{key: value})
        assert not any(tmp_path.iterdir()), f"{key}={value!r} left files behind"
        n += 1
    faults.record("config", "train() with each bad setting", n=n)


def test_infinite_floats_are_refused():
    keys = [k for k, s in SCHEMA.items() if "float" in s.types and s.conds]
    accepted = []
    for k in keys:
        try:
            get_cfg(overrides={k: math.inf})
            accepted.append(k)
        except UserError:
            pass
    assert not accepted, f"inf accepted for {accepted}"


def test_imgsz_not_a_multiple_of_stride_rounds_up_with_a_warning(fault_data, tmp_path, faults, log_messages):
    model = YOLO(str(TINY_MODEL))
    model.train(data=fault_data, project=str(tmp_path), name="r", imgsz=50, epochs=1, batch=4, workers=0,
                device="cpu", plots=False, val=False, warmup_epochs=0)
    assert any("imgsz=50 must be a multiple of max stride 32, updating to 64" in m for m in log_messages)
    tr = model.trainer
    assert tr.args.imgsz == 64 and tr.train_loader.dataset.imgsz == 64 and tr.validator.args.imgsz == 64
    from ultralytics.utils.checkpoint import read_checkpoint

    assert read_checkpoint(tmp_path / "r" / "weights" / "last.pt")["train_args"]["imgsz"] == 64
    faults.record("config", "imgsz=50 -> 64")


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
        with pytest.raises(UserError) as e:
            model.train(data=str(f), project=str(tmp_path / "runs"), epochs=1, imgsz=64, device="cpu", workers=0)
        assert words in str(e.value) and f.name in str(e.value), (name, str(e.value))
        faults.record("config", f"data YAML: {name}")


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
    with pytest.raises(UserError, match=words):
        _build(edit)
    faults.record("config", f"model YAML: {name}")


@pytest.mark.parametrize("name", list(MODEL_GAPS))
def test_bad_model_yaml_gaps(name):
    edit, words = MODEL_GAPS[name]
    try:
        _build(edit)
    except UserError as e:
        assert __import__("re").search(words, str(e))
        return
    except Exception as e:  # noqa: BLE001 - the gap: anything but a UserError
        raise AssertionError(f"{type(e).__name__}: {e}") from None
    raise AssertionError("accepted")


def test_imgsz_list_in_training_is_clear(fault_data, tmp_path):
    with pytest.raises(UserError, match="imgsz"):
        YOLO(str(TINY_MODEL)).train(data=fault_data, project=str(tmp_path), imgsz=[64, 96], epochs=1, batch=4,
                                    workers=0, device="cpu", plots=False, val=False)
