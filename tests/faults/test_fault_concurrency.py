"""Concurrency: runs started at once get their own directories; the label cache is never read half-written,
and a cache that is truncated, corrupt, stale, foreign or planted is rebuilt (running nothing).

"At once" is measured, not assumed: the processes report time.monotonic() intervals (one clock for the whole
machine) of their trainings, directory claims, cache writes (mkstemp to os.replace) and reads, and each test
asserts that they overlapped (reads started inside a half-written window, claims inside another's claim).
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from ultralytics.data.cache import CACHE_VERSION, files_hash, load_cache, save_cache
from ultralytics.utils.checkpoint import read_checkpoint

from .helpers import (GOOD_USED, LABELS_SAME, NO_TEMP, READS_COMPLETE, REPO, RUN_FILES, TINY, TINY_MODEL, Checks, Child,
                      child_env, overlaps, read_rows)


def _py(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=child_env(), cwd=REPO, text=True)


def _release(barrier: Path, procs: list, ready: list[Path] | None = None, timeout: float = 120) -> None:
    """Wait until each process is ready (its ready file), then let all go at once."""
    t = time.time()
    for r in ready or []:
        while not r.exists():
            assert time.time() - t < timeout, "a process never got ready"
            assert all(p.poll() is None for p in procs), "a process died before the start"
            time.sleep(0.01)
    barrier.write_text("go")


def test_two_trainings_at_once_get_distinct_run_dirs(fault_data, tmp_path, faults):
    barrier, project = tmp_path / "go", tmp_path / "runs"
    settings = {**TINY, "epochs": 1}
    kids = [Child(tmp_path, f"run{s}", {"data": fault_data, "project": str(project), "name": "exp",
                                        "settings": {**settings, "seed": s}, "threads": 1, "barrier": str(barrier),
                                        "model": str(TINY_MODEL)}) for s in (0, 1)]
    for k in kids:
        k.start()
    _release(barrier, [k.proc for k in kids], [Path(k.spec["ready"]) for k in kids])
    results = [k.wait() for k in kids]
    assert [rc for rc, _ in results] == [0, 0], [out[-2000:] for _, out in results]
    done = [json.loads(Path(k.spec["done"]).read_text()) for k in kids]
    dirs = {s: Path(d["save_dir"]) for s, d in zip((0, 1), done)}
    c = Checks()
    # the two trainings ran at the same time: their (monotonic, system-wide) intervals overlap by most of the shorter
    (a0, a1), (b0, b1) = [(d["t_start"], d["t_end"]) for d in done]
    shared = min(a1, b1) - max(a0, b0)
    c("the trainings overlapped in time", shared > 0.5 * min(a1 - a0, b1 - b0),
      f"intervals {a0:.2f}-{a1:.2f} s and {b0:.2f}-{b1:.2f} s share {shared:.2f} s")
    c("distinct run dirs", sorted(p.name for p in project.iterdir()) == ["exp", "exp2"] and dirs[0] != dirs[1], dirs)
    for seed, run in dirs.items():  # each directory holds the files of the run that claimed it, complete
        c(RUN_FILES, yaml.safe_load((run / "args.yaml").read_text())["seed"] == seed
          and read_checkpoint(run / "weights" / "last.pt")["train_args"]["seed"] == seed
          and [r["epoch"] for r in read_rows(run)] == ["1"], run)
    faults.record("concurrency", "two trainings, same project/name, at once", c,
                  note=f"trainings of {a1 - a0:.1f} s and {b1 - b0:.1f} s shared {shared:.1f} s")


CLAIMS = 25  # run dirs each of the 8 processes claims, one after the other


def test_many_processes_claim_distinct_dirs(tmp_path, faults):
    """8 processes claim 25 run dirs each at once: 200 distinct dirs, and many claims overlapped another's."""
    code = ("import sys, time, json, pathlib\nfrom ultralytics.utils.files import increment_path\n"
            "pathlib.Path(sys.argv[2]).write_text('ready')\n"
            "while not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.001)\n"
            "out = []\n"
            f"for _ in range({CLAIMS}):\n"
            "    t0 = time.monotonic(); d = increment_path(pathlib.Path(sys.argv[3]) / 'exp')\n"
            "    out.append((str(d), t0, time.monotonic()))\n"
            "print(json.dumps(out))")
    barrier = tmp_path / "go"
    procs = [_py(code, str(barrier), str(tmp_path / f"r{i}"), str(tmp_path / "runs")) for i in range(8)]
    _release(barrier, procs, [tmp_path / f"r{i}" for i in range(8)])
    claims = [json.loads(p.communicate(timeout=60)[0].strip().splitlines()[-1]) for p in procs]
    names = sorted(Path(d).name for proc in claims for d, _, _ in proc)
    c = Checks()
    c("distinct run dirs", names == sorted(["exp"] + [f"exp{i}" for i in range(2, 8 * CLAIMS + 1)]), names)
    # claims that began while another process was inside a claim of its own (the race os.mkdir settles)
    during = sum(overlaps([(a, b) for _, a, b in proc], [(a, b) for j, other in enumerate(claims) if j != i
                                                         for _, a, b in other]) for i, proc in enumerate(claims))
    c("claims overlapped other processes' claims", during >= 20, f"{during} of {8 * CLAIMS} claims overlapped")
    faults.record("concurrency", f"8 processes claim {CLAIMS} run dirs each at once", c,
                  note=f"{during} of {8 * CLAIMS} claims began while another process was inside a claim")


# --- label cache --------------------------------------------------------------------------------------------
def _records(n: int = 50) -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"im_file": f"/data/im{i}.jpg", "shape": (48 + i, 64), "cls": rng.integers(0, 6, i % 4).astype(np.float32),
             "bboxes": rng.random((i % 4, 4)).astype(np.float32)} for i in range(n)]


SLOW_WRITE = ("import os, time\n_fdopen = os.fdopen\n"
              "class Slow:\n"  # a slow disk: each cache file reaches the disk in 8 pieces, 2 ms apart
              "    def __init__(self, f): self.f = f\n"
              "    def __getattr__(self, name): return getattr(self.f, name)\n"
              "    def __enter__(self): return self\n"
              "    def __exit__(self, *a): return self.f.__exit__(*a)\n"
              "    def write(self, b):\n"
              "        k = len(b) // 8 + 1\n"
              "        for i in range(0, len(b), k): self.f.write(b[i:i + k]); self.f.flush(); time.sleep(0.002)\n"
              "        return len(b)\n"
              "os.fdopen = lambda fd, *a, **k: Slow(_fdopen(fd, *a, **k))\n")


def test_cache_writers_and_readers_never_see_a_half_written_file(tmp_path, faults):
    """Two processes rewrite the cache for 1.5 s (a slow disk: each write takes >= 16 ms) while two others read
    it: the read intervals are checked against the windows in which a new cache file was half written (from its
    mkstemp to its os.replace); many reads start inside one, and every read is complete."""
    path = tmp_path / "train.cache"
    save_cache(path, "k", _records(), {"n": 50})
    writer = ("import sys, pathlib, time, json, tempfile, os\nsys.path.insert(0, sys.argv[3])\n" + SLOW_WRITE
              + "from faults.test_fault_concurrency import _records\nfrom ultralytics.data.cache import save_cache\n"
              "win, t = [], {}\n_mkstemp, _replace = tempfile.mkstemp, os.replace\n"
              "def mkstemp(*a, **k): t['open'] = time.monotonic(); return _mkstemp(*a, **k)\n"
              "def replace(a, b): _replace(a, b); win.append((t['open'], time.monotonic()))\n"
              "tempfile.mkstemp, os.replace = mkstemp, replace\n"
              "r = _records()\npathlib.Path(sys.argv[2]).write_text('ready')\n"
              "while not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.001)\n"
              "t0 = time.monotonic()\n"
              "while time.monotonic() - t0 < 1.5: assert save_cache(pathlib.Path(sys.argv[4]), 'k', r, {'n': 50})\n"
              "print(json.dumps(win))")
    reader = ("import sys, pathlib, time, json\nfrom ultralytics.data.cache import load_cache\n"
              "pathlib.Path(sys.argv[2]).write_text('ready')\n"
              "while not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.001)\n"
              "reads, t = [], time.monotonic()\n"
              "while time.monotonic() - t < 1.5:\n"
              "    t0 = time.monotonic(); hit = load_cache(pathlib.Path(sys.argv[4]), 'k')\n"
              "    ok = hit is not None and len(hit[0]) == 50 and hit[1] == {'n': 50}\n"
              "    reads.append((t0, time.monotonic(), ok))\n"
              "print(json.dumps(reads))")
    barrier, tests_dir = tmp_path / "go", str(REPO / "tests")
    procs = [_py(writer if i < 2 else reader, str(barrier), str(tmp_path / f"r{i}"), tests_dir, str(path))
             for i in range(4)]
    _release(barrier, procs, [tmp_path / f"r{i}" for i in range(4)])
    outs = [p.communicate(timeout=120)[0].strip().splitlines() for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[-5:] for o in outs]
    writes = [tuple(w) for o in outs[:2] for w in json.loads(o[-1])]
    reads = [tuple(r) for o in outs[2:] for r in json.loads(o[-1])]
    during = overlaps([(a, b) for a, b, _ in reads], writes)
    c = Checks()
    c(READS_COMPLETE, all(ok for _, _, ok in reads), f"{sum(not ok for *_, ok in reads)} of {len(reads)} reads bad")
    c("writes happened", len(writes) >= 20, f"{len(writes)} writes")
    c("reads started while a write was half done", during >= 20 and during >= len(reads) // 5,
      f"{during} of {len(reads)} reads started inside one of the {len(writes)} write windows")
    c(NO_TEMP, not list(tmp_path.glob("train.cache.*.tmp")))
    faults.record("concurrency", "label cache rewritten while read", c,
                  note=f"{during} of {len(reads)} reads began while one of {len(writes)} new cache files was half "
                       f"written; {sum(not ok for *_, ok in reads)} incomplete")


def _dataset(tmp_path) -> tuple[dict, Path]:
    from ultralytics.data import ensure_builtin_dataset
    from ultralytics.data.builtin import CLASSES
    from ultralytics.data.utils import check_det_dataset

    ds = ensure_builtin_dataset(root=tmp_path, name="c", n_train=8, n_val=2, seed=5)
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"path": str(ds), "train": "images/train", "val": "images/val",
                                 "names": dict(enumerate(CLASSES))}))
    return check_det_dataset(str(f)), ds / "labels" / "train.cache"


def _npz(path: Path, header: dict, **arrays) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    return buf.getvalue()


def test_bad_cache_files_are_rebuilt(tmp_path, faults):
    from ultralytics.data.dataset import YOLODataset

    d, cache = _dataset(tmp_path)
    truth = YOLODataset(d["train"], imgsz=64, augment=False, data=d).stats
    good = cache.read_bytes()
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (__import__("os").system, (f"touch {marker}",))

    z = np.load(cache, allow_pickle=False)
    header = json.loads(z["header"].tobytes())
    arrays = {k: z[k] for k in ("counts", "shapes", "cls", "bboxes")}
    bad = {
        "truncated": good[: len(good) // 2],
        "zero bytes": b"",
        "random bytes": np.random.default_rng(0).bytes(3000),
        "a planted pickle": pickle.dumps(Evil()),
        "an object array (needs pickle)": _npz(cache, header, **{**arrays, "cls": np.array([Evil()], object)}),
        "another version": _npz(cache, {**header, "version": CACHE_VERSION + 1}, **arrays),
        "another file hash": _npz(cache, {**header, "hash": "0" * 64}, **arrays),
        "counts not matching": _npz(cache, header, **{**arrays, "counts": arrays["counts"] + 1}),
        "header not JSON": _npz(cache, {}, **arrays).replace(b'{}', b'{x', 1),
        "missing arrays": _npz(cache, header),
    }
    for name, data in bad.items():  # each fails another check of load_cache: one scenario each
        cache.write_bytes(data)
        ds = YOLODataset(d["train"], imgsz=64, augment=False, data=d)
        key = files_hash(ds.im_files + ds.label_files, extra=f"nc={d['nc']}")
        c = Checks()
        c(LABELS_SAME, ds.stats == truth, ds.stats)
        c("the cache rebuilt", load_cache(cache, key) is not None)
        c("nothing in it ran", not marker.exists())
        faults.record("cache", f"label cache: {name}", c)


def test_concurrent_cache_builders_agree(tmp_path, faults):
    """Three processes scan the same new dataset at once: each gets the right labels, the cache ends valid."""
    d, cache = _dataset(tmp_path)
    code = ("import sys, json, pathlib, time\nfrom ultralytics.data.dataset import YOLODataset\n"
            "from ultralytics.data.utils import check_det_dataset\n"
            "d = check_det_dataset(sys.argv[3])\npathlib.Path(sys.argv[2]).write_text('ready')\n"
            "while not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.001)\n"
            "t0 = time.monotonic(); ds = YOLODataset(d['train'], imgsz=64, augment=False, data=d)\n"
            "print(json.dumps({'stats': ds.stats, 't': [t0, time.monotonic()]}, sort_keys=True))")
    assert not cache.exists()
    barrier = tmp_path / "go"
    procs = [_py(code, str(barrier), str(tmp_path / f"r{i}"), d["yaml_file"]) for i in range(3)]
    _release(barrier, procs, [tmp_path / f"r{i}" for i in range(3)])
    outs = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    from ultralytics.data.dataset import YOLODataset

    ds = YOLODataset(d["train"], imgsz=64, augment=False, data=d)
    spans = [tuple(o["t"]) for o in outs]
    c = Checks()
    # every scan (a fresh scan of 8 images, then the cache write) overlapped at least one other process's scan
    c("each scan overlapped another", all(any(min(a1, b1) > max(a0, b0) for j, (b0, b1) in enumerate(spans) if j != i)
                                          for i, (a0, a1) in enumerate(spans)), spans)
    c(LABELS_SAME, all(o["stats"] == ds.stats for o in outs) and ds.stats["images_used"] == 8, outs)
    c("the cache ends valid", load_cache(cache, files_hash(ds.im_files + ds.label_files, extra=f"nc={d['nc']}"))
      is not None)
    c(NO_TEMP, not list(cache.parent.glob("train.cache.*.tmp")))
    common = min(b for _, b in spans) - max(a for a, _ in spans)
    faults.record("concurrency", "3 processes build one label cache at once", c,
                  note=f"scans of {', '.join(f'{b - a:.2f}' for a, b in spans)} s; "
                       f"all three at once for {common:.2f} s")


@pytest.mark.parametrize("errno_name", ["EROFS", "ENOSPC"])
def test_cache_in_read_only_or_full_dataset_dir_warns_and_goes_on(tmp_path, monkeypatch, errno_name, faults,
                                                                  log_messages):
    import errno
    import os

    from ultralytics.data import cache as cache_mod
    from ultralytics.data.dataset import YOLODataset

    d, cache = _dataset(tmp_path)
    code = getattr(errno, errno_name)

    def fail(*a, **k):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(cache_mod.tempfile, "mkstemp", fail)
    ds = YOLODataset(d["train"], imgsz=64, augment=False, data=d)
    c = Checks()
    c(GOOD_USED, len(ds) == 8, len(ds))
    c("no cache file", not cache.exists())
    c("a warning names the cause", any("label cache not written" in m and os.strerror(code) in m
                                        for m in log_messages), log_messages)
    # EROFS and ENOSPC are values of one scenario: any OSError from mkstemp takes the same path
    faults.record("disk", "label cache dir not writable", c)
