"""Where every measured figure in README.md and docs/ comes from: `benchmarks/results/<name>.json`.

A benchmark calls `save_results(name, figures, settings)` at its end. The JSON holds the figures (a flat
dict: numbers, strings, or whole markdown tables as strings), the settings the script ran with, the hash
of today's default values (`ultralytics/cfg/default.yaml` and the settings of `train.py`), the commit it measured
and whether the working tree had uncommitted changes (which files), the machine (CPU, cores, load average over 1,
5 and 15 minutes, torch, device) and when it was written. The file is written to a temporary name and renamed
into place, so an interrupted benchmark never leaves half a JSON.

The docs cite a figure with a marker right after it, invisible when the markdown is rendered:

    **0.529**<!--fig:train_default.map50--> mAP50          the number just before equals figures["map50"]
    10 min 54 s<!--fig:train_default.wall-->                 a string figure: the text just before ends with it
    <!--table:attention_cost.table_md-->                     a whole table, equal to the string figure
    | ... |
    <!--/table-->

`tests/test_figures.py` reads every marker in README.md and docs/*.md and fails when a figure differs
from its JSON (numbers compared at the decimals shown), when a marker names a missing JSON or key, when a cited
JSON was measured under other defaults than today's (change a default, re-run the script), and when it was
measured on a commit older than the last change to the code its script exercises (CODE_OF_SCRIPT below names
that code; `stale_reason` decides).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
DEFAULT_CFG = ROOT / "ultralytics" / "cfg" / "default.yaml"
TRAIN_PY = ROOT / "train.py"

# The markers, read by benchmarks/fill_docs.py (which writes the figures) and tests/test_figures.py (which checks
# them): one definition, so the writer and the checker cannot disagree on what a cited figure is.
FIG_MARKER = re.compile(r"<!--fig:([A-Za-z0-9_\-]+)\.([A-Za-z0-9_\-.]+)-->")  # groups: name, key
TABLE_BLOCK = re.compile(r"(<!--table:([A-Za-z0-9_\-]+)\.([A-Za-z0-9_\-.]+)-->\n)(.*?)(\n<!--/table-->)",
                         re.S)  # groups: opening line, name, key, the table, closing line
# a number as shown before a marker; a minus is a sign only where it cannot be a dash (not right after a word,
# a digit or a marker: "8.7<!--fig:a.lo-->-9.2" is a range)
SHOWN_NUMBER = r"((?:(?<![\w>])-)?[0-9][0-9,]*(?:\.[0-9]+)?)"


def train_py_settings(path: Path = TRAIN_PY) -> dict[str, Any]:
    """The defaults a user edits in train.py: MODEL, DATA and the keywords of `settings = dict(...)`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign) or len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
            continue
        name = node.targets[0].id
        if name in ("MODEL", "DATA"):
            out[name] = ast.literal_eval(node.value)
        elif name == "settings" and isinstance(node.value, ast.Call):
            for kw in node.value.keywords:
                try:
                    out[kw.arg] = ast.literal_eval(kw.value)
                except ValueError:  # a name (e.g. DATA): record the expression
                    out[kw.arg] = ast.unparse(kw.value)
    return out


def defaults_hash() -> str:
    """sha256 (first 16 hex digits) of the default values: cfg/default.yaml's and train.py's settings.

    The parsed values are hashed, not the bytes, so editing a comment keeps every figure valid while changing,
    adding or removing a default makes every cited figure stale until its benchmark is re-run.
    """
    defaults = yaml.safe_load(DEFAULT_CFG.read_text(encoding="utf-8"))
    doc = {"default.yaml": defaults, "train.py": train_py_settings()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


# The code each benchmark script exercises, as paths of the repository (a folder covers what is under it): a
# figure is stale once a commit after the one it measured changes one of them. The script itself is always
# included. `not_run`: files inside those folders that the script never calls into (a change there leaves its
# figures valid); tests/test_figures.py traces a short training and validation and fails if any function of a
# `not_run` file is called. `command` is how to re-run it where that differs from the command the JSON
# recorded.
_TRAINING = ["train.py", "ultralytics/cfg/", "ultralytics/data/", "ultralytics/engine/", "ultralytics/models/",
             "ultralytics/nn/", "ultralytics/utils/"]
_MODEL = ["ultralytics/nn/", "ultralytics/cfg/models/", "ultralytics/utils/torch_utils.py", "ultralytics/utils/ops.py"]
_LOADER = ["ultralytics/cfg/", "ultralytics/data/", "ultralytics/utils/"]
# prediction's and sliced inference's own code: imported by a training run, never called by one (traced in a test)
PREDICT_ONLY = ["ultralytics/models/yolo/detect/predict.py", "ultralytics/models/yolo/detect/sliced.py",
                "ultralytics/utils/slicing.py"]
CODE_OF_SCRIPT: dict[str, dict[str, Any]] = {
    "attention_cost.py": {"paths": ["benchmarks/_common.py", *_MODEL]},
    "augment_steps.py": {"paths": ["benchmarks/_common.py", "benchmarks/loader_speed.py", *_LOADER]},
    "convert_speed.py": {"paths": ["ultralytics/data/", "ultralytics/utils/"]},
    "erf_table.py": {"paths": ["ultralytics/analysis/", "ultralytics/data/builtin.py", *_MODEL]},
    "export_figures.py": {"paths": ["ultralytics/analysis/", "ultralytics/engine/", "ultralytics/models/",
                                    "ultralytics/cfg/", "ultralytics/utils/", *_MODEL]},
    "forward.py": {"paths": ["benchmarks/_common.py", *_MODEL]},
    "loader_speed.py": {"paths": ["benchmarks/_common.py", *_LOADER]},
    "lska_scaling.py": {"paths": ["benchmarks/_common.py", *_MODEL]},
    "model_table.py": {"paths": [*_MODEL]},
    "recipe.py": {"paths": ["benchmarks/_common.py", *_TRAINING], "not_run": PREDICT_ONLY},
    "small_objects.py": {"paths": ["benchmarks/_common.py", "ultralytics/compare/stats.py", *_TRAINING]},
    "train_default.py": {"paths": [*_TRAINING], "not_run": PREDICT_ONLY,
                         "command": "python benchmarks/train_default.py --seeds 0 1 2"},
    "train_speed.py": {"paths": ["benchmarks/_common.py", *_TRAINING], "not_run": PREDICT_ONLY},
    "tune_pruning.py": {"paths": ["benchmarks/_common.py", "tests/data/yolov10t-shapes.pt", *_TRAINING],
                        "not_run": PREDICT_ONLY},
    "val_speed.py": {"paths": ["benchmarks/_common.py", *_TRAINING], "not_run": PREDICT_ONLY},
    "decode_diff.py": {"paths": ["tests/data/yolov10t-shapes.pt", *_TRAINING], "not_run": PREDICT_ONLY},
    "deploy_table.py": {"paths": ["ultralytics/analysis/", "tests/data/yolov10t-shapes.pt", *_TRAINING]},
    "distill.py": {"paths": ["benchmarks/_common.py", "ultralytics/compare/stats.py", *_TRAINING],
                   "not_run": PREDICT_ONLY},
    "p2_memory.py": {"paths": ["ultralytics/cfg/", "ultralytics/utils/loss.py", "ultralytics/utils/tal.py", *_MODEL]},
    "predict_call.py": {"paths": [*_TRAINING]},
    "prune_table.py": {"paths": ["prune.py", "ultralytics/analysis/", *_TRAINING], "not_run": PREDICT_ONLY},
    "sliced_predict.py": {"paths": ["benchmarks/_common.py", "tests/data/yolov10t-shapes.pt", *_TRAINING]},
}


def _git(repo: Path, *args: str) -> str | None:
    """stdout of `git args` in repo, or None when git or the repository is not there or the command fails."""
    try:
        out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.rstrip() if out.returncode == 0 else None  # (not lstrip: status lines start with a space)


def git_state(repo: Path = ROOT) -> dict[str, Any]:
    """{'commit': HEAD's sha (None outside git), 'dirty': uncommitted changes?, 'changed': their paths (tracked
    files changed and untracked files not ignored, at most 200)}."""
    commit = _git(repo, "rev-parse", "HEAD")
    status = _git(repo, "status", "--porcelain", "--untracked-files=all") if commit else None
    changed = [line[3:].split(" -> ")[-1].strip('"') for line in (status or "").splitlines() if line.strip()]
    return {"commit": commit, "dirty": bool(changed), "changed": changed[:200]}


def _entry(script: str | None, code: dict | None = None) -> dict | None:
    """A script's CODE_OF_SCRIPT entry (or `code`'s, a stand-in table for tests), None when it has none."""
    return (CODE_OF_SCRIPT if code is None else code).get(script or "")


def code_paths(script: str | None, code: dict | None = None) -> list[str] | None:
    """The paths a script's figures depend on (the script itself first), or None when the table lacks it."""
    entry = _entry(script, code)
    return None if entry is None else [f"benchmarks/{script}", *entry["paths"]]


def not_run_paths(script: str | None, code: dict | None = None) -> list[str]:
    """The files inside a script's code paths that it never calls into (CODE_OF_SCRIPT's `not_run`)."""
    return list((_entry(script, code) or {}).get("not_run", []))


def _under(f: str, paths: list[str]) -> bool:
    return any(f == p or f.startswith(p.rstrip("/") + "/") for p in paths)


def rerun_command(doc: dict, code: dict | None = None) -> str:
    """How to re-measure a JSON: the table's command for its script, else the command it recorded."""
    entry = _entry(doc.get("script"), code) or {}
    return entry.get("command") or f"python {doc.get('command') or 'benchmarks/' + str(doc.get('script'))}"


def stale_reason(doc: dict, repo: Path = ROOT, code: dict | None = None) -> str | None:
    """Why a result JSON no longer describes the code, or None when it does.

    Stale: its script has no entry in CODE_OF_SCRIPT; it records no commit (written before provenance was
    kept), or one this repository does not have; it was measured on a tree with uncommitted changes to its
    code; or a commit after the measured one (reachable from HEAD) changes its code.
    """
    script = doc.get("script")
    paths = code_paths(script, code)
    if paths is None:
        return f"its script {script!r} has no entry in CODE_OF_SCRIPT (benchmarks/_results.py): name its code there"
    git = doc.get("git") or {}
    settings = doc.get("settings") or {}
    commit = git.get("commit") or settings.get("commit")  # train_default.py recorded its clone's commit early
    if not commit:
        return "it records no commit (measured before figures recorded their commit)"
    if _git(repo, "cat-file", "-e", f"{commit}^{{commit}}") is None:
        return f"its commit {commit[:10]} is not in this repository"
    skip = not_run_paths(script, code)
    dirty = [f for f in git.get("changed") or [] if _under(f, paths) and not _under(f, skip)]
    if dirty:
        return f"it was measured with uncommitted changes to {', '.join(dirty[:5])}"
    spec = [*paths, *(f":(exclude){p}" for p in skip)]
    later = _git(repo, "log", "--format=%h", f"{commit}..HEAD", "--", *spec)
    if later is None:
        return f"git log {commit[:10]}..HEAD failed"
    if later:
        hashes = later.split()
        files = _git(repo, "diff", "--name-only", commit, "HEAD", "--", *spec) or ""
        return (f"measured on {commit[:10]}; {len(hashes)} later commit(s) ({', '.join(hashes[:3])}) changed its "
                f"code: {', '.join(files.split()[:5])}")
    return None


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPU model, cores usable, load average, python, torch, device."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "loadavg_5m": round(os.getloadavg()[1], 2) if hasattr(os, "getloadavg") else None,
        "loadavg_15m": round(os.getloadavg()[2], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 - a benchmark without torch still records its machine
        info["torch"] = None
    return info


def save_results(name: str, figures: dict[str, Any], settings: dict[str, Any] | None = None,
                 out_dir: Path | str = RESULTS_DIR, repo: Path = ROOT, script: str | None = None) -> Path:
    """Write benchmarks/results/<name>.json atomically and return its path.

    figures: flat {key: number | str} (a markdown table is a str); settings: how the script was run;
    repo: the repository whose commit is recorded; script: the benchmark's file name (default: sys.argv[0]'s).
    """
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        raise ValueError(f"results name {name!r}: use letters, digits, '_' and '-' only")
    bad = [k for k, v in figures.items() if not isinstance(v, (int, float, str)) or isinstance(v, bool)]
    if bad:
        raise ValueError(f"results {name!r}: figures must be numbers or strings, not {bad}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "name": name,
        "script": script or (Path(sys.argv[0]).name if sys.argv and sys.argv[0] else None),
        "command": " ".join(sys.argv),
        "figures": figures,
        "settings": settings or {},
        "defaults_hash": defaults_hash(),
        "git": git_state(Path(repo)),
        "machine": machine(),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path = out_dir / f"{name}.json"
    tmp = path.with_suffix(f".json.tmp{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_results(name: str, out_dir: Path | str = RESULTS_DIR) -> dict[str, Any]:
    """The JSON a benchmark wrote, as a dict (FileNotFoundError names the script-less figure)."""
    return json.loads((Path(out_dir) / f"{name}.json").read_text(encoding="utf-8"))
