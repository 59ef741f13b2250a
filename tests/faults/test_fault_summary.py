"""The fault matrix summary (conftest.py) reports what the checks found: a failed loss check is LOST and fails
its test, a scenario without loss checks is 'not applicable', values and generated examples are counted apart."""

from __future__ import annotations

import shutil
import subprocess
import sys

from .helpers import HERE, REPO, child_env

FAKE = '''
from .helpers import NO_TEMP, ROWS_SAME, Checks


def test_lost(faults):
    c = Checks()
    c(NO_TEMP, False, "['.last.pt.x.tmp']")
    c(ROWS_SAME, True)
    faults.record("interrupt", "fake kill", c)


def test_refusal_fails(faults):
    c = Checks()
    c("UserError naming the key", False, "no UserError raised")
    faults.record("config", "fake refusal", c)


def test_values_and_examples(faults):
    for v in range(3):
        faults.record("config", "fake setting", {"UserError naming the key": v >= 0})
    faults.record("dataset", "fake fuzz", {ROWS_SAME: True}, generated=40)


def test_fails_before_record(faults):
    assert 1 == 2
'''


def test_summary_reports_the_checks(tmp_path):
    pkg = tmp_path / "faults"
    pkg.mkdir()
    for name in ("__init__.py", "conftest.py", "helpers.py"):
        shutil.copy(HERE / name, pkg / name)
    (pkg / "test_fake.py").write_text(FAKE)
    env = child_env()
    env["PYTHONPATH"] = str(REPO)
    r = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "faults/test_fake.py"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "3 failed, 1 passed" in out, out
    # record() fails the test of a failed check, naming it and its evidence
    assert "interrupt/fake kill: failed check(s): no temp file left: ['.last.pt.x.tmp']" in out, out
    lines = {ln.split()[0]: ln for ln in out.split("= fault matrix =")[1].splitlines()[1:] if ln.strip()}
    assert lines["interrupt"].split()[1:4] == ["1", "1", "0"]
    assert "held in 0 of 1 checked; LOST in: fake kill (no temp file left)" in lines["interrupt"], out
    assert lines["config"].split()[1:4] == ["2", "4", "0"]  # 2 scenarios, 4 values: 3 of one, 1 of the other
    assert "not applicable in 2 (no loss check ran); FAILED checks in: fake refusal" in lines["config"], out
    assert lines["dataset"].split()[1:4] == ["1", "0", "40"] and "held in 1 of 1 checked" in lines["dataset"]
    assert ("total: 4 scenarios (5 values); 40 generated examples; nothing lost in 1 of the 2 scenarios that ran "
            "loss checks, 2 not applicable; 2 with a failed check") in out, out
    # -v: one line per scenario with its values and generated examples
    assert "    fake kill [1 value(s)]: LOST (no temp file left failed)" in out, out
    assert "    fake setting [3 value(s)]: not applicable (checked: UserError naming the key)" in out, out
    assert "    fake refusal [1 value(s)]: not applicable (checked: UserError naming the key)" in out, out
    assert "    fake fuzz [0 value(s), 40 generated]: nothing lost (results.csv rows == the clean run's)" in out, out
    assert "FAILED fault tests (3;" in out and "test_fake.py::test_fails_before_record (call)" in out, out
