"""Fixtures of the fault suite: a small dataset, the child-process fault matrix, and a tally of the cases run.

Every test that injects a fault records it with `faults.record(kind, case, nothing_lost)`; the terminal
summary prints the matrix (cases by kind), whether each ended with nothing lost, and the suite's time.
"""

from __future__ import annotations

import time
from collections import defaultdict

import pytest
import yaml

_TALLY: dict[str, list[tuple[str, int, bool]]] = defaultdict(list)
_T0 = time.time()


class FaultLog:
    """Collects (kind, case, count, nothing_lost) of the fault cases the suite runs (count: fuzz examples)."""

    def record(self, kind: str, case: str, n: int = 1, nothing_lost: bool = True) -> None:
        _TALLY[kind].append((case, int(n), bool(nothing_lost)))


@pytest.fixture(scope="session")
def faults() -> FaultLog:
    return FaultLog()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the fault matrix: cases by kind, and whether every one ended with nothing lost."""
    if not _TALLY:
        return
    tr = terminalreporter
    tr.section("fault matrix")
    total = sum(n for v in _TALLY.values() for _, n, _ in v)
    for kind in sorted(_TALLY):
        cases = _TALLY[kind]
        lost = [c for c, _, ok in cases if not ok]
        n = sum(k for _, k, _ in cases)
        tr.write_line(f"{kind:<14} {n:>4} cases  " + ("nothing lost" if not lost else f"LOST: {lost}"))
    tr.write_line(f"{'total':<14} {total:>4} cases; {time.time() - _T0:.1f} s since the fault suite was loaded")


@pytest.fixture(scope="session")
def fault_data(tmp_path_factory) -> str:
    """A data YAML over 12 train + 4 val images of the built-in shapes generator (6 classes), caches built."""
    from ultralytics.data import ensure_builtin_dataset
    from ultralytics.data.builtin import CLASSES
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    root = tmp_path_factory.mktemp("fault_datasets")
    ds = ensure_builtin_dataset(root=root, name="faulty", n_train=12, n_val=4, seed=3)
    f = root / "faulty.yaml"
    f.write_text(yaml.safe_dump({"path": str(ds), "train": "images/train", "val": "images/val",
                                 "names": dict(enumerate(CLASSES))}))
    d = check_det_dataset(str(f))
    for split in ("train", "val"):  # write the label caches now: the concurrent children only read them
        YOLODataset(d[split], imgsz=64, augment=False, data=d)
    return str(f)


@pytest.fixture(scope="session")
def child_matrix(fault_data, tmp_path_factory):
    """(reference run dir, {case: Outcome}) of the child-process fault matrix (matrix.CASES)."""
    from .helpers import Zygote
    from .matrix import run_matrix

    zygote = Zygote()
    try:
        yield run_matrix(fault_data, tmp_path_factory.mktemp("matrix"), zygote)
    finally:
        zygote.close()
