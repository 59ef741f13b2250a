"""Fixtures of the fault suite: a small dataset, the child-process fault matrix, and the tally of the scenarios run.

Every test that injects a fault ends with `faults.record(kind, scenario, checks, generated=...)`:
`checks` maps the name of each check the test ran on the outcome to whether it passed, as computed by the
test (there is no default). `record` stores them and then asserts that every one passed, so a failing check
fails the test *and* shows in the terminal summary ("fault matrix").

How the summary counts:
- A *scenario* is one distinct fault condition, i.e. one path through the product that the fault reaches:
  SIGKILL between best.pt and last.pt is another scenario than SIGKILL mid-write of last.pt; a NaN loss
  another than NaN gradients; a setting given a list another than a setting given an out-of-range number.
  The same check repeated over the values of one parameter (the ~100 keys of default.yaml given a list,
  the 20 refused globals that all end in the same allow-list refusal, truncation points of one file, the
  seeds of one dataset generator) is ONE scenario. Each `record` call for a scenario is one *value* of it
  (unless it records generated examples); values are reported apart from scenarios. Where values reach
  different code (the five entry points that load a checkpoint, the six image decoders, each data-YAML or
  model-YAML mistake, each point of an epoch that is interrupted), they are separate scenarios.
- *Generated examples* are inputs made by a fuzzer or seeded generator (hypothesis examples, corrupted
  image files, bad rows/images of a generated dataset); they are counted apart, never as scenarios.
- "Nothing lost" is claimed for a scenario only from the loss checks it ran (LOSS_CHECKS: last.pt loads and
  holds the last finished epoch, resume completes, results.csv rows equal the clean run's, weights equal the
  clean run's, no temp file is left, skipped data is counted, every good image/row is used, ...) and only if
  all of them passed. A scenario that ran none (a refused checkpoint, a bad setting) is reported as
  "not applicable" with what it did check. Tests of tests/faults that failed are listed too: a test that
  fails before its `record` leaves its scenario out of the counts, so the list says which.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from .helpers import LOSS_CHECKS

_T0 = time.time()


@dataclass
class Scenario:
    values: int = 0  # record() calls: the parameter values / instances run
    generated: int = 0  # fuzz / seeded-generator examples
    checks: dict = field(default_factory=dict)  # check name -> [passed, failed] over the values
    notes: list = field(default_factory=list)  # figures the test measured (shown with -v)

    def failed(self) -> list[str]:
        return [n for n, (_, bad) in self.checks.items() if bad]

    def loss_checks(self) -> list[str]:
        return [n for n in self.checks if n in LOSS_CHECKS]


_SCENARIOS: dict[tuple[str, str], Scenario] = {}
_FAILED_TESTS: list[str] = []


class FaultLog:
    """The scenarios the suite ran, with the outcome of every check each one ran (see the module docstring)."""

    def record(self, kind: str, scenario: str, checks: dict[str, bool], *, generated: int = 0, note: str = "") -> None:
        """Count one value of `scenario` (or, with generated=n, n generated examples and no value) with its check
        outcomes, then assert that every check passed. `checks` (a helpers.Checks) is {check name: passed}, not
        empty."""
        assert checks, f"{kind}/{scenario}: recorded without having run any check"
        s = _SCENARIOS.setdefault((kind, scenario), Scenario())
        s.values += 0 if generated else 1
        s.generated += int(generated)
        if note:
            s.notes.append(note)
        for name, ok in checks.items():
            s.checks.setdefault(name, [0, 0])[0 if ok else 1] += 1
        failed = [n for n, ok in checks.items() if not ok]
        why = getattr(checks, "why", {})
        assert not failed, f"{kind}/{scenario}: failed check(s): " + "; ".join(f"{n}: {why.get(n, '')}" for n in failed)


@pytest.fixture(scope="session")
def faults() -> FaultLog:
    return FaultLog()


def pytest_runtest_logreport(report):
    if report.failed and "faults/" in report.nodeid.replace("\\", "/"):
        _FAILED_TESTS.append(f"{report.nodeid} ({report.when})")


def _lost_text(s: Scenario) -> str:
    loss = s.loss_checks()
    if not loss:
        return "not applicable (checked: " + ", ".join(s.checks) + ")"
    lost = [n for n in loss if s.checks[n][1]]
    return f"LOST ({', '.join(lost)} failed)" if lost else "nothing lost (" + ", ".join(loss) + ")"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the fault matrix: scenarios, values and generated examples by kind; nothing lost from the checks."""
    if not _SCENARIOS and not _FAILED_TESTS:
        return
    tr = terminalreporter
    tr.section("fault matrix")
    kinds = sorted({k for k, _ in _SCENARIOS})
    tr.write_line(f"{'kind':<12} {'scenarios':>9} {'values':>7} {'generated':>9}  "
                  "nothing lost (from the loss checks run)")
    for kind in kinds:
        scen = {name: s for (k, name), s in _SCENARIOS.items() if k == kind}
        checked = [n for n, s in scen.items() if s.loss_checks()]
        lost = [n for n in checked if any(scen[n].checks[c][1] for c in scen[n].loss_checks())]
        parts = [f"held in {len(checked) - len(lost)} of {len(checked)} checked"] if checked else []
        if len(checked) < len(scen):
            parts.append(f"not applicable in {len(scen) - len(checked)} (no loss check ran)")
        if lost:
            parts.append("LOST in: " + ", ".join(
                f"{n} ({', '.join(c for c in scen[n].loss_checks() if scen[n].checks[c][1])})" for n in lost))
        text = "; ".join(parts)
        other = [f"{n} ({', '.join(s.failed())})" for n, s in scen.items() if s.failed() and n not in lost]
        if other:
            text += f"; FAILED checks in: {', '.join(other)}"
        tr.write_line(f"{kind:<12} {len(scen):>9} {sum(s.values for s in scen.values()):>7} "
                      f"{sum(s.generated for s in scen.values()):>9}  {text}")
        if config.option.verbose > 0:
            for name, s in scen.items():
                gen = f", {s.generated} generated" if s.generated else ""
                tr.write_line(f"    {name} [{s.values} value(s){gen}]: {_lost_text(s)}")
                for note in s.notes:
                    tr.write_line(f"        measured: {note}")
    all_s = list(_SCENARIOS.values())
    checked = [s for s in all_s if s.loss_checks()]
    held = [s for s in checked if not any(s.checks[c][1] for c in s.loss_checks())]
    failing = [s for s in all_s if s.failed()]
    tr.write_line(f"total: {len(all_s)} scenarios ({sum(s.values for s in all_s)} values); "
                  f"{sum(s.generated for s in all_s)} generated examples; nothing lost in {len(held)} of the "
                  f"{len(checked)} scenarios that ran loss checks, {len(all_s) - len(checked)} not applicable; "
                  f"{len(failing)} with a failed check; {time.time() - _T0:.1f} s since the fault suite was loaded")
    if _FAILED_TESTS:
        tr.write_line(f"FAILED fault tests ({len(_FAILED_TESTS)}; a test that failed before its record() is not "
                      f"counted above): " + ", ".join(_FAILED_TESTS))
    if config.option.verbose <= 0:
        tr.write_line("(-v lists every scenario with the checks it ran)")


@pytest.fixture(scope="session")
def fault_data(make_shapes_yaml) -> str:
    """A data YAML over 12 train + 4 val images of the built-in shapes generator (6 classes), caches built."""
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    f = make_shapes_yaml("faulty", 12, 4, seed=3)
    d = check_det_dataset(str(f))
    for split in ("train", "val"):  # write the label caches now: the concurrent children only read them
        YOLODataset(d[split], imgsz=64, augment=False, data=d)
    return f


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
