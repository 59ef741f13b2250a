"""The package's import graph has no cycle and its imports never run up a layer, counting imports inside
functions (the layers are read from docs/architecture.md; DESIGN.md, 'import graph').

Every module under ultralytics/ is parsed with `ast` (nothing is imported). An edge A -> B means A imports
B somewhere: at module level, inside a function or under `if TYPE_CHECKING` alike. Relative imports are
resolved against A's package; `from pkg import name` points at the submodule pkg.name when that is a module,
else at pkg. Importing a.b.c also runs the packages a and a.b, so those are edges too, except A's own
enclosing packages (the usual `package/__init__ -> package.sub` layout, which Python handles).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARCHITECTURE = REPO / "docs" / "architecture.md"  # the design note that states the layers


def module_names(root: Path, package: str) -> dict[str, Path]:
    """{dotted module name: file} for every .py file under root (the directory of `package`)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imported(node: ast.AST, name: str, is_package: bool, modules: dict) -> list[str]:
    """Dotted names one Import/ImportFrom node in module `name` refers to (submodules resolved)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:  # relative: level 1 is the module's own package
        base = name.split(".")
        keep = len(base) - node.level + (1 if is_package else 0)
        if keep < 1:
            raise ValueError(f"{name}: relative import beyond the top-level package (level {node.level})")
        base = ".".join(base[:keep] + ([node.module] if node.module else []))
    else:
        base = node.module
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """{module: modules of the package it imports}, from the source alone."""
    modules = module_names(root, package)
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1 + is_package)}
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _imported(node, name, is_package, modules):
                    parts = target.split(".")
                    for i in range(1, len(parts) + 1):  # a.b.c runs a, a.b and a.b.c
                        dotted = ".".join(parts[:i])
                        if dotted in modules and dotted != name and (i == len(parts) or dotted not in own):
                            edges.add(dotted)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None when the graph is acyclic (iterative depth-first search)."""
    state = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_package_import_graph_is_acyclic():
    graph = import_graph(REPO / "ultralytics", "ultralytics")
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
    assert len(graph) > 50 and graph["ultralytics.__main__"] == {"ultralytics.cli"}  # the parse saw the package


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module that importing `start` can import, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_layers_point_one_way():
    """DESIGN.md: cfg holds settings only, analysis reads nn (never the reverse), computing metrics never draws."""
    graph = import_graph(REPO / "ultralytics", "ultralytics")
    assert reachable(graph, "ultralytics.cfg") <= {"ultralytics.utils", "ultralytics.utils.checks"}
    assert [m for m in graph if "ultralytics.cli" in graph[m]] == ["ultralytics.__main__"]
    below = [m for m in graph if m.split(".")[1:2] in (["nn"], ["data"], ["utils"], ["cfg"])]
    assert below and not [(m, r) for m in below for r in reachable(graph, m) if r.startswith("ultralytics.analysis")]
    for m in ("ultralytics.utils.metrics", "ultralytics.utils.confusion_matrix", "ultralytics.utils.matching"):
        assert not reachable(graph, m) & {"ultralytics.utils.plot_curves", "ultralytics.utils.plotting"}, m
    assert "ultralytics.utils.metrics" in reachable(graph, "ultralytics.utils.plot_curves")  # drawing reads metrics


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")


def test_graph_resolves_imports_and_finds_cycles(tmp_path):
    pkg = tmp_path / "pkg"
    _write(pkg, {
        "__init__.py": "",
        "sub/__init__.py": "from . import a\n",
        "sub/a.py": "def f():\n    from .b import g\n",  # inside a function, relative
        "sub/b.py": "import os\nfrom pkg.sub import c\n",  # `from package import module` -> the module
        "sub/c.py": "from .. import top\n",  # level 2
        "top.py": "X = 1\n",
        "other.py": "import pkg.sub.b\n",  # also runs the package pkg.sub
    })
    graph = import_graph(pkg, "pkg")
    assert graph == {"pkg": set(), "pkg.sub": {"pkg.sub.a"}, "pkg.sub.a": {"pkg.sub.b"}, "pkg.sub.b": {"pkg.sub.c"},
                     "pkg.sub.c": {"pkg.top"}, "pkg.top": set(), "pkg.other": {"pkg.sub", "pkg.sub.b"}}
    assert find_cycle(graph) is None
    _write(pkg, {"top.py": "def h():\n    from pkg.sub.a import f\n"})  # top -> (package pkg.sub ->) a -> ... -> top
    assert find_cycle(import_graph(pkg, "pkg")) == ["pkg.sub", "pkg.sub.a", "pkg.sub.b", "pkg.sub.c", "pkg.top",
                                                    "pkg.sub"]


def test_two_module_cycle_is_named(tmp_path):
    _write(tmp_path / "two", {"__init__.py": "", "x.py": "from two.y import B\nA = 1\n",
                              "y.py": "def f():\n    from .x import A\n"})
    assert find_cycle(import_graph(tmp_path / "two", "two")) == ["two.x", "two.y", "two.x"]
    _write(tmp_path / "bad", {"__init__.py": "from ... import z\n"})
    with pytest.raises(ValueError, match="beyond the top-level package"):
        import_graph(tmp_path / "bad", "bad")


def read_layers(doc: Path) -> dict[str, int]:
    """{top-level name under the package: layer index, 0 lowest} from the doc's 'Layers, lowest first:' line."""
    lines = [ln for ln in doc.read_text(encoding="utf-8").splitlines() if ln.startswith("Layers, lowest first:")]
    assert len(lines) == 1, f"{doc} must state the layers on one line starting 'Layers, lowest first:'"
    groups = lines[0].split(":", 1)[1].split("<")
    return {name.strip(): i for i, group in enumerate(groups) for name in group.split(",")}


def layer_of(module: str, layers: dict[str, int]) -> int:
    """The layer of a dotted module name: that of its first component under the package ('__init__' for the
    package itself). A name the doc does not list is an error, so a new package must be placed."""
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    if key not in layers:
        raise KeyError(f"{module}: '{key}' has no layer in {ARCHITECTURE.name}; add it to the 'Layers' line")
    return layers[key]


def upward_imports(graph: dict[str, set[str]], layers: dict[str, int]) -> list[tuple[str, str]]:
    """(importer, imported) for every edge that points to a higher layer."""
    return sorted((a, b) for a, targets in graph.items() for b in targets if layer_of(b, layers) > layer_of(a, layers))


def test_imports_never_run_up_a_layer():
    """utils, cfg < nn, data < engine, analysis < models < compare, cli and the scripts (docs/architecture.md)."""
    layers = read_layers(ARCHITECTURE)
    assert [layers[k] for k in ("utils", "nn", "data", "engine", "models", "cli")] == [0, 1, 1, 2, 3, 4]
    graph = import_graph(REPO / "ultralytics", "ultralytics")
    assert upward_imports(graph, layers) == []
    # the moves that made it so: the facade over the engine's Model, and the helpers the runners need
    assert "ultralytics.engine.model" in graph["ultralytics.models.yolo.model"]
    assert not {m for m in graph["ultralytics.nn.backend"] if m.startswith("ultralytics.engine")}
    assert "ultralytics.utils.checks" in graph["ultralytics.nn.backend"]
    assert {"ultralytics.engine.validator", "ultralytics.engine.predictor"} <= (
        graph["ultralytics.models.yolo.detect.val"] | graph["ultralytics.models.yolo.detect.predict"])


def test_upward_import_inside_a_function_is_found(tmp_path):
    _write(tmp_path / "pkg", {"__init__.py": "", "low/__init__.py": "", "high/__init__.py": "",
                              "low/a.py": "def f():\n    from pkg.high.b import g\n",  # up, inside a function
                              "high/b.py": "from pkg.low import a\n"})  # down: allowed
    (tmp_path / "doc.md").write_text("Layers, lowest first: low < high, __init__\n", encoding="utf-8")
    layers = read_layers(tmp_path / "doc.md")
    graph = import_graph(tmp_path / "pkg", "pkg")
    assert upward_imports(graph, layers) == [("pkg.low.a", "pkg.high"), ("pkg.low.a", "pkg.high.b")]
    (tmp_path / "doc.md").write_text("Layers, lowest first: high < low, __init__\n", encoding="utf-8")
    assert upward_imports(graph, read_layers(tmp_path / "doc.md")) == [("pkg.high.b", "pkg.low"),
                                                                         ("pkg.high.b", "pkg.low.a")]
