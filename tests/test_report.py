"""report.html: one self-contained page with the tables, curves, latency, AP per size and ERF; a real browser renders it.

The browser test reads the tables back from the DOM that headless Chromium rendered (tests/browser.py) and checks
every number in them against the files the report was made from (results.csv, best_metrics.json, benchmark.csv,
erf.csv), computed here from those files: best epoch by fitness, means, standard deviations, Welch's test.
"""

from __future__ import annotations

import base64
import csv
import json
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from scipy import stats

from browser import dump_dom, require_browser, tables

from ultralytics.cfg import get_cfg
from ultralytics.compare import main
from ultralytics.engine.results_log import COLUMNS

SIZE_COLUMNS = ["metrics/mAP50-95(S)", "metrics/mAP50-95(M)", "metrics/mAP50-95(L)"]


def write_run(root: Path, name: str, maps: list[float], model: str, seed: int, sizes: bool) -> Path:
    """A finished run directory: args.yaml and results.csv (mAP50-95 per epoch; per-size columns if sizes).
    Precision, recall, mAP50 and time differ by run and epoch, so a number from another cell shows."""
    d = root / name
    d.mkdir(parents=True)
    args = vars(get_cfg(overrides={"model": model, "data": "shapes.yaml", "seed": seed, "epochs": len(maps),
                                   "imgsz": 64, "batch": 4, "project": str(root), "name": name}))
    (d / "args.yaml").write_text(yaml.safe_dump(args, sort_keys=False))
    with open(d / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS + (SIZE_COLUMNS if sizes else []))
        for e, m in enumerate(maps, 1):
            losses = [3.0 / e, 2.0 / e, 1.5 / e]
            p, r = 0.6 - m / 2 - 0.001 * seed, 0.2 + m / 2 + 0.01 * seed
            w.writerow([e, *losses, p, r, m + 0.1 + 0.01 * e, m, *losses, 0.01, 0.01, 0.01, 10.0 * e + 7 * seed]
                       + ([m / 2, m, m * 1.5] if sizes else []))
    return d


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Four runs (two seeds of yolov10n, two of yolov10n-LSKA with per-size AP), a benchmark.csv, an erf.csv."""
    root = tmp_path_factory.mktemp("report")
    runs = root / "train"
    write_run(runs, "base0", [0.10, 0.20, 0.30], "yolov10n.yaml", 0, False)
    base1 = write_run(runs, "base1", [0.10, 0.21, 0.31], "yolov10n.yaml", 1, False)
    (base1 / "best_metrics.json").write_text(json.dumps(  # what the trainer writes after validating best.pt
        {"metrics/mAP50-95(B)": 0.31, "metrics/mAP50-95(S)": 0.1234, "metrics/mAP50-95(M)": 0.2345,
         "metrics/mAP50-95(L)": -1.0}))
    write_run(runs, "lska0", [0.10, 0.25, 0.40], "yolov10n-LSKA.yaml", 0, True)
    write_run(runs, "lska1", [0.10, 0.42, 0.38], "yolov10n-LSKA.yaml", 1, True)  # best epoch 2, not the last
    bench = root / "benchmark" / "exp"
    bench.mkdir(parents=True)
    (bench / "benchmark.csv").write_text(
        "model,format,device,batch,imgsz,half,params,gflops,ms_median,ms_std,fps\n"
        "yolov10n,pytorch,cpu,1,640,False,2775520,8.74,41.234,0.5,24.25\n"
        "yolov10n-LSKA,pytorch,cpu,1,640,False,2869152,8.91,47.5,0.75,21.05\n")
    erf_dir = root / "erf" / "exp"
    erf_dir.mkdir(parents=True)
    rows = [f"{m},{lv},{t},{r:.6f}" for m, k in (("yolov10n", 1.0), ("yolov10n-LSKA", 1.5)) for lv in ("P3", "P4")
            for t, r in ((0.2, 0.0123 * k), (0.3, 0.02), (0.5, 0.05), (0.99, 0.5))]
    (erf_dir / "erf.csv").write_text("model,level,threshold,area_ratio\n" + "\n".join(rows) + "\n")
    cv2.imwrite(str(erf_dir / "erf.png"), np.full((60, 90, 3), (0, 128, 255), np.uint8))
    out = root / "compare"
    code = main([str(runs / "*"), "--out", str(out), "--erf", str(erf_dir / "erf.csv"),
                 "--bench", str(root / "benchmark" / "*" / "benchmark.csv")])
    assert code == 0
    return out / "report.html"


def test_report_is_one_self_contained_file(report):
    text = report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", text)  # nothing fetched
    assert "<script" not in text and "<link" not in text
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 2  # the curves and the ERF maps
    decoded = [cv2.imdecode(np.frombuffer(base64.b64decode(b), np.uint8), cv2.IMREAD_COLOR) for b in images]
    assert all(im is not None for im in decoded)
    assert decoded[1].shape == (60, 90, 3)  # erf.png beside the csv, embedded as is


def test_report_sections_hold_the_numbers(report):
    text = report.read_text(encoding="utf-8")
    for name in ("base0", "base1", "lska0", "lska1"):
        assert f"<td>{name}" in text
    assert "Groups of seeds" in text and "Welch" in text and "2 (0 1)" in text
    assert "0.4100 ± 0.0141" in text  # best mAP50-95 of the LSKA group: mean of 0.40, 0.42 and their std
    assert "41.23 ± 0.50" in text and "47.50 ± 0.75" in text and "24.2" in text  # latency from benchmark.csv
    assert "2,775,520" in text  # parameters of yolov10n
    # AP per size: the LSKA runs have the columns (best epoch 2: 0.21, 0.42, 0.63 for lska1); base1 has
    # best_metrics.json (no large objects: -1 -> n/a); base0 has neither
    assert "0.2100" in text and "0.4200" in text and "0.6300" in text
    size_part = text.split("AP per object size")[1].split("<h2>")[0]
    assert "0.1234" in size_part and "0.2345" in size_part
    assert size_part.count('class="na">n/a') == 4  # base0 x 3 sizes, base1's large
    erf_part = text.split("Effective receptive field")[1]
    assert "0.0123" in erf_part and "0.0185" in erf_part and "r(0.99)" in erf_part


def test_missing_erf_csv_is_a_usage_error(tmp_path, report):
    code = main([str(report.parent.parent / "train" / "*"), "--out", str(tmp_path), "--erf", str(tmp_path / "x.csv")])
    assert code == 2


def read_run(d: Path) -> dict:
    """What the report must show of a run, from its files: best (highest fitness 0.1 mAP50 + 0.9 mAP50-95) and
    final rows of results.csv, and best_metrics.json."""
    with open(d / "results.csv", newline="") as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    best = max(rows, key=lambda r: 0.1 * r["metrics/mAP50(B)"] + 0.9 * r["metrics/mAP50-95(B)"])
    js = json.loads((d / "best_metrics.json").read_text()) if (d / "best_metrics.json").is_file() else {}
    seed = yaml.safe_load((d / "args.yaml").read_text())["seed"]
    return {"best": best, "final": rows[-1], "epochs": len(rows), "json": js, "seed": seed}


def f4(x: float, sign: bool = False) -> str:
    return f"{x:+.4f}" if sign else f"{x:.4f}"


def test_chromium_renders_the_tables_of_the_files(report):
    """Rendered by Chromium, every number in the tables equals what the input files give."""
    require_browser()
    rendered = tables(dump_dom(report))
    found = {t.section.split(" (")[0].split(":")[0]: t for t in reversed(rendered)}  # the first of each section
    runs_dir = report.parent.parent / "train"
    runs = {d.name: read_run(d) for d in sorted(runs_dir.iterdir())}
    base = runs["base0"]["best"]["metrics/mAP50-95(B)"]
    t = found["Runs"]
    assert [c.removesuffix(" (baseline)") for c in t.column("run")] == list(runs)
    for name, r in runs.items():
        b, fin = r["best"], r["final"]
        row = t.row(name + (" (baseline)" if name == "base0" else ""))
        assert row["epochs"] == f"{r['epochs']}/3"
        assert row["best mAP50"] == f4(b["metrics/mAP50(B)"]) and row["best mAP50-95"] == f4(b["metrics/mAP50-95(B)"])
        assert [row[f"final {k}"] for k in ("P", "R", "mAP50", "mAP50-95")] == [
            f4(fin[f"metrics/{k}(B)"]) for k in ("precision", "recall", "mAP50", "mAP50-95")]
        assert row["time"] == f"{fin['time']:.1f}s"
        assert row["Δ mAP50-95"] == ("" if name == "base0" else f4(b["metrics/mAP50-95(B)"] - base, sign=True))
    t = found["Groups of seeds"]
    best = {g: [runs[f"{g}{k}"]["best"] for k in (0, 1)] for g in ("base", "lska")}
    for g, label in (("base", "yolov10n"), ("lska", "yolov10n-LSKA")):
        row = t.row(label)
        assert row["seeds"] == "2 (0 1)"
        for col in ("mAP50", "mAP50-95"):
            v = np.array([r[f"metrics/{col}(B)"] for r in best[g]])
            assert row[f"best {col}"] == f"{f4(v.mean())} ± {f4(v.std(ddof=1))}"
    a, b = (np.array([r["metrics/mAP50-95(B)"] for r in best[g]]) for g in ("base", "lska"))
    va, vb = a.var(ddof=1) / 2, b.var(ddof=1) / 2
    df = (va + vb) ** 2 / (va**2 + vb**2)  # Welch-Satterthwaite with n - 1 = 1 per side
    h = stats.t.ppf(0.975, df) * (va + vb) ** 0.5
    d = b.mean() - a.mean()
    row = t.row("yolov10n-LSKA")
    assert row["Δ mAP50-95 [95% CI]"] == f"{f4(d, True)} [{f4(d - h, True)}, {f4(d + h, True)}]"
    assert row["p"] == f"{stats.ttest_ind(b, a, equal_var=False).pvalue:.3f}"
    assert t.row("yolov10n")["Δ mAP50-95 [95% CI]"] == "baseline"
    t = found["AP per object size"]
    for name, r in runs.items():
        row = t.row(name)
        for s in "SML":
            k = f"metrics/mAP50-95({s})"
            v = r["best"].get(k, r["json"].get(k, -1.0))
            assert row[f"mAP50-95 ({s})"] == (f4(v) if v >= 0 else "n/a"), (name, s)
        assert row["best epoch"] == str(int(r["best"]["epoch"])) and row["mAP50-95 (all)"] == f4(
            r["best"]["metrics/mAP50-95(B)"])
    assert t.row("lska1")["best epoch"] == "2"  # the best epoch, not the last
    bench = list(csv.DictReader(next(report.parent.parent.glob("benchmark/*/benchmark.csv")).read_text().splitlines()))
    t = next(x for x in rendered if "ms" in x.headers)
    assert len(t.rows) == len(bench)
    for b, row in zip(bench, t.rows):
        got = dict(zip(t.headers, row))
        assert got["params"] == f"{int(b['params']):,}" and got["GFLOPs"] == f"{float(b['gflops']):.2f}"
        assert got["ms"] == f"{float(b['ms_median']):.2f} ± {float(b['ms_std']):.2f}"
        assert got["FPS"] == f"{float(b['fps']):.1f}" and got["model"] == b["model"] and got["batch"] == b["batch"]
    erf = list(csv.DictReader(next(report.parent.parent.glob("erf/*/erf.csv")).read_text().splitlines()))
    t = found["Effective receptive field"]
    for e in erf:
        row = [r for r in t.rows if r[:2] == [e["model"], e["level"]]]
        assert len(row) == 1 and dict(zip(t.headers, row[0]))[f"r({float(e['threshold']):g})"] == f4(
            float(e["area_ratio"]))


def test_chromium_screenshot(report, tmp_path):
    """benchmarks/report_screenshot.py writes a PNG of the requested size."""
    require_browser()
    from benchmarks.report_screenshot import screenshot

    png = screenshot(report, tmp_path / "report.png", 600, 800)
    assert cv2.imread(str(png)).shape[:2] == (800, 600)
