"""Every command in docs/*.md runs: bash and python blocks, in page order, on a tiny dataset.

Mechanism (also described at the end of docs/06-comparing-runs.md):
- A scratch directory gets the root scripts, a copy of docs/ and a link to the ultralytics package; all
  pages run there in order, so page 5 validates the run page 1 trained.
- Blocks fenced ```bash run in a bash shell (set -e); blocks fenced ```python of one page share one
  Python interpreter (a worker process that execs them in order, like a notebook).
- Before running, SUBSTITUTIONS shrink the work (shapes.yaml -> a 16-image dataset, epochs=N -> 1, ...)
  and bash commands of the scripts that train, validate or predict get the TINY settings they do not
  give appended.
- A line `<!-- docs-test: skip REASON -->` before a block skips it; `<!-- docs-test: excerpt PATH -->`
  checks that the block's lines appear in order in PATH instead of running it.
Pages depend on earlier ones (page 5 validates page 1's run): run this file whole, not one page with -k.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("[0-9][0-9]-*.md"))
SCRIPTS = ("train.py", "val.py", "predict.py", "compare.py", "heatmap.py", "erf.py", "dataset.py", "tune.py",
           "prune.py")
BLOCK_TIMEOUT = 600  # seconds; a block that takes longer is a failure, not a hang

_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)
_DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(skip|excerpt)\s*(.*?)\s*-->")


@dataclass
class Block:
    """One fenced code block of a page."""

    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    directive: str = ""  # '', 'skip' or 'excerpt'
    arg: str = ""  # the skip reason or the excerpt's file

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def parse_blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file with the docs-test directive on the line before each."""
    text = path.read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        before = text[: m.start()].rstrip().rsplit("\n", 1)[-1]
        d = _DIRECTIVE.search(before)
        out.append(Block(path.name, text.count("\n", 0, m.start()) + 1, m.group(1).lower(), m.group(2),
                         d.group(1) if d else "", d.group(2) if d else ""))
    return out


# --- rewriting commands to tiny settings -------------------------------------------------------------
def substitutions(tiny_yaml: str, tiny_dir: str) -> list[tuple[str, str]]:
    """(regex, re.sub template) applied to every block before it runs."""
    literal = lambda s: s.replace("\\", "\\\\")  # noqa: E731  (a path as a re.sub template)
    return [
        (r"(?<![\w./-])shapes\.yaml", literal(tiny_yaml)),
        (r"(?<![\w./-])datasets/shapes(?=[/\s'\"]|$)", literal(tiny_dir)),
        (r"\bepochs=\d+", "epochs=1"),
        (r"\bimgsz=\d+", "imgsz=64"),
        (r"\bbatch=\d+", "batch=4"),
        (r"\bworkers=\d+", "workers=0"),
        (r"\biterations=\d+", "iterations=2"),  # tuning: two trials
        (r"--seeds[ \t]+(\d+)[ \t]+(\d+)(?:[ \t]+\d+)*", r"--seeds \1 \2"),  # the first two seeds
    ]


def tiny_settings(tiny_yaml: str, tiny_dir: str) -> dict[str, dict[str, str]]:
    """Settings appended to each kind of command when it does not give them."""
    fast = {"device": "cpu", "plots": "False"}
    train = {"data": tiny_yaml, "epochs": "1", "imgsz": "64", "batch": "4", "workers": "0", **fast}
    return {"train": train,
            "val": {"data": tiny_yaml, "imgsz": "64", "batch": "4", "workers": "0", **fast},
            "predict": {"source": f"{tiny_dir}/images/val", "imgsz": "64", "device": "cpu"}}


def command_kind(tokens: list[str]) -> str | None:
    """'train' / 'val' / 'predict' for commands that take settings, else None."""
    if len(tokens) < 2 or tokens[0] != "python":
        return None
    script = tokens[1] if tokens[1] != "-m" else (tokens[2] if len(tokens) > 2 else "")
    if script in ("train.py", "val.py", "predict.py"):
        return script[:-3]
    if script in ("tune.py", "prune.py"):  # tuning's trials and pruning's fine-tuning are trainings
        return "train"
    if script in ("compare.py", "ultralytics.compare") and "--train" in tokens:
        return "train"
    return None


def rewrite(code: str, lang: str, subs: list[tuple[str, str]], tiny: dict[str, dict[str, str]]) -> str:
    """The block as it is run: substitutions, then (bash) the tiny settings appended to each command."""
    for pattern, repl in subs:
        code = re.sub(pattern, repl, code)
    if lang != "bash":
        return code
    lines = []
    for line in code.replace("\\\n", " ").splitlines():
        m = re.match(r"^(?P<cmd>[^#]*?)(?P<comment>\s+#.*)?$", line)
        cmd = m.group("cmd") if m else line
        kind = command_kind(shlex.split(cmd)) if cmd.strip() else None
        if kind:
            given = {t.split("=", 1)[0] for t in shlex.split(cmd) if "=" in t and not t.startswith("-")}
            extra = [f"{k}={shlex.quote(v)}" for k, v in tiny[kind].items() if k not in given]
            line = " ".join([cmd.rstrip(), *extra])
        lines.append(line)
    return "\n".join(lines) + "\n"


# --- running -------------------------------------------------------------------------------------------
WORKER = """
import json, sys, traceback
ns = {"__name__": "__main__"}
for line in sys.stdin:
    msg = json.loads(line)
    try:
        exec(compile(msg["code"], msg["name"], "exec"), ns)
        status = "ok"
    except BaseException:
        traceback.print_exc(file=sys.stdout)
        status = "fail"
    sys.stdout.flush()
    sys.stderr.flush()
    print("\\n@@DOCS-BLOCK-DONE@@ " + status, flush=True)
"""


class PythonSession:
    """A Python process that execs blocks in one namespace; run() -> (ok, output)."""

    def __init__(self, cwd: Path, env: dict):
        worker = cwd / "_docs_worker.py"
        worker.write_text(WORKER)
        self.proc = subprocess.Popen([sys.executable, "-u", str(worker)], cwd=cwd, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def run(self, code: str, name: str) -> tuple[bool, str]:
        self.proc.stdin.write(json.dumps({"code": code, "name": name}) + "\n")
        self.proc.stdin.flush()
        out = []
        while True:
            try:
                line = self.lines.get(timeout=BLOCK_TIMEOUT)
            except queue.Empty:
                return False, "".join(out) + f"\n(no end after {BLOCK_TIMEOUT} s)"
            if line is None:
                return False, "".join(out) + "\n(the Python process exited)"
            if line.startswith("@@DOCS-BLOCK-DONE@@"):
                return line.split()[1] == "ok", "".join(out)
            out.append(line)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_data):
    """(scratch dir, env, substitutions, tiny settings) shared by the pages, which run in order."""
    work = tmp_path_factory.mktemp("docs_run")
    (work / "ultralytics").symlink_to(REPO / "ultralytics", target_is_directory=True)
    for s in SCRIPTS:
        shutil.copy(REPO / s, work / s)
    shutil.copytree(DOCS, work / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    tiny_dir = yaml.safe_load(Path(tiny_data).read_text())["path"]
    env = {**os.environ, "PYTHONPATH": str(work), "OMP_WAIT_POLICY": "PASSIVE", "MPLBACKEND": "Agg",
           "NO_COLOR": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return work, env, substitutions(tiny_data, tiny_dir), tiny_settings(tiny_data, tiny_dir)


def test_pages_exist_in_order():
    assert [p.name for p in PAGES] == ["01-getting-started.md", "02-adding-a-module.md", "03-where-lska-goes.md",
                                       "04-training-settings.md", "05-validation-metrics.md", "06-comparing-runs.md",
                                       "07-loss-recipes.md", "08-is-my-module-helping.md",
                                       "09-multi-gpu-and-speed.md", "10-your-own-data.md",
                                       "11-attention-baselines.md", "12-tracking-and-tuning.md",
                                       "13-small-objects.md", "14-lightweight-models.md",
                                       "15-deployment.md"]


def test_settings_page_is_generated_from_default_yaml():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_settings", DOCS / "gen_settings.py")
    gen_settings = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_settings)
    assert (DOCS / "04-training-settings.md").read_text(encoding="utf-8") == gen_settings.render(), \
        "docs/04-training-settings.md is out of date: run python docs/gen_settings.py"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_excerpts_match_the_tree(page):
    for b in parse_blocks(page):
        if b.directive != "excerpt":
            continue
        src = [ln.strip() for ln in (REPO / b.arg).read_text(encoding="utf-8").splitlines()]
        pos = 0
        for ln in (x.strip() for x in b.code.splitlines()):
            if not ln or ln == "..." or ln.startswith("... "):
                continue
            assert ln in src[pos:], f"{b.where}: excerpt line {ln!r} is not in {b.arg} (after line {pos})"
            pos = src.index(ln, pos) + 1


def test_rewrite_rules():
    subs, tiny = substitutions("/t/tiny.yaml", "/t/tiny"), tiny_settings("/t/tiny.yaml", "/t/tiny")
    out = rewrite("python train.py data=shapes.yaml epochs=30   # comment\nls runs\n", "bash", subs, tiny)
    assert out.splitlines()[0] == ("python train.py data=/t/tiny.yaml epochs=1 imgsz=64 batch=4 workers=0 "
                                   "device=cpu plots=False")
    assert out.splitlines()[1] == "ls runs"
    out = rewrite("python compare.py --train a.yaml --seeds 0 1 2 imgsz=320\n", "bash", subs, tiny)
    assert "--seeds 0 1 imgsz=64" in out and "data=/t/tiny.yaml" in out
    assert rewrite("python compare.py runs/train/*\n", "bash", subs, tiny) == "python compare.py runs/train/*\n"
    assert rewrite('m.train(data="shapes.yaml", epochs=30)', "python", subs, tiny) == \
        'm.train(data="/t/tiny.yaml", epochs=1)'


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_commands_run(page, workspace):
    """Run the page's bash and python blocks in order (pages share the scratch directory)."""
    work, env, subs, tiny = workspace
    session = None
    ran = 0
    try:
        for b in parse_blocks(page):
            if b.directive or b.lang not in ("bash", "python"):
                continue
            code = rewrite(b.code, b.lang, subs, tiny)
            if b.lang == "bash":
                r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", code], cwd=work, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=BLOCK_TIMEOUT)
                ok, out = r.returncode == 0, r.stdout
            else:
                session = session or PythonSession(work, env)
                ok, out = session.run(code, f"{b.where} (python block)")
            assert ok, f"{b.where}: {b.lang} block failed\n--- as run:\n{code}\n--- output (tail):\n{out[-4000:]}"
            ran += 1
    finally:
        if session is not None:
            session.close()
    assert ran > 0, f"{page.name} has no block that runs"
