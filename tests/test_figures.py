"""Every measured figure in README.md and docs/ equals the JSON its benchmark wrote, under today's defaults and
on a commit that already had today's version of the code its script exercises.

Markers (see benchmarks/_results.py): `<!--fig:NAME.KEY-->` right after a figure, and
`<!--table:NAME.KEY-->` ... `<!--/table-->` around a generated table.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._results import (CODE_OF_SCRIPT, FIG_MARKER, SHOWN_NUMBER, TABLE_BLOCK, defaults_hash,  # noqa: E402
                                 load_results, rerun_command, save_results, stale_reason)

NUMBER = re.compile(SHOWN_NUMBER + r"[^0-9]*$")  # the last number of the text before a marker


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def figure_matches(before: str, value) -> tuple[bool, str]:
    """Whether the text `before` a marker ends with the figure `value` (numbers at the decimals shown)."""
    tail = before.rstrip("* _`")
    if isinstance(value, str):
        return tail.endswith(value.rstrip("* _`")), value
    m = NUMBER.search(tail[-40:])
    if not m:
        return False, "no number before the marker"
    shown = m.group(1).replace(",", "")
    decimals = len(shown.split(".", 1)[1]) if "." in shown else 0
    return round(float(value), decimals) == float(shown), shown


def check_text(text: str, where: str, results_dir: Path | None = None, stale: list | None = None) -> list[str]:
    """The list of mismatches between the markers in `text` and their JSON files.

    A JSON measured under other defaults than today's is an error, or, when a `stale` list is given, is appended
    to it instead (the figure still has to equal its JSON).
    """
    kw = {"out_dir": results_dir} if results_dir else {}
    errors, cache = [], {}
    today = defaults_hash()

    def value(name: str, key: str, line: int):
        if name not in cache:
            try:
                cache[name] = load_results(name, **kw)
            except FileNotFoundError:
                cache[name] = None
        doc = cache[name]
        if doc is None:
            errors.append(f"{where}:{line}: benchmarks/results/{name}.json is missing (run its benchmark)")
            return None
        if doc.get("defaults_hash") != today:
            (stale if stale is not None else errors).append(f"{where}:{line}: {name}.json was measured under other defaults "
                          f"({doc.get('defaults_hash')} != {today}): re-run {doc.get('script')}")
        if key not in doc["figures"]:
            errors.append(f"{where}:{line}: {name}.json has no figure {key!r} (re-run: {rerun_command(doc)})")
            return None
        return doc["figures"][key]

    for m in FIG_MARKER.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        v = value(m.group(1), m.group(2), line)
        if v is None:
            continue
        ok, shown = figure_matches(text[max(0, m.start() - 200):m.start()], v)
        if not ok:
            errors.append(f"{where}:{line}: shows {shown!r}, {m.group(1)}.json says {m.group(2)} = {v!r}")
    for m in TABLE_BLOCK.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        v = value(m.group(2), m.group(3), line)
        if v is not None and m.group(4).strip() != str(v).strip():
            errors.append(f"{where}:{line}: the table differs from {m.group(2)}.json {m.group(3)}")
    return errors


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.name)
def test_every_cited_figure_equals_its_json(path):
    errors = check_text(path.read_text(encoding="utf-8"), path.name, stale=[])
    assert not errors, "\n".join(errors)


def test_cited_figures_were_measured_under_todays_defaults():
    """A figure measured before a default changed is stale: re-run its script (the message names it)."""
    stale: list[str] = []
    for path in doc_files():
        check_text(path.read_text(encoding="utf-8"), path.name, stale=stale)
    scripts = sorted({s.rsplit("re-run ", 1)[-1] for s in stale})
    assert not stale, f"{len(stale)} cited figures measured under other defaults; re-run: {', '.join(scripts)}"


def test_readme_cites_figures():
    """The README's measured figures are cited, not typed: the default run's mAP (mean ± std over the seeds of
    `train_default.py --seeds 0 1 2`) and the model table at least."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for k in ("map50", "map"):
        assert f"<!--fig:train_default.{k}_mean--> ± " in text and f"<!--fig:train_default.{k}_std-->" in text
    assert "<!--table:model_table.table_md-->" in text


def test_checker_catches_a_stale_or_wrong_figure(tmp_path, monkeypatch):
    save_results("demo", {"map50": 0.5294, "wall": "10 min 54 s", "t": "| a |\n|---|\n| 1 |"}, {}, out_dir=tmp_path)
    good = ("**0.529**<!--fig:demo.map50--> and 0.53<!--fig:demo.map50--> in 10 min 54 s<!--fig:demo.wall-->\n"
            "<!--table:demo.t-->\n| a |\n|---|\n| 1 |\n<!--/table-->\n")
    assert check_text(good, "x.md", tmp_path) == []
    assert len(check_text("0.528<!--fig:demo.map50-->", "x.md", tmp_path)) == 1
    assert len(check_text("11 min<!--fig:demo.wall-->", "x.md", tmp_path)) == 1
    assert len(check_text("1<!--fig:demo.nokey--> 1<!--fig:nojson.k-->", "x.md", tmp_path)) == 2
    assert len(check_text("<!--table:demo.t-->\n| a |\n|---|\n| 2 |\n<!--/table-->", "x.md", tmp_path)) == 1
    # a dash right after a marker is a range, not a minus sign: "8.7-9.2 MB" stays a range when read and filled
    save_results("rng", {"lo": 8.7, "hi": 9.2, "neg": -1.5}, {}, out_dir=tmp_path)
    ranged = "8.7<!--fig:rng.lo-->-9.2<!--fig:rng.hi--> MB, change -1.5<!--fig:rng.neg-->"
    assert check_text(ranged, "x.md", tmp_path) == []
    assert len(check_text("8.7<!--fig:rng.lo-->-9.3<!--fig:rng.hi-->", "x.md", tmp_path)) == 1
    from benchmarks import fill_docs

    monkeypatch.setattr(fill_docs, "load_results", lambda name: load_results(name, tmp_path))
    assert fill_docs.fill("8.5<!--fig:rng.lo-->-9.0<!--fig:rng.hi--> MB, change -1.0<!--fig:rng.neg-->", "x.md",
                          []) == ranged
    # a JSON measured under other defaults is stale
    path = tmp_path / "demo.json"
    path.write_text(path.read_text().replace(defaults_hash(), "0" * 16))
    assert any("other defaults" in e for e in check_text("0.529<!--fig:demo.map50-->", "x.md", tmp_path))


def cited_names() -> list[str]:
    """The result JSONs that README.md and docs/*.md cite (fig and table markers)."""
    names = set()
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        names |= {m.group(1) for m in FIG_MARKER.finditer(text)} | {m.group(2) for m in TABLE_BLOCK.finditer(text)}
    return sorted(names)


def test_every_benchmark_script_names_its_code():
    """Each script that writes a result JSON has its code named in CODE_OF_SCRIPT, and the named paths exist."""
    scripts = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py")
                     if not p.name.startswith("_") and "save_results(" in p.read_text(encoding="utf-8"))
    assert [s for s in scripts if s not in CODE_OF_SCRIPT] == []
    missing = [p for e in CODE_OF_SCRIPT.values() for p in e["paths"] if not (ROOT / p).exists()]
    assert missing == []


def test_cited_figures_were_measured_on_todays_code():
    """A figure measured on a commit older than the last change to its script's code is stale (the message lists
    exactly the commands to re-run, then `python benchmarks/fill_docs.py`)."""
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True).returncode:
        pytest.skip("not a git checkout: the commits cannot be compared")
    stale, commands = [], {}
    for name in cited_names():
        try:
            doc = load_results(name)
        except FileNotFoundError:
            continue  # reported by test_every_cited_figure_equals_its_json
        why = stale_reason(doc)
        if why:
            stale.append(f"  {name}.json: {why}")
            commands.setdefault(rerun_command(doc), None)
    assert not stale, (f"{len(stale)} cited result(s) measured on older code:\n" + "\n".join(stale)
                       + "\nre-run:\n" + "\n".join(f"  {c}" for c in commands)
                       + "\n  python benchmarks/fill_docs.py")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_provenance_check_on_a_git_repository(tmp_path):
    """A JSON is stale once a later commit changes its script's code, not after other commits; re-measuring on the
    new commit makes it current; uncommitted changes to its code at measuring time make it stale too."""
    repo, out = tmp_path / "repo", tmp_path / "results"
    (repo / "pkg").mkdir(parents=True)
    (repo / "benchmarks").mkdir()
    code = {"bench.py": {"paths": ["pkg/"]}}
    (repo / "pkg" / "core.py").write_text("x = 1\n")
    (repo / "benchmarks" / "bench.py").write_text("print(1)\n")
    (repo / "notes.md").write_text("a\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "one")

    def measure() -> dict:
        save_results("demo", {"x": 1}, {}, out_dir=out, repo=repo, script="bench.py")
        return load_results("demo", out)

    doc = measure()
    assert doc["git"] == {"commit": _git(repo, "rev-parse", "HEAD"), "dirty": False, "changed": []}
    assert set(doc["machine"]) >= {"cpu", "cores", "loadavg_1m", "loadavg_5m", "loadavg_15m"}
    assert stale_reason(doc, repo, code) is None
    (repo / "notes.md").write_text("b\n")  # a commit that does not touch its code
    _git(repo, "commit", "-qam", "notes")
    assert stale_reason(doc, repo, code) is None
    (repo / "pkg" / "core.py").write_text("x = 2\n")  # a commit that changes its code
    _git(repo, "commit", "-qam", "core")
    why = stale_reason(doc, repo, code)
    assert why is not None and "pkg/core.py" in why and _git(repo, "rev-parse", "--short", "HEAD") in why
    doc = measure()  # re-measured on the new commit
    assert stale_reason(doc, repo, code) is None
    (repo / "benchmarks" / "bench.py").write_text("print(2)\n")  # the script is part of its code
    _git(repo, "commit", "-qam", "script")
    assert "benchmarks/bench.py" in stale_reason(doc, repo, code)
    (repo / "pkg" / "new.py").write_text("y = 1\n")  # measured with an uncommitted (untracked) file in its code
    doc = measure()
    assert doc["git"]["dirty"] and doc["git"]["changed"] == ["pkg/new.py"]
    assert "uncommitted changes to pkg/new.py" in stale_reason(doc, repo, code)
    (repo / "pkg" / "new.py").unlink()
    (repo / "notes.md").write_text("c\n")  # uncommitted changes elsewhere do not matter
    assert stale_reason(measure(), repo, code) is None
    assert "no commit" in stale_reason({"script": "bench.py", "settings": {}}, repo, code)
    assert "not in this repository" in stale_reason({"script": "bench.py", "git": {"commit": "0" * 40}}, repo, code)
    assert "no entry in CODE_OF_SCRIPT" in stale_reason({"script": "other.py", "git": doc["git"]}, repo, code)


def test_not_run_code_is_not_run(tiny_data, tmp_path):
    """CODE_OF_SCRIPT's `not_run` files are never called into by a training with validation (the work of every
    script that declares them): a change there leaves those figures valid only while this holds. The check can
    fail: validating with slice= calls into sliced.py and slicing.py, and the tracer sees it."""
    import threading

    from ultralytics import YOLO

    skip = {str(ROOT / p) for e in CODE_OF_SCRIPT.values() for p in e.get("not_run", [])}
    assert skip, "no script declares not_run code: this test checks nothing"
    called: set[str] = set()

    def tracer(frame, event, arg):
        if event == "call" and frame.f_code.co_filename in skip and frame.f_code.co_name != "<module>":
            called.add(f"{Path(frame.f_code.co_filename).relative_to(ROOT)}:{frame.f_code.co_name}")

    def traced(fn):
        called.clear()
        sys.setprofile(tracer)
        threading.setprofile(tracer)
        try:
            fn()
        finally:
            sys.setprofile(None)
            threading.setprofile(None)
        return sorted(called)

    model = YOLO("yolov10n.yaml")
    settings = dict(data=tiny_data, imgsz=64, batch=8, workers=0, device="cpu", plots=False, verbose=False)
    assert traced(lambda: model.train(**settings, epochs=1, project=str(tmp_path), name="t", seed=0)) == []
    assert traced(lambda: model.val(**settings, project=str(tmp_path), name="v")) == []
    sliced = traced(lambda: model.val(**settings, slice=64, project=str(tmp_path), name="s"))
    assert {c.split(":")[0] for c in sliced} == {"ultralytics/models/yolo/detect/sliced.py",
                                                 "ultralytics/utils/slicing.py"}


def test_not_run_code_leaves_figures_current(tmp_path):
    """A commit that changes only a `not_run` file of a script keeps its figures current; one that changes its
    other code makes them stale."""
    repo, out = tmp_path / "repo", tmp_path / "results"
    (repo / "pkg").mkdir(parents=True)
    (repo / "benchmarks").mkdir()
    code = {"bench.py": {"paths": ["pkg/"], "not_run": ["pkg/predict.py"]}}
    for f, text in (("pkg/core.py", "x = 1\n"), ("pkg/predict.py", "y = 1\n"), ("benchmarks/bench.py", "print(1)\n")):
        (repo / f).write_text(text)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "one")
    save_results("demo", {"x": 1}, {}, out_dir=out, repo=repo, script="bench.py")
    doc = load_results("demo", out)
    (repo / "pkg" / "predict.py").write_text("y = 2\n")
    _git(repo, "commit", "-qam", "predict")
    assert stale_reason(doc, repo, code) is None
    (repo / "pkg" / "core.py").write_text("x = 2\n")
    _git(repo, "commit", "-qam", "core")
    why = stale_reason(doc, repo, code)
    assert why is not None and "pkg/core.py" in why and "predict.py" not in why
