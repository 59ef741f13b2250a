"""Compare training runs, or train an ablation and compare it.

    python compare.py runs/train/*                          every run in runs/train (baseline: the first)
    python compare.py runs/train/exp runs/train/exp2 --baseline exp
    python compare.py --train yolov10n.yaml yolov10n-LSKA.yaml yolov10n-PSALSKA.yaml --seeds 0 1 2 \
        data=shapes.yaml epochs=30 imgsz=320
    python compare.py --attention LSKA SE CBAM ECA CoordAtt SimAM EMA --after 16,19,22 --seeds 0 1 2 \
        data=shapes.yaml epochs=30 imgsz=320        attention modules at the same rows, with a cost table

Prints a table of the runs and of the groups of seeds (mean ± std, Welch t-test against the baseline), and
writes runs/compare/compare.csv, compare_groups.csv, compare.md, compare.png and report.html (one self-contained
page: tables, curves, cost and latency, AP per size, and the ERF with --erf runs/erf/exp/erf.csv). See
docs/06-comparing-runs.md and docs/08-is-my-module-helping.md.
"""

import sys

from ultralytics.compare import main

if __name__ == "__main__":
    sys.exit(main())
