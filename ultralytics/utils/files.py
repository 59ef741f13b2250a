"""File helpers: race-safe run directories, atomic writes (bytes, text, torch.save), sizes, writability."""

from __future__ import annotations

import contextlib
import errno as errno_mod
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

from ultralytics.utils import UserError

__all__ = ["FileWriteError", "increment_path", "atomic_write_bytes", "atomic_write_text", "atomic_torch_save",
           "file_size", "check_writable"]


class FileWriteError(UserError, OSError):
    """A file could not be written (read-only dir, disk full, ...): names the path; the old file is intact.

    It is both a UserError (ValueError) and an OSError, so either kind of `except` catches it.
    """

    def __init__(self, path: str | Path, cause: BaseException):
        code = getattr(cause, "errno", None)
        reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
        super().__init__(f"could not write '{path}': {reason}"
                         f"{f' [{errno_mod.errorcode.get(code, code)}]' if code else ''}; "
                         f"any previous version of the file is left unchanged")
        self.path, self.errno, self.strerror = Path(path), code, reason

    def __str__(self) -> str:
        """The full message (OSError would otherwise print only '[Errno n] reason')."""
        return str(self.args[0])


def increment_path(path: str | Path, exist_ok: bool = False, sep: str = "", mkdir: bool = True) -> Path:
    """Return `path`, or the first free `path{sep}2`, `path{sep}3`, ... ; with mkdir=True the directory is created.

    Race-safe for directories: with mkdir=True each candidate is claimed with os.mkdir, which fails for all
    but one process, so N processes started at once get N distinct directories (exp, exp2, ...).
    An existing *file* path is incremented on its stem (runs/a.txt -> runs/a2.txt); then only its parent is
    created (no reservation). With mkdir=False the first non-existing name is returned (not race-safe).
    """
    path = Path(path)
    is_file = path.is_file()
    stem, suffix = (path.with_suffix(""), path.suffix) if is_file else (path, "")
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    if exist_ok:
        if mkdir and not is_file:
            path.mkdir(parents=True, exist_ok=True)
        return path
    for n in range(1, 10000):
        candidate = path if n == 1 else Path(f"{stem}{sep}{n}{suffix}")
        if mkdir and not is_file:
            try:
                os.mkdir(candidate)  # atomic claim: exactly one process succeeds per name
                return candidate
            except FileExistsError:
                continue
        elif not candidate.exists():
            return candidate
    raise UserError(f"increment_path: no free name left for '{path}' (tried up to {stem}{sep}9999{suffix})")


def _default_file_mode() -> int:
    """0o666 masked by the process umask (read from /proc without changing it), else 0o644."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    return 0o644


def _fsync_dir(directory: Path) -> None:
    """Flush a directory entry to disk (best effort; not all platforms allow opening directories)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write through `write(f)` into a temp file beside `path`, fsync it, then os.replace it over `path`.

    On any failure the temp file is removed and `path` keeps its previous content; an OSError becomes
    a FileWriteError naming `path`.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o7777 if path.exists() else _default_file_mode()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
        return path
    except OSError as e:
        raise FileWriteError(path, e) from e
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(tmp)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Atomically replace `path` with `data` (temp file in the same dir, fsync, os.replace)."""
    return _atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Atomically replace `path` with `text`."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """torch.save `obj` atomically: a crash, full disk or read-only dir never leaves a half-written `path`."""
    import torch

    return _atomic_write(path, lambda f: torch.save(obj, f))


def file_size(path: str | Path) -> float:
    """Size in MB (2**20 bytes) of a file, or of all files under a directory; 0.0 when it does not exist."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size / (1 << 20)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / (1 << 20)
    return 0.0


def check_writable(directory: str | Path) -> Path:
    """Create `directory` if needed and prove it writable by creating a temp file; else FileWriteError naming it."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        raise FileWriteError(directory, e) from e
    return directory
