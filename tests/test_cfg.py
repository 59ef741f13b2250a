"""Tests for the settings system (cfg/default.yaml, ultralytics.cfg) and utils/checks.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ultralytics.cfg import (IterableSimpleNamespace, cfg2dict, check_imgsz, get_cfg, load_cfg_schema, load_default_cfg,
                             parse_key_value_args)
from ultralytics.utils import DEFAULT_CFG_PATH, ROOT, UserError
from ultralytics.utils.checks import check_file, check_suffix, check_version, check_yaml, print_args
from ultralytics.utils.torch_utils import OPTIMIZERS


REQUIRED = {
    "task": "detect", "mode": "train", "model": None, "data": None, "epochs": 100, "time": None, "patience": 100,
    "batch": 16, "imgsz": 640, "save": True, "save_period": -1, "cache": False, "device": None, "workers": 8,
    "project": None, "name": None, "exist_ok": False, "pretrained": True, "optimizer": "auto", "verbose": True,
    "seed": 0, "deterministic": True, "single_cls": False, "rect": False, "cos_lr": False, "close_mosaic": 10,
    "resume": False, "amp": True, "fraction": 1.0, "freeze": None, "val": True, "split": "val", "save_json": False,
    "conf": None, "iou": 0.7, "max_det": 300, "half": False, "plots": True, "source": None, "save_txt": False,
    "save_conf": False, "show_labels": True, "show_conf": True, "line_width": None, "lr0": 0.01, "lrf": 0.01,
    "momentum": 0.937, "weight_decay": 0.0005, "warmup_epochs": 3.0, "warmup_momentum": 0.8, "warmup_bias_lr": 0.1,
    "box": 7.5, "cls": 0.5, "dfl": 1.5, "nbs": 64, "hsv_h": 0.015, "hsv_s": 0.7, "hsv_v": 0.4, "degrees": 0.0,
    "translate": 0.1, "scale": 0.5, "shear": 0.0, "perspective": 0.0, "flipud": 0.0, "fliplr": 0.5, "mosaic": 1.0,
    "mixup": 0.0, "copy_paste": 0.0, "label_smoothing": 0.0, "format": "torchscript", "opset": None,
    "simplify": True,  # onnxslim by default, as Ultralytics (issue 27)
}


# ----------------------------------------------------------------------------------------------- default.yaml
def test_default_yaml_lines_and_headers():
    text = Path(DEFAULT_CFG_PATH).read_text()
    rows = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert all(re.fullmatch(r"[a-z_0-9]+: ?\S*  # \([^()]+\) \S.*", ln) for ln in rows), \
        [ln for ln in rows if not re.fullmatch(r"[a-z_0-9]+: ?\S*  # \([^()]+\) \S.*", ln)]
    for header in ("# Train settings", "# Val/Test settings", "# Predict settings", "# Hyperparameters",
                   "# Augmentation settings"):
        assert header in text
    assert len(rows) == len(load_default_cfg()) == len(yaml.safe_load(text))


def test_required_defaults_present():
    defaults = load_default_cfg()
    assert {k: defaults[k] for k in REQUIRED} == REQUIRED
    assert isinstance(defaults["warmup_epochs"], float) and isinstance(defaults["fraction"], float)


def test_every_default_validates_against_its_own_annotation():
    schema, defaults = load_cfg_schema(), load_default_cfg()
    assert set(schema) == set(defaults)
    args = get_cfg()
    assert dict(args) == defaults  # every default passes its own type/range check unchanged
    for k, spec in schema.items():
        assert spec.types and spec.meaning, k


def test_schema_annotations_parsed():
    s = load_cfg_schema()
    assert s["batch"].types == ("int",) and s["batch"].conds == ((("==", -1.0, 0.0), (">=", 1.0, 0.0)),)
    assert s["imgsz"].types == ("int", "list[int]") and s["imgsz"].conds == (((">=", 32.0, 0.0),),)
    assert s["conf"].optional and s["conf"].conds == ((("range", 0.0, 1.0),),)
    assert s["fraction"].conds == (((">", 0.0, 0.0),), (("<=", 1.0, 0.0),))
    assert s["degrees"].conds == ((("range", -180.0, 180.0),),)
    assert s["cache"].choices == ("ram", "disk") and s["label_smoothing"].deprecated
    assert set(s["optimizer"].choices) == {*OPTIMIZERS, "auto"}  # torch_utils agrees with default.yaml


def test_load_default_cfg_returns_copies():
    a = load_default_cfg()
    a["epochs"] = 1
    a.pop("batch")
    b = load_default_cfg()
    assert b["epochs"] == 100 and b["batch"] == 16


# ----------------------------------------------------------------------------------------------- get_cfg
@pytest.mark.parametrize("bad, closest", [("epoch", "epochs"), ("imgsize", "imgsz"), ("lr_0", "lr0"),
                                          ("optimiser", "optimizer")])
def test_unknown_key_names_closest(bad, closest):
    with pytest.raises(UserError, match=rf"'{bad}' is not a valid setting; did you mean '{closest}'"):
        get_cfg(overrides={bad: 3})


@pytest.mark.parametrize("key, value, expect", [
    ("epochs", -1, "an int >= 1"), ("epochs", 2.5, "an int >= 1"), ("batch", 0, "equal to -1 or >= 1"),
    ("batch", -2, "-1 or >= 1"), ("conf", 1.5, r"in \[0, 1\], or None"), ("imgsz", "big", "list of ints >= 32"),
    ("imgsz", 16, ">= 32"), ("imgsz", [640, 8], ">= 32"), ("workers", -1, ">= 0"), ("lr0", 0, "> 0"),
    ("fraction", 0.0, "> 0 and <= 1"), ("fraction", 1.5, "<= 1"), ("iou", -0.1, "> 0 and <= 1"), ("iou", 0, "> 0 and <= 1"),
    ("patience", -1, ">= 0"), ("close_mosaic", -3, ">= 0"), ("save_period", "often", "an int"),
    ("optimizer", "Adamm", "one of SGD/Adam"), ("mode", "trian", "one of train/val"), ("amp", "maybe", "a bool"),
    ("cache", "gpu", "one of ram/disk"), ("epochs", None, "an int"), ("hsv_h", True, "a float"),
])
def test_bad_values_name_key_value_and_expectation(key, value, expect):
    with pytest.raises(UserError) as e:
        get_cfg(overrides={key: value})
    msg = str(e.value)
    assert f"{key}={value!r}" in msg and f"'{key}' must be" in msg and re.search(expect, msg), msg


@pytest.mark.parametrize("key, value, out", [
    ("epochs", "3", 3), ("epochs", 3.0, 3), ("lr0", 1, 1.0), ("lr0", "1e-3", 0.001), ("amp", "false", False),
    ("amp", "True", True), ("amp", 0, False), ("conf", "None", None), ("conf", "", None), ("conf", "0.25", 0.25),
    ("name", 123, "123"), ("optimizer", "sgd", "SGD"), ("optimizer", "ADAMW", "AdamW"), ("cache", "RAM", "ram"),
    ("cache", "true", True), ("cache", True, True), ("imgsz", (320, 256), [320, 256]), ("imgsz", "640", 640),
    ("device", 0, 0), ("device", "", ""), ("device", "0,1", "0,1"), ("freeze", 10, 10), ("freeze", [0, 1], [0, 1]),
    ("pretrained", "runs/x/best.pt", "runs/x/best.pt"), ("batch", -1, -1), ("save_period", -1, -1),
])
def test_lenient_coercions(key, value, out):
    got = getattr(get_cfg(overrides={key: value}), key)
    assert got == out and type(got) is type(out)


def test_get_cfg_sources_dict_namespace_and_yaml(tmp_path, log_messages):
    partial = get_cfg({"epochs": 5})
    assert partial.epochs == 5 and partial.batch == 16  # a partial dict is completed from the defaults
    again = get_cfg(partial, {"batch": 8})
    assert (again.epochs, again.batch) == (5, 8)
    f = tmp_path / "my.yaml"
    f.write_text("epochs: 7\nimgsz: 320\n")
    args = get_cfg(overrides={"cfg": str(f), "imgsz": 256})  # defaults <- cfg file <- overrides
    assert (args.epochs, args.imgsz, args.batch) == (7, 256, 16)
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochz: 7\n")
    with pytest.raises(UserError, match=r"'epochz' \(in .*bad.yaml\) is not a valid setting; did you mean 'epochs'"):
        get_cfg(bad)
    with pytest.raises(UserError, match="not found"):
        get_cfg(tmp_path / "missing.yaml")
    assert get_cfg(overrides={"label_smoothing": 0.1}).label_smoothing == 0.1
    assert any("'label_smoothing' is deprecated" in m for m in log_messages)


def test_iterable_simple_namespace():
    ns = IterableSimpleNamespace(a=1, epochs=3)
    assert list(ns) == [("a", 1), ("epochs", 3)] and dict(ns) == {"a": 1, "epochs": 3}
    assert ns.get("a") == 1 and ns.get("zz", 5) == 5 and "epochs=3" in str(ns)
    with pytest.raises(AttributeError, match="no setting 'epoch'; did you mean epochs"):
        _ = ns.epoch
    assert cfg2dict(ns) == {"a": 1, "epochs": 3} and cfg2dict(None) == {}


# ----------------------------------------------------------------------------------------------- check_imgsz
def test_check_imgsz_rounds_up_with_warning(log_messages):
    assert check_imgsz(330, stride=32) == 352
    assert any("330" in m and "352" in m for m in log_messages)
    log_messages.clear()
    assert check_imgsz(640) == 640 and not log_messages
    assert check_imgsz([330, 640]) == [352, 640]
    assert check_imgsz(640, min_dim=2) == [640, 640]
    assert check_imgsz(100, stride=64) == 128 and check_imgsz(640.0) == 640
    for bad in ("big", [1, 2, 3], [], 0, True):
        with pytest.raises(UserError, match="imgsz="):
            check_imgsz(bad)


# ----------------------------------------------------------------------------------------------- CLI parsing
def test_parse_key_value_args():
    got = parse_key_value_args(["epochs=3", "imgsz=320", "device=''", "name=my run", "amp=True", "lr0=0.01",
                                "imgsz2=[640, 480]", "conf=None", "model=yolov10n.yaml", "source=http://a/b.jpg",
                                "project='123'", "x=a: b"])
    assert got == {"epochs": 3, "imgsz": 320, "device": "", "name": "my run", "amp": True, "lr0": 0.01,
                   "imgsz2": [640, 480], "conf": None, "model": "yolov10n.yaml", "source": "http://a/b.jpg",
                   "project": "123", "x": "a: b"}
    assert parse_key_value_args(["device=0"]) == {"device": "0"}
    assert parse_key_value_args(["device=0,1", "device=cuda:0"]) == {"device": "cuda:0"}  # last one wins
    assert parse_key_value_args(["--epochs=2", "time="]) == {"epochs": 2, "time": None}
    with pytest.raises(UserError, match="'run' is not key=value"):
        parse_key_value_args(["name=my", "run"])
    with pytest.raises(UserError, match="'=3' has no valid key"):
        parse_key_value_args(["=3"])


# ----------------------------------------------------------------------------------------------- checks.py
def test_check_file_search_and_errors(tmp_path, monkeypatch):
    assert check_file("default.yaml") == ROOT / "cfg" / "default.yaml"  # found in the package cfg dir
    monkeypatch.chdir(tmp_path)
    (tmp_path / "local.yaml").write_text("a: 1\n")
    assert check_yaml("local.yaml") == Path("local.yaml")  # cwd first
    with pytest.raises(UserError) as e:
        check_file("defalt.yaml")
    msg = str(e.value)
    assert "'defalt.yaml' not found" in msg and str(tmp_path) in msg and "cfg" in msg and "default.yaml" in msg
    with pytest.raises(UserError, match="suffix '.txt'"):
        check_yaml("notes.txt")
    with pytest.raises(UserError, match="URL"):
        check_file("https://example.com/x.yaml")
    with pytest.raises(UserError, match="empty"):
        check_file("")


def test_check_suffix_and_version(log_messages):
    check_suffix("a.PT", ".pt")
    check_suffix(["a.pt", "b.pth"], (".pt", ".pth"))
    with pytest.raises(UserError, match="'.onnx' is not accepted"):
        check_suffix("w.onnx", (".pt",))
    assert check_version("2.13.0+cpu", "2.0.0") and not check_version("1.9.1", "1.10")
    assert check_version("2.1", ">=2.0,<3") and not check_version("3.0", ">=2.0,<3")
    assert check_version("1.0", "==1.0.0")
    with pytest.raises(UserError, match=r"torch>=2.0 is required, but torch==1.0 is installed"):
        check_version("1.0", "2.0", name="torch", hard=True)

    def fn(a, b=2):
        return print_args()

    assert fn(1).endswith("a=1, b=2") and any("fn" in m for m in log_messages)
