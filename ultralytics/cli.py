"""The `yolo` command: `yolo [TASK] MODE key=value ...` runs YOLO(model).<mode>(...); `yolo WORD ...` runs a command.

COMMANDS maps each command word to the `module:function` that runs it. The module is imported only when its
word is used (so `yolo help` and `yolo train` import none of them), and the function is called as
`main(argv)` with the words after the command word, e.g. ['model=yolov10n.yaml', 'imgsz=640']. Adding a
command is one line in COMMANDS; `yolo help` lists it with the first line of its main's docstring.

This module sits on top of the package: it imports cfg (settings) and, when dispatching, the engine or a
command's module; nothing in the package imports it.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable

from ultralytics.cfg import command_settings, load_cfg_schema, parse_key_value_args
from ultralytics.utils import DEFAULT_CFG_PATH, LOGGER, UserError

COMMANDS: dict[str, str] = {
    "benchmark": "ultralytics.cli:benchmark_main",  # latency table, or with data= the deployment table
    "dataset": "ultralytics.data.convert:main",
    "profile": "ultralytics.analysis.profile:main",
    "tune": "ultralytics.tune_cli:main",
    "yaml": "ultralytics.nn.yaml_edit:main",
}

HELP = """
Usage: yolo [TASK] MODE key=value ...   (TASK: detect; MODE: train, val, predict, export)
       yolo COMMAND ...                 (the commands are listed below)

  yolo train model=yolov10n.yaml data=shapes.yaml epochs=3 imgsz=320
  yolo train model=yolov10n-LSKA.yaml data=shapes.yaml batch=8 device=cpu name=lska
  yolo val model=runs/train/exp/weights/best.pt data=shapes.yaml
  yolo predict model=runs/train/exp/weights/best.pt source=path/to/images conf=0.25
  yolo predict model=best.pt source=video.mp4 vid_stride=2     (annotated video to runs/detect/predict)
  yolo export model=runs/train/exp/weights/best.pt format=onnx imgsz=640 dynamic=True
  yolo val model=runs/train/exp/weights/best.onnx data=shapes.yaml
  yolo benchmark model=yolov10n.yaml,yolov10n-LSKA.yaml imgsz=640 batch=1 device=cpu
  yolo profile model=yolov10n-LSKA.yaml imgsz=640 device=cpu   (one line per YAML row: GFLOPs, params, ms)
  yolo cfg      print every setting with its default, type and meaning
  yolo version  print the package version
  yolo help     print this message

Settings are key=value with no spaces around '='; values are read as YAML ('True', '0.01', '[640, 480]').
"""


def load_command(word: str) -> Callable[[list[str]], Any]:
    """The main(argv) function registered for `word` in COMMANDS (its module is imported now)."""
    module, _, func = COMMANDS[word].partition(":")
    return getattr(importlib.import_module(module), func)


def _source_file(module: str) -> Path:
    """The .py file of a dotted module name, found without importing it or its parent packages."""
    top, _, rest = module.partition(".")
    origin = Path(importlib.util.find_spec(top).origin)  # a top-level lookup imports nothing
    base = origin.parent.joinpath(*rest.split(".")) if rest else origin
    return next((f for f in (base.with_suffix(".py"), base / "__init__.py") if f.is_file()), base)


def command_summary(word: str) -> str:
    """The first line of the docstring of `word`'s main, read from its source file without importing it.

    (Importing would run the packages' __init__ files, e.g. ultralytics/data's, which import torch.)
    """
    module, _, func = COMMANDS[word].partition(":")
    try:
        tree = ast.parse(_source_file(module).read_text(encoding="utf-8"))
    except (AttributeError, ImportError, OSError, SyntaxError, TypeError, ValueError):
        return ""  # a broken entry shows up when it is run, with Python's own error
    main = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == func), None)
    return (ast.get_docstring(main) or "").split("\n")[0] if main else ""


def help_text() -> str:
    """HELP followed by one line per registered command."""
    lines = [f"  yolo {word:<10} {command_summary(word)}".rstrip() for word in sorted(COMMANDS)]
    return HELP + "\nCommands (yolo COMMAND ...):\n" + "\n".join(lines) + "\n"


def entrypoint(argv: list[str] | None = None) -> Any:
    """The `yolo` command line: parse argv, validate the settings, dispatch to YOLO(model).<mode>(**overrides).

    With argv None (the real CLI) a UserError is printed and the process exits with status 2, and the
    return value is an exit status (a command's int, else None); with an explicit argv list (tests,
    scripts) the UserError propagates and the mode's or command's result is returned.
    """
    if argv is None:
        try:
            result = entrypoint(sys.argv[1:])
        except UserError as e:
            LOGGER.error(f"yolo: error: {e}")
            raise SystemExit(2) from e
        return result if isinstance(result, int) and not isinstance(result, bool) else None
    argv = list(argv)
    if not argv or argv[0] in ("help", "-h", "--help"):
        LOGGER.info(help_text())
        return None
    if argv[0] in ("cfg", "settings"):
        LOGGER.info(Path(DEFAULT_CFG_PATH).read_text(encoding="utf-8"))
        return None
    if argv[0] in ("version", "--version"):
        from ultralytics.version import __version__

        LOGGER.info(__version__)
        return None
    if argv[0] in COMMANDS:
        return load_command(argv[0])(argv[1:])
    return run_mode(argv)


def run_mode(argv: list[str]) -> Any:
    """`yolo [TASK] MODE key=value ...`: YOLO(model).<mode>(**overrides), after validating every setting."""
    schema = load_cfg_schema()
    tasks, modes = schema["task"].choices, schema["mode"].choices
    positional = []
    while argv and "=" not in argv[0] and len(positional) < 2:
        positional.append(argv.pop(0))
    overrides = parse_key_value_args(argv)
    for word in positional:
        if word in modes:
            if "mode" in overrides:
                raise UserError(f"more than one mode given: '{overrides['mode']}' and '{word}'")
            overrides["mode"] = word
        elif word in tasks:
            overrides["task"] = word
        else:
            close = difflib.get_close_matches(word, [*modes, *tasks, *COMMANDS], n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise UserError(f"unknown mode or task '{word}'{hint} Valid modes: {', '.join(modes)}; "
                            f"tasks: {', '.join(tasks)}; commands: {', '.join(sorted(COMMANDS))}. See 'yolo help'.")
    if "mode" not in overrides:
        raise UserError(f"no mode given; use one of {', '.join(modes)}, e.g. 'yolo train model=yolov10n.yaml ...'")
    mode = overrides.pop("mode")
    if mode in COMMANDS:  # `yolo detect profile ...` or `yolo mode=profile ...`: the command, without the mode
        return load_command(mode)([a for a in argv if a.split("=", 1)[0].strip().lstrip("-") != "mode"])
    args = command_settings(overrides, mode)  # validate everything before importing the model code
    from ultralytics import YOLO

    if not callable(getattr(YOLO, mode, None)):
        raise UserError(f"'yolo {mode}' is not implemented yet in this project")
    return getattr(YOLO(args.model), mode)(**{k: v for k, v in overrides.items() if k != "model"})


# --- the root scripts' shared entry (train.py, val.py, predict.py, erf.py, heatmap.py, ...) ------------------------
def run_script(main: Callable[[list[str]], Any], argv: list[str] | None = None) -> Any:
    """A root script's `if __name__ == "__main__"`: main(argv or sys.argv[1:]); a UserError ends the process with
    'ERROR: <message>' on stderr and exit status 1 (no traceback: the message names what to fix)."""
    try:
        return main(sys.argv[1:] if argv is None else argv)
    except UserError as e:
        sys.exit(f"ERROR: {e}")


def script_settings(script: str, defaults: dict, argv: list[str], builtin_source: str | None = None) -> dict:
    """A script's SETTINGS <- key=value words; a key it does not have is a UserError naming the script and its keys.

    builtin_source: the script's default image folder; while settings['source'] is that folder and it does not
    exist, the built-in dataset's val images are used instead (made offline in a few seconds).
    """
    overrides = parse_key_value_args(argv)
    unknown = [k for k in overrides if k not in defaults]
    if unknown:
        raise UserError(f"unknown setting {unknown[0]!r} for {script}; settings: {', '.join(defaults)}")
    settings = {**defaults, **overrides}
    if builtin_source is not None and settings.get("source") == builtin_source and not Path(builtin_source).is_dir():
        from ultralytics.data import ensure_builtin_dataset

        settings["source"] = str(ensure_builtin_dataset() / "images" / "val")
    return settings


def benchmark_main(argv: list[str]):
    """Latency of models side by side, e.g. model=a.yaml,b.pt imgsz=640 device=cpu.

    With data=, the deployment table of one .pt (analysis/deploy.py), scored by the detection validator that this
    layer passes down (analysis sits below models/).
    """
    from ultralytics.analysis.deploy import main
    from ultralytics.models.yolo.detect import DetectionValidator

    return main(argv, validator=DetectionValidator)
