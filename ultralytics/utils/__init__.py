"""Shared small utilities: the package logger, root paths, coloured strings and a rank-0 guard."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # .../ultralytics
REPO_ROOT = ROOT.parent
DEFAULT_CFG_PATH = ROOT / "cfg" / "default.yaml"
RANK = int(os.environ.get("RANK", -1))
LOCAL_RANK = int(os.environ.get("LOCAL_RANK", -1))
NUM_THREADS = min(8, max(1, os.cpu_count() or 1))


class _StdoutHandler(logging.StreamHandler):
    """A stream handler that writes to whatever sys.stdout is now (so redirection and capture work)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _):
        pass


def _make_logger(name: str = "ultralytics") -> logging.Logger:
    """Return the package logger: plain messages on stdout, silenced on ranks other than 0."""
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = _StdoutHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO if RANK in (-1, 0) else logging.WARNING)
    return logger


LOGGER = _make_logger()

_COLOURS = {
    "black": "\033[30m", "red": "\033[31m", "green": "\033[32m", "yellow": "\033[33m",
    "blue": "\033[34m", "magenta": "\033[35m", "cyan": "\033[36m", "white": "\033[37m",
    "bold": "\033[1m", "underline": "\033[4m", "end": "\033[0m",
}


def colorstr(*parts: str) -> str:
    """Colour a string for the terminal: colorstr('blue', 'bold', 'text'); plain when not a TTY."""
    *styles, text = parts if len(parts) > 1 else ("blue", "bold", parts[0])
    if not sys.stdout.isatty() or os.environ.get("NO_COLOR"):
        return str(text)
    return "".join(_COLOURS[s] for s in styles) + f"{text}" + _COLOURS["end"]


class UserError(ValueError):
    """An error the user caused (bad YAML, bad path, bad setting): its message says what and where."""
