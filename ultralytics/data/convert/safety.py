"""What the converter may delete, read and link: the output manifest, the temporary folder, the input roots.

Output: every dataset the tool writes carries `.dataset-manifest.json` (tool, version, source, settings,
the top-level entries and every file written). `exist_ok=True` replaces `out` only when that manifest is there and `out`
holds nothing else; never a folder that holds the source (or lies inside it). Everything is written into
`.<out>.dataset-tmp-<pid>` beside `out` (it holds a marker naming `out` and the pid) and renamed into place;
a later run removes such a folder of the same `out` whose process is gone, and no other folder.
Input: an image is read only when its real path (symlinks followed) lies inside a root (the source folder,
the folder of a source file, `images=`), when it is a regular file, and when it is at most `max_image_mb`;
it is linked or copied from that real path, so the output holds no symlink. (Annotation files that link out
of the source folder are refused by the readers and the survey: common.outside.)
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

from ultralytics.data.image_io import ImageReadError
from ultralytics.utils import LOGGER, UserError
from ultralytics.version import __version__

MANIFEST = ".dataset-manifest.json"
TOOL = "ultralytics dataset.py"
TMP_TAG = ".dataset-tmp-"
MARKER = ".dataset-tmp"


def image_mb(max_image_mb=None) -> float:
    """The max_image_mb setting as a number (None: its default in default.yaml); UserError when it is not > 0."""
    from ultralytics.cfg import load_default_cfg

    mb = load_default_cfg()["max_image_mb"] if max_image_mb is None else max_image_mb
    try:
        mb = float(mb)
    except (TypeError, ValueError):
        mb = -1.0
    if not 0 < mb < float("inf"):
        raise UserError(f"max_image_mb={max_image_mb!r}: give the largest image file to read, in MB (a number > 0)")
    return mb


def roots_of(source, images=None) -> list[Path]:
    """Real paths of the folders images may come from: each source folder (a file's folder) and `images=`."""
    paths = [Path(p) for p in (source if isinstance(source, (list, tuple)) else [source])]
    roots = [Path(os.path.realpath(p if p.is_dir() else p.parent)) for p in paths]
    if images:
        roots.append(Path(os.path.realpath(images)))
    return list(dict.fromkeys(roots))


def _inside(p: Path, root: Path) -> bool:
    """True when p is root or lies below it (both real paths)."""
    return p == root or root in p.parents


def confine(path: Path, roots: list[Path], max_bytes: int) -> Path:
    """Real path of an image that may be read; ImageReadError (outside_source, not_regular_file, missing,
    too_large) otherwise. Nothing is opened: only the path is resolved and stat'ed."""
    real = Path(os.path.realpath(path))
    if roots and not any(_inside(real, r) for r in roots):
        raise ImageReadError(path, "outside_source", f"resolves to {real}, outside {', '.join(map(str, roots))}")
    try:
        st = os.stat(real)
    except FileNotFoundError:
        detail = f"symlink to missing {real}" if os.path.islink(path) else "no such file"
        raise ImageReadError(path, "missing", detail) from None
    except OSError as e:
        raise ImageReadError(path, "unreadable", e.strerror or str(e)) from None
    if not stat.S_ISREG(st.st_mode):
        kind = "directory" if stat.S_ISDIR(st.st_mode) else "FIFO" if stat.S_ISFIFO(st.st_mode) else "device or socket"
        raise ImageReadError(path, "not_regular_file", f"{kind}; not opened")
    if st.st_size > max_bytes:
        raise ImageReadError(path, "too_large", f"{st.st_size / 2**20:.3g} MB > max_image_mb={max_bytes / 2**20:.3g}")
    return real


def read_manifest(folder: Path) -> dict | None:
    """The manifest of a folder this tool wrote, or None (absent, unreadable, or not this tool's)."""
    f = folder / MANIFEST
    try:
        if not f.is_file() or f.stat().st_size > 1 << 28:
            return None
        d = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return d if isinstance(d, dict) and d.get("tool") == TOOL else None


def check_out(out: Path, roots: list[Path], exist_ok: bool, searched: list[Path] = ()) -> None:
    """UserError (nothing deleted) unless `out` may be written: holding no root, not inside a folder the
    source search walks (`searched`), and absent, empty, or (with exist_ok) a dataset this tool wrote that
    holds nothing else."""
    real = Path(os.path.realpath(out))
    for r in roots:
        if _inside(r, real):
            raise UserError(f"out={out} contains the source folder {r}: replacing it would delete your data; "
                            f"choose an out= folder outside the source")
    for r in searched:
        if _inside(real, Path(os.path.realpath(r))):
            raise UserError(f"out={out} lies inside the source folder {r}: a second run would read its own "
                            f"output as source; choose an out= folder outside the source")
    if not os.path.lexists(out):
        return
    if not real.is_dir():
        raise UserError(f"out={out} exists and is not a folder; nothing was changed")
    entries = sorted(p.name for p in real.iterdir())
    if not entries:
        return
    if not exist_ok:
        raise UserError(f"out={out} exists; choose another folder or pass exist_ok=True to replace it")
    m = read_manifest(real)
    if m is None:
        raise UserError(f"out={out} was not written by dataset.py (no {MANIFEST}): exist_ok=True replaces only a "
                        f"dataset this tool wrote; nothing was deleted. Choose an empty or new out= folder")
    extra = sorted(set(_files(real)) - set(m.get("files", [])) - {MANIFEST})
    if extra:
        raise UserError(f"out={out} holds {extra[:5]} that dataset.py did not write: not replaced, nothing deleted; "
                        f"move them elsewhere, or choose another out= folder")


def _files(folder: Path) -> list[str]:
    """Every file and link under folder, as sorted relative POSIX paths (folders themselves left out)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_symlink() or not p.is_dir())


def _alive(pid: int) -> bool:
    """True when a process with this pid exists (or may exist: not ours to signal)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def clean_stale(out: Path) -> list[Path]:
    """Remove temporary folders of this `out` left by killed runs (name, marker or manifest, dead pid)."""
    gone = []
    prefix = f".{out.name}{TMP_TAG}"
    candidates = [q for q in out.parent.iterdir() if q.name.startswith(prefix)] if out.parent.is_dir() else []
    for p in sorted(candidates):
        pid = p.name[len(prefix):].split("-")[0]
        if not p.is_dir() or p.is_symlink() or not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            marker = json.loads((p / MARKER).read_text(encoding="utf-8")) if (p / MARKER).is_file() else None
        except (OSError, ValueError, RecursionError):
            marker = None
        ours = (isinstance(marker, dict) and marker.get("out") == str(out)) or read_manifest(p) is not None
        if ours:
            shutil.rmtree(p)
            LOGGER.info(f"removed {p}, left by an interrupted conversion (process {pid})")
            gone.append(p)
    return gone


def new_tmp(out: Path) -> Path:
    """A fresh temporary folder beside `out`, marked as this run's."""
    tmp = out.parent / f".{out.name}{TMP_TAG}{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    (tmp / MARKER).write_text(json.dumps({"out": str(out), "pid": os.getpid()}), encoding="utf-8")
    return tmp


def finish(tmp: Path, out: Path, source, settings: dict) -> None:
    """Write the manifest into tmp and rename tmp into place (an old dataset at `out` is removed last)."""
    m = {"tool": TOOL, "version": __version__, "source": [str(s) for s in source], "settings": settings,
         "written": sorted(p.name for p in tmp.iterdir() if p.name != MARKER),
         "files": [f for f in _files(tmp) if f != MARKER]}
    (tmp / MANIFEST).write_text(json.dumps(m, indent=1, default=str), encoding="utf-8")
    (tmp / MARKER).unlink()  # after the manifest: the folder always carries one of the two
    old = out.parent / f".{out.name}{TMP_TAG}{os.getpid()}-old"
    if os.path.lexists(out):
        os.replace(out, old)  # checked by check_out: absent, empty, or our own dataset
    os.replace(tmp, out)
    if old.exists():
        shutil.rmtree(old)
