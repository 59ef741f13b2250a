"""The `yolo` command (ultralytics/cli.py): mode dispatch, errors, exit status, and the COMMANDS table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import ultralytics
from ultralytics import cli
from ultralytics.cli import entrypoint
from ultralytics.utils import UserError

REPO = Path(__file__).resolve().parents[1]


class _FakeYOLO:
    """Stands in for ultralytics.YOLO: records the dispatched call."""

    calls: list = []

    def __init__(self, model):
        self.model = model

    def train(self, **kw):
        self.calls.append((self.model, "train", kw))
        return "trained"


def test_entrypoint_parsing_and_dispatch(monkeypatch, log_messages):
    monkeypatch.setitem(vars(ultralytics), "YOLO", _FakeYOLO)  # setattr would first import the real facade
    _FakeYOLO.calls.clear()
    out = entrypoint(["detect", "train", "model=yolov10n.yaml", "data=shapes.yaml", "epochs=3", "device=0"])
    assert out == "trained"
    assert _FakeYOLO.calls == [("yolov10n.yaml", "train",
                                {"data": "shapes.yaml", "epochs": 3, "device": "0", "task": "detect"})]
    with pytest.raises(UserError, match="'yolo export' is not implemented yet"):
        entrypoint(["export", "model=yolov10n.pt", "format=onnx"])
    with pytest.raises(UserError, match="'yolo train' needs a model"):
        entrypoint(["train", "data=shapes.yaml"])
    assert entrypoint(["help"]) is None and any("Usage: yolo" in m for m in log_messages)
    assert entrypoint(["cfg"]) is None and any("lr0: 0.01" in m for m in log_messages)


@pytest.mark.parametrize("argv, match", [
    (["trian", "model=a.yaml"], "unknown mode or task 'trian'; did you mean 'train'"),
    (["model=a.yaml"], "no mode given"),
    (["train", "model=a.yaml", "epoch=3"], "'epoch' is not a valid setting; did you mean 'epochs'"),
    (["train", "model=a.yaml", "batch=0"], "'batch' must be"),
    (["train", "val", "model=a.yaml"], "more than one mode given: 'train' and 'val'"),
    (["train", "model=a.yaml", "extra"], "'extra' is not key=value"),
])
def test_entrypoint_errors(argv, match):
    with pytest.raises(UserError, match=match):
        entrypoint(argv)


def test_entrypoint_cli_exit_code(monkeypatch):
    monkeypatch.setattr("sys.argv", ["yolo", "trian"])
    with pytest.raises(SystemExit) as e:
        entrypoint()
    assert e.value.code == 2


@pytest.mark.parametrize("argv, match", [
    (["benchmrk", "model=a.yaml"], "unknown mode or task 'benchmrk'; did you mean 'benchmark'"),
    (["profile", "imgsz=64"], "'yolo profile' needs a model"),  # the command's own check
    (["benchmark", "model=a.yaml", "imgsz=0"], "'imgsz' must be"),
])
def test_command_errors(argv, match):
    with pytest.raises(UserError, match=match):
        entrypoint(argv)


CMD = '''"""A command for the tests."""
CALLS = []


def main(argv: list[str]):
    """Say hello: record argv.

    More text that help does not show.
    """
    CALLS.append(list(argv))
    return {"int": 3, "list": [1]}.get(argv[0] if argv else "", None)
'''


@pytest.fixture
def hello(tmp_path, monkeypatch):
    """A command 'hello' registered in COMMANDS, whose module yolo_hello_cmd is not imported yet."""
    (tmp_path / "yolo_hello_cmd.py").write_text(CMD, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "hello", "yolo_hello_cmd:main")
    yield "yolo_hello_cmd"
    sys.modules.pop("yolo_hello_cmd", None)


def test_command_table_is_lazy_listed_and_gets_argv(hello, log_messages, monkeypatch):
    assert entrypoint(["help"]) is None
    text = "\n".join(log_messages)
    assert "  yolo hello      Say hello: record argv.\n" in text and "More text" not in text
    assert hello not in sys.modules  # listing reads the source, it does not import the module
    assert entrypoint(["hello", "name=x", "--flag", "int"]) is None
    calls = sys.modules[hello].CALLS
    assert calls == [["name=x", "--flag", "int"]]
    assert entrypoint(["hello", "list"]) == [1]  # a script gets the result
    monkeypatch.setattr("sys.argv", ["yolo", "hello", "int"])
    assert entrypoint() == 3  # the real CLI: a command's int is the exit status
    monkeypatch.setattr("sys.argv", ["yolo", "hello", "list"])
    assert entrypoint() is None  # anything else is exit status 0
    assert calls[1:] == [["list"], ["int"], ["list"]]


def test_mode_word_of_a_command_runs_the_command(hello, monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "profile", "yolo_hello_cmd:main")  # 'profile' is also a mode in default.yaml
    entrypoint(["detect", "profile", "a=1", "b=2"])
    entrypoint(["a=1", "mode=profile"])
    assert sys.modules[hello].CALLS == [["a=1", "b=2"], ["a=1"]]  # the words after it, without the task or mode


def test_registered_commands_and_light_help():
    assert {k: cli.COMMANDS[k] for k in ("benchmark", "profile")} == {  # other helpers' entries may follow
        "benchmark": "ultralytics.cli:benchmark_main", "profile": "ultralytics.analysis.profile:main"}
    for word in cli.COMMANDS:  # every registered command has a main with a docstring that help shows
        assert cli.command_summary(word), word
    code = ("import sys; from ultralytics import cli; "
            "cli.COMMANDS['nested'] = 'ultralytics.data.utils:check_det_dataset'; cli.entrypoint(['help']); "
            "print(sorted(m for m in ('torch', 'ultralytics.analysis', 'ultralytics.data', 'ultralytics.engine.model') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "  yolo benchmark  Latency of models side by side, e.g. model=a.yaml,b.pt imgsz=640 device=cpu." in lines
    assert ("  yolo profile    One line per YAML row (shape, params, GFLOPs, ms), e.g. model=yolov10n-LSKA.yaml "
            "imgsz=640.") in lines
    assert ("  yolo nested     Resolve a detection data YAML (file path, bare name of a shipped YAML, or an "
            "already-loaded dict).") in lines  # read from data/utils.py without running data/__init__.py
    assert lines[-1] == "[]"  # help imported no command, no package of one, not torch nor the engine
    run = subprocess.run([sys.executable, "-m", "ultralytics", "trian"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2 and "did you mean 'train'" in run.stdout + run.stderr
