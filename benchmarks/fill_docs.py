"""Write the figures of benchmarks/results/*.json into README.md and docs/*.md at their markers.

    python benchmarks/fill_docs.py            # rewrite cited numbers and tables from their JSON, list the rest

A number just before `<!--fig:NAME.KEY-->` is replaced by the JSON value, shown with the same decimals and
thousands separators as before; the lines between `<!--table:NAME.KEY-->` and `<!--/table-->` are replaced by
the table. A string figure (e.g. a wall time '10 min 54 s') is listed for a hand edit when the text differs.
tests/test_figures.py then checks the result. Files are rewritten in place through a temporary name.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__" and not __package__:
    sys.path.insert(0, str(ROOT))

from benchmarks._results import FIG_MARKER, SHOWN_NUMBER, TABLE_BLOCK, load_results  # noqa: E402

FIG = re.compile(SHOWN_NUMBER + r"([^0-9<]{0,12})" + FIG_MARKER.pattern)  # number, what lies between, name, key


def shown_like(old: str, value: float) -> str:
    """`value` formatted as `old` was: same decimals, thousands separators if `old` had them."""
    decimals = len(old.split(".", 1)[1]) if "." in old else 0
    return f"{value:,.{decimals}f}" if "," in old else f"{value:.{decimals}f}"


def fill(text: str, where: str, notes: list[str]) -> str:
    cache: dict[str, dict | None] = {}

    def figure(name: str, key: str):
        if name not in cache:
            try:
                cache[name] = load_results(name)["figures"]
            except FileNotFoundError:
                cache[name] = None
                notes.append(f"{where}: benchmarks/results/{name}.json is missing")
        return None if cache[name] is None else cache[name].get(key)

    def number(m: re.Match) -> str:
        v = figure(m.group(3), m.group(4))
        if isinstance(v, (int, float)):
            return shown_like(m.group(1), v) + m.group(2) + m.group(0)[len(m.group(1)) + len(m.group(2)):]
        return m.group(0)

    def table(m: re.Match) -> str:
        v = figure(m.group(2), m.group(3))
        return m.group(1) + str(v).strip() + m.group(5) if isinstance(v, str) else m.group(0)

    text = TABLE_BLOCK.sub(table, FIG.sub(number, text))
    for m in FIG_MARKER.finditer(text):
        v = figure(m.group(1), m.group(2))
        if isinstance(v, str) and not text[:m.start()].rstrip("* _`").endswith(v):
            line = text.count("\n", 0, m.start()) + 1
            notes.append(f"{where}:{line}: write {v!r} before <!--fig:{m.group(1)}.{m.group(2)}-->")
    return text


def main() -> None:
    notes: list[str] = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        old = path.read_text(encoding="utf-8")
        new = fill(old, path.name, notes)
        if new != old:
            tmp = path.with_suffix(".md.tmp")
            tmp.write_text(new, encoding="utf-8")
            os.replace(tmp, path)
            print(f"updated {path.relative_to(ROOT)}")
    print("\n".join(notes) or "every string figure already matches")


if __name__ == "__main__":
    main()
