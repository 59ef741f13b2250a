"""The engine's shared parts: the prepared inference model (once per model), the val/predict/export events, the
import-time OMP_WAIT_POLICY and the root scripts' shared entry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ultralytics import YOLO
from ultralytics.engine.exporter import Exporter
from ultralytics.models.yolo.detect import DetectionPredictor, DetectionValidator
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import UserError
from ultralytics.utils.checks import get_setting

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def facade():
    """A YOLO facade over an untrained yolov10n with the 6 classes of the built-in dataset."""
    y = YOLO("yolov10n.yaml")
    y.model = DetectionModel("yolov10n.yaml", nc=6, verbose=False)
    y.model.names = {i: f"c{i}" for i in range(6)}
    return y


@pytest.fixture
def fuse_calls(monkeypatch):
    """A list that gets one entry per DetectionModel.fuse call (the costly part of preparing)."""
    calls = []
    original = DetectionModel.fuse

    def counted(self, verbose=True):
        calls.append(id(self))
        return original(self, verbose=verbose)

    monkeypatch.setattr(DetectionModel, "fuse", counted)
    return calls


def _im(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (96, 128, 3), dtype=np.uint8)


def test_second_predict_reuses_the_prepared_model(facade, fuse_calls, tiny_data):
    trainable = [p.requires_grad for p in facade.model.parameters()]
    facade.predict(_im(), imgsz=64, verbose=False)
    prepared = facade.inference_cache["model"]
    assert len(fuse_calls) == 1 and fuse_calls[0] == id(prepared)  # a copy was fused, not the user's model
    assert prepared is not facade.model and prepared.is_fused and not facade.model.is_fused
    assert not prepared.training and all(not p.requires_grad for p in prepared.parameters())
    assert [p.requires_grad for p in facade.model.parameters()] == trainable and any(trainable)  # still trainable
    facade.predict(_im(1), imgsz=64, verbose=False)
    facade.predict([_im(2), _im(3)], imgsz=64, verbose=False)
    assert len(fuse_calls) == 1 and facade.inference_cache["model"] is prepared  # no second copy nor fuse
    facade.val(data=tiny_data, imgsz=64, batch=4, plots=False, verbose=False, project=str(Path(tiny_data).parent))
    assert len(fuse_calls) == 1 and facade.inference_cache["model"] is prepared  # val shares it (same key)
    facade.predict(_im(), imgsz=64, verbose=False, max_det=7)  # another head setting: prepared again
    assert len(fuse_calls) == 2 and facade.inference_cache["model"].model[-1].max_det == 7
    facade.load(facade.model.state_dict())  # new weights: the cache is dropped
    assert facade.inference_cache == {}
    facade.predict(_im(), imgsz=64, verbose=False, max_det=7)
    assert len(fuse_calls) == 3


def test_prepared_model_follows_the_weights_after_fuse(facade, fuse_calls):
    (a,) = facade.predict(_im(), imgsz=64, conf=0.0, verbose=False)
    facade.fuse()  # fuses the user's model in place (fuse call 2) and drops the cached copy
    assert facade.inference_cache == {} and len(fuse_calls) == 2
    (b,) = facade.predict(_im(), imgsz=64, conf=0.0, verbose=False)
    assert len(fuse_calls) == 2  # a fused model is copied but not fused again
    assert torch.allclose(a.boxes.data, b.boxes.data, atol=1e-3)


def test_nms_on_a_fused_model_is_refused(facade):
    facade.fuse()
    with pytest.raises(UserError, match="nms=True uses the one-to-many head"):
        facade.predict(_im(), imgsz=64, nms=True, verbose=False)


class Recorder:
    """Callbacks that record (event, owner class, a detail) in order."""

    def __init__(self, owner, events: list[str], detail=lambda e, o: None):
        self.seen: list[tuple] = []
        for e in events:
            owner.add_callback(e, lambda o, e=e: self.seen.append((e, type(o).__name__, detail(e, o))))


def test_predict_events_in_order_with_the_predictor(facade):
    events = ["on_predict_start", "on_predict_batch_start", "on_predict_postprocess_end", "on_predict_batch_end",
              "on_predict_end"]
    rec = Recorder(facade, events, lambda e, o: len(o.results) if e.endswith(("postprocess_end", "batch_end"))
                   else (len(o.batch[1]) if e == "on_predict_batch_start" else None))
    out = facade.predict([_im(0), _im(1), _im(2)], imgsz=64, batch=2, verbose=False)
    assert len(out) == 3
    P = "DetectionPredictor"
    assert rec.seen == [("on_predict_start", P, None),
                        ("on_predict_batch_start", P, 2), ("on_predict_postprocess_end", P, 2),
                        ("on_predict_batch_end", P, 2),
                        ("on_predict_batch_start", P, 1), ("on_predict_postprocess_end", P, 1),
                        ("on_predict_batch_end", P, 1),
                        ("on_predict_end", P, None)]


def test_stream_yields_a_batch_after_its_batch_end_event(facade):
    order = []
    facade.add_callback("on_predict_batch_end", lambda p: order.append("batch_end"))
    for _ in facade.predict([_im(0), _im(1)], imgsz=64, batch=2, stream=True, verbose=False):
        order.append("result")
    assert order == ["batch_end", "result", "result"]


def test_val_events_in_order_with_the_validator(facade, tiny_data, tmp_path):
    events = ["on_val_start", "on_val_batch_start", "on_val_batch_end", "on_val_end"]
    rec = Recorder(facade, events, lambda e, o: o.batch_i if "batch" in e else
                   (o.metrics.box.map >= 0 if e == "on_val_end" else o.seen))
    facade.val(data=tiny_data, imgsz=64, batch=4, plots=False, verbose=False, project=str(tmp_path))
    V = "DetectionValidator"
    assert rec.seen == [("on_val_start", V, 0), ("on_val_batch_start", V, 0), ("on_val_batch_end", V, 0),
                        ("on_val_batch_start", V, 1), ("on_val_batch_end", V, 1), ("on_val_end", V, True)]


def test_export_events_with_the_exporter(facade, tmp_path, monkeypatch):
    events = ["on_export_start", "on_export_end"]
    rec = Recorder(facade, events, lambda e, o: o.file is not None and Path(o.file).is_file())
    monkeypatch.chdir(tmp_path)  # a model built from a YAML exports to <yaml stem>.torchscript in the working dir
    f = facade.export(format="torchscript", imgsz=64)
    assert Path(f).is_file()
    assert rec.seen == [("on_export_start", "Exporter", False), ("on_export_end", "Exporter", True)]


def test_bases_keep_the_public_names():
    from ultralytics.engine.predictor import BasePredictor
    from ultralytics.engine.validator import BaseValidator

    assert issubclass(DetectionPredictor, BasePredictor) and issubclass(DetectionValidator, BaseValidator)
    assert YOLO("yolov10n.yaml").task_map["detect"]["predictor"] is DetectionPredictor
    assert Exporter({}).callbacks is not None
    with pytest.raises(UserError, match="task 'segment' is not supported by YOLO: use one of detect"):
        YOLO("yolov10n.yaml", task="segment")


def test_get_setting_from_dict_namespace_or_none():
    assert get_setting({"data": "a.yaml"}, "data") == "a.yaml"
    assert get_setting(SimpleNamespace(data="b.yaml"), "data") == "b.yaml"
    assert get_setting(None, "data", "x") == "x" and get_setting({"data": None}, "data", 3) == 3


def _python(code: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter with OMP_WAIT_POLICY unset (plus env_extra)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(PYTHONPATH=str(REPO), **(env_extra or {}))
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_import_sets_omp_wait_policy_before_torch():
    show = "import os, ultralytics; print(os.environ.get('OMP_WAIT_POLICY'), ultralytics.OMP_POLICY_NOTE)"
    out = _python(show)
    assert out.returncode == 0 and out.stdout.split() == ["PASSIVE", "set"] and "OMP_WAIT_POLICY" not in out.stderr
    out = _python(show, {"OMP_WAIT_POLICY": "ACTIVE"})  # the user's choice wins
    assert out.stdout.split() == ["ACTIVE", "user"] and "OMP_WAIT_POLICY" not in out.stderr
    out = _python("import torch; import ultralytics.utils; import ultralytics.cfg; " + show)  # torch first
    assert out.returncode == 0 and out.stdout.split() == ["None", "late"]
    assert out.stderr.count("could not set OMP_WAIT_POLICY=PASSIVE") == 1  # warned once


def test_scripts_share_the_entry(tmp_path):
    from ultralytics.cli import run_script, script_settings

    with pytest.raises(UserError, match="unknown setting 'nn' for erf.py; settings: model, n"):
        script_settings("erf.py", {"model": "a", "n": 1}, ["nn=3"])
    assert script_settings("x.py", {"source": "s", "n": 1}, ["n=4"]) == {"source": "s", "n": 4}
    missing = str(tmp_path / "no_such_dir")
    got = script_settings("x.py", {"source": missing}, [], builtin_source=missing)["source"]
    assert got.endswith(str(Path("images") / "val")) and Path(got).is_dir()

    def main(argv):
        raise UserError(f"bad {argv}")

    with pytest.raises(SystemExit, match=r"ERROR: bad \['a=1'\]"):
        run_script(main, ["a=1"])
    out = subprocess.run([sys.executable, "erf.py", "bogus=1"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "ERROR: unknown setting 'bogus' for erf.py" in out.stderr


def test_predict_settings_are_merged_once_per_distinct_overrides(facade, monkeypatch):
    import ultralytics.cfg as cfg

    calls = []
    original = cfg.get_cfg
    monkeypatch.setattr(cfg, "get_cfg", lambda *a, **k: calls.append(k.get("overrides")) or original(*a, **k))
    for _ in range(3):
        facade.predict(_im(), imgsz=64, verbose=False)
    assert len(calls) == 1 and calls[0]["imgsz"] == 64
    (r,) = facade.predict(_im(), imgsz=64, conf=0.99, verbose=False)  # other settings: merged (and checked) again
    assert len(calls) == 2 and len(r) == 0
    with pytest.raises(UserError, match="conf"):
        facade.predict(_im(), imgsz=64, conf=7, verbose=False)
