"""report.html: the whole ablation in one self-contained page (tables as HTML, plots embedded as base64 PNG).

Sections: the runs table, the seed groups with their test, the training curves of all runs overlaid
(compare.png), cost (parameters and GFLOPs per run; latency from benchmark.csv files when present), AP per
object size (best.pt's best_metrics.json, or results.csv columns metrics/mAP50-95(S|M|L); "n/a" otherwise), and the
effective receptive field (the area ratios of an erf.csv and the erf.png beside it) when one is given.
Nothing is fetched: no script, no stylesheet or image from elsewhere.
"""

from __future__ import annotations

import base64
import csv
import datetime
import html
import math
from pathlib import Path

from ultralytics.compare.core import Comparison
from ultralytics.compare.report import fmt_int, fmt_num, groups_table_cells, notes, runs_table_cells
from ultralytics.utils import LOGGER, UserError
from ultralytics.utils.files import atomic_write_text

SIZES = ("S", "M", "L")  # COCO areas: small < 32^2 <= medium < 96^2 <= large (pixels)
BENCH_COLUMNS = ("model", "format", "device", "batch", "imgsz", "half", "params", "gflops", "ms_median", "ms_std", "fps")
ERF_COLUMNS = ("model", "level", "threshold", "area_ratio")

CSS = """
body{font:14px/1.45 -apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1500px;color:#222;
padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
th,td{border:1px solid #d4d4d4;padding:3px 8px;white-space:nowrap}th{background:#f2f4f7;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}tr.base td{background:#fbf7e6}
img{max-width:100%;border:1px solid #e4e4e4}.muted{color:#777}ul{margin:4px 0 8px 18px;padding:0}
.na{color:#999}
"""


def _png_tag(path: Path, alt: str) -> str:
    """An <img> with the PNG embedded as a data URI."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def html_table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset(),
               row_class: list[str] | None = None) -> str:
    """A <table> of already formatted cells (escaped here); columns in `numeric` right-aligned."""
    out = ["<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr></thead><tbody>"]
    for k, r in enumerate(rows):
        cls = f' class="{row_class[k]}"' if row_class and row_class[k] else ""
        cells = "".join(f'<td class="n">{_cell(c)}</td>' if i in numeric else f"<td>{_cell(c)}</td>"
                        for i, c in enumerate(r))
        out.append(f"<tr{cls}>{cells}</tr>")
    return "\n".join(out) + "</tbody></table>"


def _cell(c: str) -> str:
    c = str(c)
    return '<span class="na">n/a</span>' if c == "n/a" else html.escape(c)


def read_csv_rows(path: Path, required: tuple[str, ...]) -> list[dict]:
    """Rows of a CSV as dicts; a UserError naming the file and the missing columns when it lacks `required`."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path}: column(s) {', '.join(missing)} missing; expected {', '.join(required)}")
        return list(reader)


def _f(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _best_metrics(run_dir: Path) -> dict:
    """The run's best_metrics.json as a dict ({} when absent or unreadable)."""
    import json

    try:
        return json.loads((Path(run_dir) / "best_metrics.json").read_text())
    except (OSError, ValueError):
        return {}


def size_ap_section(comp: Comparison) -> str:
    """Best-epoch mAP50-95 per object size of each run: from best_metrics.json (best.pt's final validation, written
    by the trainer), or from results.csv columns metrics/mAP50-95(S|M|L) where a run has them."""
    headers = ["run", "model", "best epoch", "mAP50-95 (all)", *(f"mAP50-95 ({s})" for s in SIZES)]
    rows, any_size = [], False
    for r, x in zip(comp.runs, comp.run_rows):
        i = r.best_index
        cells = []
        best = _best_metrics(r.path)
        for s in SIZES:
            col = f"metrics/mAP50-95({s})"
            v = float(r.rows[col][i]) if col in r.rows and i is not None else _f(best.get(col))
            v = math.nan if v < 0 else v  # -1: no object of that size in the val split
            any_size |= math.isfinite(v)
            cells.append(fmt_num(v) if math.isfinite(v) else "n/a")
        rows.append([x["run"], x["model"], fmt_int(x["best_epoch"]), fmt_num(x["best_mAP50-95"]), *cells])
    note = "" if any_size else ('<p class="muted">These runs have no per-size figures (no best_metrics.json, no '
                                "metrics/mAP50-95(S|M|L) columns): n/a.</p>")
    return html_table(headers, rows, numeric={2, 3, 4, 5, 6}) + note


def cost_section(comp: Comparison, bench_files: list[Path]) -> str:
    """Parameters / GFLOPs per group, and every benchmark.csv row (latency) found."""
    rows = [[x["group"], fmt_int(x["params"]), fmt_num(x["gflops"], 2), fmt_num(x["images_per_s_mean"], 1)]
            for x in comp.group_rows]
    out = [html_table(["group", "params", "GFLOPs (640)", "train img/s"], rows, numeric={1, 2, 3})]
    bench = []
    for f in bench_files:
        try:
            bench += [(f, r) for r in read_csv_rows(f, BENCH_COLUMNS)]
        except (OSError, UserError) as e:
            LOGGER.warning(f"WARNING: skipping benchmark file {f}: {e}")
    if not bench:
        out.append('<p class="muted">Latency: no runs/benchmark/*/benchmark.csv found (make one with '
                   "<code>python benchmark.py</code>): n/a.</p>")
        return "\n".join(out)
    brows = [[r["model"], r["format"], r["device"], r["batch"], r["imgsz"], r["half"], fmt_int(int(_f(r["params"])))
              if math.isfinite(_f(r["params"])) else "n/a", fmt_num(_f(r["gflops"]), 2),
              f"{fmt_num(_f(r['ms_median']), 2)} ± {fmt_num(_f(r['ms_std']), 2)}", fmt_num(_f(r["fps"]), 1),
              str(f.parent.name)] for f, r in bench]
    out.append("<p>Latency (from benchmark.csv; ms per batch, median ± std):</p>")
    out.append(html_table(["model", "format", "device", "batch", "imgsz", "half", "params", "GFLOPs", "ms", "FPS",
                           "benchmark"], brows, numeric={3, 4, 6, 7, 8, 9}))
    return "\n".join(out)


def erf_section(erf_csv: Path | None) -> str:
    """The area ratios of an erf.csv (one line per model and level, one column per threshold) and its erf.png."""
    if erf_csv is None:
        return ('<p class="muted">No erf.csv given (<code>python erf.py</code>, then '
                "<code>compare.py ... --erf runs/erf/exp/erf.csv</code>).</p>")
    erf_csv = Path(erf_csv)
    if not erf_csv.is_file():
        raise UserError(f"--erf {erf_csv}: file not found (erf.py writes runs/erf/expN/erf.csv)")
    rows = read_csv_rows(erf_csv, ERF_COLUMNS)
    thresholds = sorted({_f(r["threshold"]) for r in rows})
    table: dict[tuple[str, str], dict[float, float]] = {}
    for r in rows:
        table.setdefault((r["model"], r["level"]), {})[_f(r["threshold"])] = _f(r["area_ratio"])
    cells = [[m, lv, *(fmt_num(v.get(t, math.nan)) for t in thresholds)] for (m, lv), v in table.items()]
    out = [f"<p>Area ratios r(t) from {html.escape(str(erf_csv))}: the fraction of the input that holds a share t of "
           "the (log-scaled) contribution to the centre unit; larger = a larger effective receptive field.</p>",
           html_table(["model", "level", *(f"r({t:g})" for t in thresholds)], cells,
                      numeric=set(range(2, 2 + len(thresholds))))]
    png = erf_csv.with_name("erf.png")
    out.append(_png_tag(png, "effective receptive fields") if png.is_file() else
               f'<p class="muted">{html.escape(str(png))} not found: maps n/a.</p>')
    return "\n".join(out)


def render_html(comp: Comparison, curves_png: Path | None = None, bench_files: list[Path] = (),
                erf_csv: Path | None = None) -> str:
    """The whole page as a string."""
    rh, rr = runs_table_cells(comp)
    gh, gr = groups_table_cells(comp)
    base_rows = ["base" if r is comp.baseline else "" for r in comp.runs]
    base_groups = ["base" if g is comp.baseline_group else "" for g in comp.groups]
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Ablation report: {len(comp.runs)} runs</title><style>{CSS}</style></head><body>",
        f"<h1>Ablation report: {len(comp.runs)} runs, {len(comp.groups)} groups</h1>",
        f'<p class="muted">Written {when} by compare.py. Baseline: {html.escape(comp.baseline.name)} '
        f"(group {html.escape(comp.baseline_group.label)}); tested metric: best-epoch {html.escape(comp.metric)}.</p>",
        "<h2>Runs</h2>", html_table(rh, rr, numeric=set(range(2, 14)), row_class=base_rows),
        f"<h2>Groups of seeds ({html.escape(comp.metric)} tested, Welch t-test, alpha {comp.alpha:g})</h2>",
        html_table(gh, gr, numeric={1, 2, 3, 4, 5, 6, 7}, row_class=base_groups),
        "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes(comp)) + "</ul>",
        "<h2>Training curves (all runs overlaid)</h2>",
        _png_tag(curves_png, "training curves") if curves_png and Path(curves_png).is_file()
        else '<p class="muted">curves n/a (--no-plot)</p>',
        "<h2>Cost: parameters, GFLOPs, latency</h2>", cost_section(comp, list(bench_files)),
        "<h2>AP per object size (best epoch)</h2>", size_ap_section(comp),
        "<h2>Effective receptive field</h2>", erf_section(erf_csv),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_html(comp: Comparison, out_dir: str | Path, curves_png: Path | None = None,
               bench_glob: str = "runs/benchmark/*/benchmark.csv", erf_csv: str | Path | None = None) -> Path:
    """Write out_dir/report.html; returns its path. bench_glob: where benchmark.csv files are looked for."""
    import glob

    bench = sorted(Path(p) for p in glob.glob(bench_glob)) if bench_glob else []
    path = Path(out_dir) / "report.html"
    atomic_write_text(path, render_html(comp, curves_png, bench, Path(erf_csv) if erf_csv else None))
    return path
