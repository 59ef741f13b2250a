"""Comparing training runs honestly: tables, seed groups with mean ± std and a test, curves, the ablation.

    from ultralytics.compare import read_runs, build_comparison, write_reports
    runs, problems = read_runs(["runs/train/*"])
    comp = build_comparison(runs, baseline="exp")      # .run_rows, .group_rows, .warnings
    write_reports(comp, "runs/compare")                # compare.csv, compare_groups.csv, compare.md, compare.png

The command line is compare.py at the repository root, or `python -m ultralytics.compare`.
"""

from ultralytics.compare.cli import compare_and_report, main
from ultralytics.compare.core import Comparison, build_comparison
from ultralytics.compare.report import render_text, write_reports
from ultralytics.compare.runs import Run, read_run, read_runs

__all__ = ["Run", "read_run", "read_runs", "Comparison", "build_comparison", "render_text", "write_reports",
           "compare_and_report", "main"]
