"""report.html: one self-contained page with the tables, curves, latency, AP per size and ERF; a real browser renders it."""

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

from ultralytics.cfg import get_cfg
from ultralytics.compare import main
from ultralytics.engine.results_log import COLUMNS

SIZE_COLUMNS = ["metrics/mAP50-95(S)", "metrics/mAP50-95(M)", "metrics/mAP50-95(L)"]


def write_run(root: Path, name: str, maps: list[float], model: str, seed: int, sizes: bool) -> Path:
    """A finished run directory: args.yaml and results.csv (mAP50-95 per epoch; per-size columns if sizes)."""
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
            w.writerow([e, *losses, 0.5, 0.4, m + 0.1, m, *losses, 0.01, 0.01, 0.01, 10.0 * e]
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
    write_run(runs, "lska1", [0.10, 0.26, 0.42], "yolov10n-LSKA.yaml", 1, True)
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
    # AP per size: the LSKA runs have the columns (best epoch 3: 0.21, 0.42, 0.63 for lska1); base1 has
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


def test_chromium_renders_the_report(report, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from report_screenshot import find_browser, ink, screenshot

    if find_browser() is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    png = screenshot(report, tmp_path / "report.png", 1200, 2400)
    im = cv2.imread(str(png))
    assert im.shape[:2] == (2400, 1200)
    assert ink(png) > 0.03  # text, tables and plots, not a blank or error page
