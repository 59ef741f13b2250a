"""Headless Chromium for the tests that check a page as a browser renders it: find the browser (a missing one
skips the test, but fails it under CI), dump the rendered DOM, and read its tables back as text.

The browser is run by benchmarks/report_screenshot.py (the same flags: fresh profile, network services off).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report_screenshot import find_browser, run_chromium  # noqa: E402

INSTALL = "apt-get update && apt-get install -y chromium"


def under_ci() -> bool:
    """True when the CI variable is set to something other than '', 0, false or no (CI services set CI=true)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_browser() -> str:
    """The browser's path; without one the calling test skips, or fails under CI (.ci/run installs it there)."""
    browser = find_browser()
    if browser is None:
        msg = f"Chromium is not installed ({INSTALL})"
        if under_ci():
            pytest.fail(f"{msg}; under CI a missing browser is a failure (.ci/run installs it)", pytrace=False)
        pytest.skip(msg)
    return browser


def dump_dom(page: str | Path, timeout: float = 120) -> str:
    """The DOM of a local HTML file after headless Chromium loaded and rendered it, serialised as HTML."""
    page = Path(page).resolve()
    r = run_chromium(["--dump-dom", page.as_uri()], timeout)
    if r.returncode != 0 or "<html" not in r.stdout:
        raise RuntimeError(f"Chromium dumped no DOM of {page} (exit {r.returncode}): {r.stderr[-2000:]}")
    return r.stdout


@dataclass
class Table:
    """One <table> of a page: the text of the <h2> before it, its header cells and its rows of cell texts."""

    section: str
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)

    def column(self, name: str) -> list[str]:
        """The cells of the column headed `name`, top to bottom."""
        i = self.headers.index(name)
        return [r[i] for r in self.rows]

    def row(self, first: str) -> dict[str, str]:
        """The row whose first cell is `first`, as {header: cell}."""
        rows = [r for r in self.rows if r[0] == first]
        assert len(rows) == 1, f"{len(rows)} rows start with {first!r} in the table of {self.section!r}"
        return dict(zip(self.headers, rows[0]))


class _Tables(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables: list[Table] = []
        self.section, self._h2, self._cell, self._row = "", None, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "h2":
            self._h2 = []
        elif tag == "table":
            self.tables.append(Table(self.section))
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "h2" and self._h2 is not None:
            self.section, self._h2 = "".join(self._h2).strip(), None
        elif tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            t = self.tables[-1]
            if t.headers:
                t.rows.append(self._row)
            else:
                t.headers = self._row
            self._row = None

    def handle_data(self, data):
        for buf in (self._h2, self._cell):
            if buf is not None:
                buf.append(data)


def tables(dom: str) -> list[Table]:
    """Every table of an HTML document, in order (the first row of each is its header; no nested tables)."""
    p = _Tables()
    p.feed(dom)
    return p.tables
