"""The compare command line (compare.py and `python -m ultralytics.compare`).

    python compare.py runs/train/*                      compare every run (baseline: the first)
    python compare.py runs/train/exp runs/train/exp2 --baseline exp2 --out my_report
    python compare.py --train yolov10n.yaml yolov10n-LSKA.yaml --seeds 0 1 2 data=shapes.yaml epochs=30
    python compare.py --attention LSKA SE CBAM --after 16,19,22 --seeds 0 1 2 data=shapes.yaml epochs=30

Exit status: 0 when a comparison was made, 1 when nothing given was a usable run, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ultralytics.utils import LOGGER, UserError

DEFAULT_OUT = "runs/compare"
DEFAULT_BENCH = "runs/benchmark/*/benchmark.csv"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="compare.py",
        description="Compare training runs (tables, compare.csv/.md, compare.png), or train an ablation and compare "
                    "it (--train). Runs with the same model YAML and settings but different seeds are grouped: "
                    "mean ± std over seeds, and a Welch t-test of the difference from the baseline group.",
        epilog="key=value settings (data=..., epochs=..., imgsz=...) go to the trainer with --train.")
    p.add_argument("runs", nargs="*", metavar="RUN", help="run directories or globs, e.g. 'runs/train/*'")
    p.add_argument("--baseline", metavar="NAME", help="baseline run (name or path) or group (model name); "
                                                      "default: the first run")
    p.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                   help=f"where compare.csv, compare_groups.csv, compare.md, compare.png, report.html go "
                        f"(default {DEFAULT_OUT})")
    p.add_argument("--metric", default="mAP50-95", choices=["mAP50-95", "mAP50"],
                   help="best-epoch metric tested between groups (default mAP50-95)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of the test (default 0.05)")
    p.add_argument("--no-plot", action="store_true", help="do not draw compare.png")
    p.add_argument("--erf", metavar="CSV", help="an erf.csv of erf.py: its area ratios and erf.png go into report.html")
    p.add_argument("--bench", metavar="GLOB", default=DEFAULT_BENCH,
                   help=f"benchmark.csv files whose latency goes into report.html (default {DEFAULT_BENCH})")
    p.add_argument("--train", nargs="+", metavar="MODEL", help="model YAMLs to train with the same settings and seeds")
    p.add_argument("--seeds", nargs="+", type=int, default=None, metavar="SEED",
                   help="seeds for --train and --attention (default 0)")
    p.add_argument("--attention", nargs="+", metavar="MODULE",
                   help="attention modules to insert into --base at --after, train with the plain model and compare, "
                        "with a cost table (e.g. LSKA SE CBAM ECA CoordAtt SimAM EMA)")
    p.add_argument("--after", metavar="ROWS", help="--attention: rows of --base to insert after, e.g. 16,19,22 "
                                                   "(default: where the LSKA YAML of the base's scale puts LSKA)")
    p.add_argument("--base", default="yolov10n.yaml", help="--attention: the plain model (default yolov10n.yaml)")
    p.add_argument("--cost-imgsz", type=int, default=640, help="--attention: image size of the cost table (640)")
    p.add_argument("--timed-runs", type=int, default=None,
                   help="--attention: timed passes per model for the latency (default: cfg timed_runs)")
    return p


def split_settings(argv: list[str]) -> tuple[list[str], list[str]]:
    """(options and paths, key=value settings): a token with '=' that is not an --option is a setting."""
    opts, settings = [], []
    for tok in argv:
        (settings if "=" in tok and not tok.startswith("-") else opts).append(tok)
    return opts, settings


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status (UserErrors are printed, not raised)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return _main(argv)
    except UserError as e:
        LOGGER.error(f"compare: error: {e}")
        return 2


def _main(argv: list[str]) -> int:
    from ultralytics.cfg import parse_key_value_args

    opts, setting_tokens = split_settings(argv)
    args = build_parser().parse_args(opts)
    settings = parse_key_value_args(setting_tokens)
    if not 0 < args.alpha < 1:
        raise UserError(f"--alpha {args.alpha} must be between 0 and 1, e.g. 0.05")
    if args.attention:
        if args.runs or args.train:
            raise UserError("--attention trains and compares its own runs; drop the run paths and --train")
        from ultralytics.compare.attention import run_attention

        patterns, base = run_attention(args.attention, args.after, args.base, args.seeds or [0], settings, args.out,
                                       args.cost_imgsz, args.timed_runs)
        args.baseline = args.baseline or base
    elif args.train:
        if args.runs:
            raise UserError(f"--train trains and compares its own runs; drop the run paths {' '.join(args.runs)} "
                            "(or compare them without --train)")
        from ultralytics.compare.ablation import run_ablation

        patterns = [str(p) for p in run_ablation(args.train, args.seeds or [0], settings)]
    else:
        if settings:
            raise UserError(f"settings {' '.join(setting_tokens)} only go with --train; to compare runs give their "
                            "directories, e.g. python compare.py runs/train/*")
        if args.seeds:
            raise UserError("--seeds goes with --train or --attention")
        if args.after:
            raise UserError("--after goes with --attention")
        if not args.runs:
            raise UserError("give run directories or a glob to compare, e.g. python compare.py 'runs/train/*'")
        patterns = args.runs
    if args.erf and not Path(args.erf).is_file():
        raise UserError(f"--erf {args.erf}: file not found (erf.py writes runs/erf/expN/erf.csv)")
    return compare_and_report(patterns, args.baseline, args.out, args.metric, args.alpha, not args.no_plot,
                              erf=args.erf, bench=args.bench)


def compare_and_report(patterns: list[str], baseline: str | None = None, out: str | Path = DEFAULT_OUT,
                       metric: str = "mAP50-95", alpha: float = 0.05, plot: bool = True, erf: str | None = None,
                       bench: str = DEFAULT_BENCH) -> int:
    """Read, compare, print and write the reports (and report.html); 1 (and a message) when no usable run was found."""
    from ultralytics.compare.core import build_comparison
    from ultralytics.compare.report import render_text, write_reports
    from ultralytics.compare.runs import read_runs

    runs, problems = read_runs(patterns)
    for p in problems:
        LOGGER.warning(f"WARNING: {p}")
    if not any(r.epochs_done for r in runs):
        what = f"{len(runs)} run(s) without any finished epoch" if runs else "no run directory"
        LOGGER.error(f"compare: nothing to compare: {what} in {' '.join(patterns)}")
        return 1
    comp = build_comparison(runs, baseline, metric, alpha)
    LOGGER.info(render_text(comp))
    paths = write_reports(comp, out, plot=plot)
    from ultralytics.compare.html import write_html

    paths["html"] = write_html(comp, out, paths.get("png"), bench, erf)
    LOGGER.info("Written: " + ", ".join(str(p) for p in paths.values()))
    return 0
