"""Hand-assembled pickles and torch-style .pt archives, for hostile-checkpoint tests.

Writing the opcodes by hand controls which global the unpickler meets first, so a test can show that
exactly that global is refused, before any call. `pt_archive` packs a data.pkl (and storage records)
into the zip layout torch.load reads.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

PROTO = b"\x80\x02"
MARK, TUPLE, REDUCE, STOP, BUILD, PERSID = b"(", b"t", b"R", b".", b"b", b"Q"
EMPTY_DICT, EMPTY_LIST, SETITEM, SETITEMS, APPENDS = b"}", b"]", b"s", b"u", b"e"
NEWFALSE, POP = b"\x89", b"0"


def glob(module: str, name: str) -> bytes:
    """GLOBAL opcode: the unpickler calls find_class(module, name)."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def text(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def raw(b: bytes) -> bytes:
    """BINBYTES."""
    return b"B" + struct.pack("<I", len(b)) + b


def num(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def tup(*items: bytes) -> bytes:
    return MARK + b"".join(items) + TUPLE


def lst(*items: bytes) -> bytes:
    return EMPTY_LIST + MARK + b"".join(items) + APPENDS


def dct(**items: bytes) -> bytes:
    return EMPTY_DICT + MARK + b"".join(text(k) + v for k, v in items.items()) + SETITEMS


def call(fn: bytes, *args: bytes) -> bytes:
    """fn(*args) with REDUCE."""
    return fn + tup(*args) + REDUCE


def memo_put(i: int) -> bytes:
    return b"q" + bytes([i])


def memo_get(i: int) -> bytes:
    return b"h" + bytes([i])


def pickle_of(obj_ops: bytes) -> bytes:
    """A whole pickle: {'model': <obj_ops>}."""
    return PROTO + EMPTY_DICT + text("model") + obj_ops + SETITEM + STOP


def pt_archive(path: str | Path, pkl: bytes, records: dict[str, bytes] | None = None) -> Path:
    """Write `pkl` as the data.pkl of a torch zip archive (with storages 'data/<key>')."""
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        for k, v in (records or {}).items():
            z.writestr(f"archive/data/{k}", v)
        z.writestr("archive/version", "3\n")
    return path


def storage_tensor(size: tuple, stride: tuple, offset: int = 0, numel: int = 4, key: str = "0") -> bytes:
    """torch._utils._rebuild_tensor_v2 over float storage `key` (persistent id as torch.save writes it)."""
    pid = tup(text("storage"), glob("torch", "FloatStorage"), text(key), text("cpu"), num(numel)) + PERSID
    return call(glob("torch._utils", "_rebuild_tensor_v2"), pid, num(offset), tup(*map(num, size)),
                tup(*map(num, stride)), NEWFALSE, call(glob("collections", "OrderedDict")))
