"""Concurrency: runs started at once get their own directories; the label cache is never read half-written,
and a cache that is truncated, corrupt, stale, foreign or planted is rebuilt (running nothing).
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

from .helpers import REPO, TINY, TINY_MODEL, Child, child_env, read_rows


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
    dirs = {s: Path(json.loads(Path(k.spec["done"]).read_text())["save_dir"]) for s, k in zip((0, 1), kids)}
    assert sorted(p.name for p in project.iterdir()) == ["exp", "exp2"] and dirs[0] != dirs[1]
    for seed, run in dirs.items():  # each directory holds the files of the run that claimed it, complete
        assert yaml.safe_load((run / "args.yaml").read_text())["seed"] == seed
        assert read_checkpoint(run / "weights" / "last.pt")["train_args"]["seed"] == seed
        assert [r["epoch"] for r in read_rows(run)] == ["1"]
    faults.record("concurrency", "two trainings, same project/name")


def test_many_processes_claim_distinct_dirs(tmp_path, faults):
    code = ("import sys, time, pathlib\nfrom ultralytics.utils.files import increment_path\n"
            "pathlib.Path(sys.argv[2]).write_text('ready')\n"
            "while not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.001)\n"
            "print(increment_path(pathlib.Path(sys.argv[3]) / 'exp'))")
    barrier = tmp_path / "go"
    procs = [_py(code, str(barrier), str(tmp_path / f"r{i}"), str(tmp_path / "runs")) for i in range(8)]
    _release(barrier, procs, [tmp_path / f"r{i}" for i in range(8)])
    outs = [p.communicate(timeout=60)[0].strip().splitlines()[-1] for p in procs]
    assert sorted(Path(o).name for o in outs) == sorted(["exp"] + [f"exp{i}" for i in range(2, 9)])
    faults.record("concurrency", "8 processes claim run dirs at once")


# --- label cache --------------------------------------------------------------------------------------------
def _records(n: int = 50) -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"im_file": f"/data/im{i}.jpg", "shape": (48 + i, 64), "cls": rng.integers(0, 6, i % 4).astype(np.float32),
             "bboxes": rng.random((i % 4, 4)).astype(np.float32)} for i in range(n)]


def test_cache_writers_and_readers_never_see_a_half_written_file(tmp_path, faults):
    """Two processes rewrite the cache 150 times each while two others read it: every read is complete."""
    path = tmp_path / "train.cache"
    save_cache(path, "k", _records(), {"n": 50})
    writer = ("import sys, pathlib, time\nsys.path.insert(0, sys.argv[3])\n"
              "from faults.test_fault_concurrency import _records\nfrom ultralytics.data.cache import save_cache\n"
              "r = _records()\npathlib.Path(sys.argv[2]).write_text('ready')\n"
              "while not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.001)\n"
              "for i in range(150): assert save_cache(pathlib.Path(sys.argv[4]), 'k', r, {'n': 50})\nprint('ok')")
    reader = ("import sys, pathlib, time\nfrom ultralytics.data.cache import load_cache\n"
              "pathlib.Path(sys.argv[2]).write_text('ready')\n"
              "while not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.001)\n"
              "bad = n = 0\nt = time.time()\n"
              "while time.time() - t < 2.0:\n"
              "    hit = load_cache(pathlib.Path(sys.argv[4]), 'k'); n += 1\n"
              "    if hit is None or len(hit[0]) != 50 or hit[1] != {'n': 50}: bad += 1\n"
              "print(n, bad)")
    barrier, tests_dir = tmp_path / "go", str(REPO / "tests")
    procs = [_py(writer if i < 2 else reader, str(barrier), str(tmp_path / f"r{i}"), tests_dir, str(path))
             for i in range(4)]
    _release(barrier, procs, [tmp_path / f"r{i}" for i in range(4)])
    outs = [p.communicate(timeout=120)[0].strip().splitlines()[-1] for p in procs]
    assert outs[:2] == ["ok", "ok"], outs
    reads = [tuple(map(int, o.split())) for o in outs[2:]]
    assert all(n > 10 and bad == 0 for n, bad in reads), reads
    assert not list(tmp_path.glob("train.cache.*.tmp"))  # no temp file left behind
    faults.record("concurrency", f"cache rewritten 300 times under {sum(n for n, _ in reads)} reads")


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
    for name, data in bad.items():
        cache.write_bytes(data)
        ds = YOLODataset(d["train"], imgsz=64, augment=False, data=d)
        assert ds.stats == truth, name
        key = files_hash(ds.im_files + ds.label_files, extra=f"nc={d['nc']}")
        assert load_cache(cache, key) is not None, f"{name}: the cache was not rebuilt"
        assert not marker.exists()
        faults.record("concurrency", f"label cache: {name}")


def test_concurrent_cache_builders_agree(tmp_path, faults):
    """Three processes scan the same new dataset at once: each gets the right labels, the cache ends valid."""
    d, cache = _dataset(tmp_path)
    code = ("import sys, json, pathlib, time\nfrom ultralytics.data.dataset import YOLODataset\n"
            "from ultralytics.data.utils import check_det_dataset\n"
            "d = check_det_dataset(sys.argv[3])\npathlib.Path(sys.argv[2]).write_text('ready')\n"
            "while not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.001)\n"
            "ds = YOLODataset(d['train'], imgsz=64, augment=False, data=d)\n"
            "print(json.dumps(ds.stats, sort_keys=True))")
    assert not cache.exists()
    barrier = tmp_path / "go"
    procs = [_py(code, str(barrier), str(tmp_path / f"r{i}"), d["yaml_file"]) for i in range(3)]
    _release(barrier, procs, [tmp_path / f"r{i}" for i in range(3)])
    outs = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    from ultralytics.data.dataset import YOLODataset

    ds = YOLODataset(d["train"], imgsz=64, augment=False, data=d)
    assert all(o == ds.stats for o in outs) and ds.stats["images_used"] == 8
    assert load_cache(cache, files_hash(ds.im_files + ds.label_files, extra=f"nc={d['nc']}")) is not None
    assert not list(cache.parent.glob("train.cache.*.tmp"))
    faults.record("concurrency", "3 processes build one label cache at once")


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
    assert len(ds) == 8 and not cache.exists()
    assert any("label cache not written" in m and os.strerror(code) in m for m in log_messages)
    faults.record("disk", f"label cache dir {errno_name}")
