"""The comparison as text: aligned Markdown tables (printed and in compare.md) and the CSV files.

Files written to the output directory (default runs/compare):
  compare.csv         one row per run (full-precision numbers, the columns of core._run_row)
  compare_groups.csv  one row per group of seeds (mean, std, difference to the baseline, CI, p-value)
  compare.md          both tables, the verdicts and the warnings, as Markdown
  compare.png         the curves of all runs (plot.py)
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from ultralytics.compare.core import Comparison
from ultralytics.compare.stats import NO_CONCLUSION
from ultralytics.utils.files import atomic_write_text

IN_PROGRESS_MARK = "*"


def fmt_num(x, digits: int = 4, sign: bool = False) -> str:
    """A float as text with `digits` decimals ('-' for None/NaN); sign=True adds '+' to positives."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    x = 0.0 if round(x, digits) == 0 else x  # no '-0.0000'
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def fmt_int(x, sign: bool = False) -> str:
    """An int with thousands separators ('-' for None)."""
    if x is None:
        return "-"
    return f"{x:+,d}" if sign else f"{x:,d}"


def fmt_time(seconds) -> str:
    """Seconds as '42.1s', '7m42s' or '1h02m' ('-' for NaN)."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def markdown_table(headers: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    """A pipe table padded so that it also reads well as plain text; columns in `right` right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if i in right else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def runs_table(comp: Comparison) -> str:
    """One line per run: cost, epochs, best and final metrics, time, throughput, Δ to the baseline run."""
    headers, rows = runs_table_cells(comp)
    return markdown_table(headers, rows, right=set(range(2, len(headers))))


def runs_table_cells(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    """(headers, rows of formatted cells) of the runs table (text, Markdown and HTML reports)."""
    m = comp.metric
    finals = [k for k in dict.fromkeys(k for x in comp.run_rows for k in x) if k.startswith("final_")]  # by key
    short = {"precision": "P", "recall": "R"}
    headers = ["run", "model", "params", "GFLOPs", "epochs", "best mAP50", "best mAP50-95",
               *(f"final {short.get(k[6:], k[6:])}" for k in finals), "time", "img/s", f"Δ {m}"]
    rows = []
    for r, x in zip(comp.runs, comp.run_rows):
        name = x["run"] + (" (baseline)" if r is comp.baseline else "")
        epochs = f"{x['epochs_done']}/{x['epochs']}" + ("" if r.done else IN_PROGRESS_MARK)
        delta = "" if r is comp.baseline else fmt_num(x[f"d_best_{m}"], sign=True)
        if x["not_comparable"] and delta:
            delta += " (not comparable)"
        rows.append([name, x["model"], fmt_int(x["params"]), fmt_num(x["gflops"], 1), epochs,
                     fmt_num(x["best_mAP50"]), fmt_num(x["best_mAP50-95"]),
                     *(fmt_num(x.get(k, float("nan"))) for k in finals), fmt_time(x["time_s"]),
                     fmt_num(x["images_per_s"], 1), delta])
    return headers, rows


def groups_table(comp: Comparison) -> str:
    """One line per group of seeds: mean ± std, the difference to the baseline group, its CI and p-value."""
    headers, rows = groups_table_cells(comp)
    return markdown_table(headers, rows, right={1, 2, 3, 4, 5, 6, 7})


def groups_table_cells(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    """(headers, rows of formatted cells) of the groups table."""
    m = comp.metric
    headers = ["group", "seeds", "params", "GFLOPs", "best mAP50", "best mAP50-95", f"Δ {m} [95% CI]", "p", "verdict"]
    rows = []
    for g, x in zip(comp.groups, comp.group_rows):
        label = x["group"] + (IN_PROGRESS_MARK if x["in_progress"] else "")
        seeds = f"{x['n']} ({x['seeds']})" if x["n"] else "0"
        if x["method"] == "baseline":
            delta, p = "baseline", ""
        else:
            ci = f" [{fmt_num(x['ci_low'], sign=True)}, {fmt_num(x['ci_high'], sign=True)}]" \
                if math.isfinite(x["ci_low"]) else ""
            delta, p = fmt_num(x["diff"], sign=True) + ci, fmt_num(x["p"], 3)
        rows.append([label, seeds, fmt_int(x["params"]), fmt_num(x["gflops"], 1),
                     _pm(x["best_mAP50_mean"], x["best_mAP50_std"]),
                     _pm(x["best_mAP50-95_mean"], x["best_mAP50-95_std"]), delta, p, x["verdict"]])
    return headers, rows


def _pm(mean: float, std: float) -> str:
    if not math.isfinite(mean):
        return "-"
    return fmt_num(mean) + (f" ± {fmt_num(std)}" if math.isfinite(std) else "")


def notes(comp: Comparison) -> list[str]:
    """The lines under the tables: what 'best' means, the in-progress mark, settings that differ, warnings."""
    out = [f"best = the epoch best.pt was saved at (highest fitness 0.1·mAP50 + 0.9·mAP50-95); Δ = minus the "
           f"baseline {comp.baseline.name} (group {comp.baseline_group.label}); GFLOPs at 640x640; "
           f"img/s = train images x epochs / training time (validation included)."]
    if any(not r.done for r in comp.runs):
        out.append(f"{IN_PROGRESS_MARK} in progress: the numbers are from the epochs finished so far.")
    for x in comp.group_rows:
        if x["settings_vs_baseline"]:
            out.append(f"{x['group']} differs from the baseline in: {x['settings_vs_baseline']}.")
    if any(x["verdict"] == NO_CONCLUSION for x in comp.group_rows):
        out.append("Train more seeds (e.g. --seeds 0 1 2) to tell a real difference from seed noise.")
    return out + [f"WARNING: {w}" for w in comp.warnings]


def render_text(comp: Comparison) -> str:
    """The whole report for the terminal (also the body of compare.md)."""
    parts = ["Runs", "", runs_table(comp), "", f"Groups of seeds ({comp.metric} tested, alpha {comp.alpha:g})", "",
             groups_table(comp), ""]
    parts += [f"- {line}" for line in notes(comp)]
    return "\n".join(parts) + "\n"


def render_markdown(comp: Comparison, png_name: str | None = "compare.png") -> str:
    """compare.md: a title, the two tables, the notes and the curves image."""
    body = render_text(comp).replace("Runs\n", "## Runs\n", 1).replace("Groups of seeds", "## Groups of seeds", 1)
    md = f"# Comparison of {len(comp.runs)} runs\n\n{body}"
    if png_name:
        md += f"\n![curves of all runs]({png_name})\n"
    return md


def rows_to_csv(rows: list[dict]) -> str:
    """CSV text of dict rows (columns: every row's keys, first seen first; floats at full precision, NaN/None
    and a key a row lacks empty)."""
    if not rows:
        return ""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = list(dict.fromkeys(k for r in rows for k in r))
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if v is None or (isinstance(v, float) and not math.isfinite(v)) else
                    (repr(float(v)) if isinstance(v, float) else v) for v in (r.get(k) for k in cols)])
    return buf.getvalue()


def write_reports(comp: Comparison, out_dir: str | Path, plot: bool = True) -> dict[str, Path]:
    """Write compare.csv, compare_groups.csv, compare.md and (plot=True) compare.png; return their paths."""
    out = Path(out_dir)
    paths = {"csv": out / "compare.csv", "groups_csv": out / "compare_groups.csv", "md": out / "compare.md"}
    if plot:
        from ultralytics.compare.plot import plot_curves

        paths["png"] = plot_curves(comp, out / "compare.png")
    atomic_write_text(paths["csv"], rows_to_csv(comp.run_rows))
    atomic_write_text(paths["groups_csv"], rows_to_csv(comp.group_rows))
    atomic_write_text(paths["md"], render_markdown(comp, "compare.png" if plot else None))
    return paths
