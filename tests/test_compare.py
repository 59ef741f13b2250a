"""compare.py on hand-made run directories: table numbers, seed groups and tests, bad input, written files."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from scipy import stats as sps

from ultralytics.cfg import get_cfg
from ultralytics.compare import build_comparison, main, read_runs, render_text
from ultralytics.compare.ablation import RESUME, SKIP, START, plan
from ultralytics.compare.profile import Profiler
from ultralytics.compare.stats import (NO_CONCLUSION, bootstrap_ci, compare, single_vs_spread, spread, welch_ci,
                                       welch_test)
from ultralytics.engine.results_log import COLUMNS
from ultralytics.utils import UserError


# --- building fake runs ---------------------------------------------------------------------------------
def write_run(root: Path, name: str, maps: list[tuple[float, float]], data: str, model: str = "yolov10n.yaml",
              seed: int = 0, epochs: int | None = None, seconds: float = 10.0, weights: Path | None = None,
              **settings) -> Path:
    """A run directory as the trainer leaves it: args.yaml (all settings) and results.csv with the given
    (mAP50, mAP50-95) per epoch, `seconds` per epoch; weights/best.pt copied from `weights` if given."""
    d = root / name
    d.mkdir(parents=True)
    args = vars(get_cfg(overrides={"model": model, "data": data, "seed": seed, "epochs": epochs or len(maps),
                                   "imgsz": 64, "batch": 4, "project": str(root), "name": name, **settings}))
    (d / "args.yaml").write_text(yaml.safe_dump(args, sort_keys=False))
    if maps:
        with open(d / "results.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            for e, (m50, m) in enumerate(maps, 1):
                losses = [3.0 / e, 2.0 / e, 1.5 / e]
                w.writerow([e, *losses, 0.5, 0.4, m50, m, *(x * 1.1 for x in losses), 0.01, 0.01, 0.01, seconds * e])
    if weights is not None:
        (d / "weights").mkdir()
        (d / "weights" / "best.pt").write_bytes(weights.read_bytes())
    return d


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A real yolov10n checkpoint for 6 classes, and its parameter count and GFLOPs at 640."""
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.nn.weights import save_model

    model = DetectionModel("yolov10n.yaml", nc=6, verbose=False)
    path = save_model(model, tmp_path_factory.mktemp("ckpt") / "best.pt")
    _, params, _, gflops = model.info(verbose=False)
    return path, params, gflops


@pytest.fixture(scope="module")
def profiler():
    """One Profiler for the module: each architecture's GFLOPs are counted once."""
    return Profiler()


def test_runs_table_numbers(tmp_path, tiny_data, ckpt, profiler):
    path, params, gflops = ckpt
    write_run(tmp_path, "base", [(0.30, 0.10), (0.50, 0.25), (0.45, 0.20)], tiny_data, weights=path, seconds=10)
    write_run(tmp_path, "other", [(0.20, 0.10), (0.60, 0.30), (0.70, 0.29)], tiny_data, weights=path, seed=1,
              seconds=20)
    runs, problems = read_runs([str(tmp_path / "*")])
    assert problems == [] and [r.name for r in runs] == ["base", "other"]
    comp = build_comparison(runs, profiler=profiler)
    base, other = comp.run_rows
    assert base["params"] == params and base["gflops"] == pytest.approx(gflops)
    assert base["best_epoch"] == 2 and base["best_mAP50-95"] == pytest.approx(0.25)
    assert base["best_mAP50"] == pytest.approx(0.50) and base["final_mAP50-95"] == pytest.approx(0.20)
    assert base["final_precision"] == pytest.approx(0.5) and base["final_recall"] == pytest.approx(0.4)
    # best = highest fitness 0.1*mAP50 + 0.9*mAP50-95: epoch 3 (0.331) beats epoch 2 (0.330)
    assert other["best_epoch"] == 3 and other["best_mAP50-95"] == pytest.approx(0.29)
    assert base["time_s"] == pytest.approx(30) and other["time_s"] == pytest.approx(60)
    assert base["train_images"] == 16 and base["images_per_s"] == pytest.approx(16 * 3 / 30)
    assert other["images_per_s"] == pytest.approx(16 * 3 / 60)
    assert other["d_best_mAP50-95"] == pytest.approx(0.04) and other["d_params"] == 0
    text = render_text(comp)
    assert "base (baseline)" in text and f"{params:,d}" in text and f"{gflops:.1f}" in text
    assert "+0.0400" in text and "3/3" in text and "1.6" in text and "30.0s" in text


def test_seed_groups_mean_std_and_welch(tmp_path, tiny_data, profiler):
    a = [0.40, 0.42, 0.41]
    b = [0.45, 0.47, 0.44]
    c = [0.41, 0.43, 0.40]
    for s, (va, vb, vc) in enumerate(zip(a, b, c)):
        write_run(tmp_path, f"n-s{s}", [(0.6, va)], tiny_data, seed=s)
        write_run(tmp_path, f"lska-s{s}", [(0.6, vb)], tiny_data, model="yolov10n-LSKA.yaml", seed=s)
        write_run(tmp_path, f"n-lr-s{s}", [(0.6, vc)], tiny_data, seed=s, lr0=0.02)
    runs, _ = read_runs([str(tmp_path / "n-s*"), str(tmp_path / "lska-s*"), str(tmp_path / "n-lr-s*")])
    comp = build_comparison(runs, profiler=profiler)
    assert [g.label for g in comp.groups] == ["yolov10n", "yolov10n-LSKA", "yolov10n [lr0=0.02]"]
    base, lska, lr = comp.group_rows
    assert base["n"] == 3 and base["seeds"] == "0 1 2"
    assert base["best_mAP50-95_mean"] == pytest.approx(0.41) and base["best_mAP50-95_std"] == pytest.approx(0.01)
    assert lska["best_mAP50-95_mean"] == pytest.approx(np.mean(b))
    assert lska["best_mAP50-95_std"] == pytest.approx(np.std(b, ddof=1))
    assert lska["p"] == pytest.approx(sps.ttest_ind(b, a, equal_var=False).pvalue)
    assert lska["p"] < 0.05 and lska["verdict"].startswith("larger than the seed-to-seed spread")
    assert lr["p"] == pytest.approx(sps.ttest_ind(c, a, equal_var=False).pvalue) and lr["p"] > 0.5
    assert lr["verdict"].startswith("not larger than the seed-to-seed spread")
    assert lr["settings_vs_baseline"] == "lr0 0.01 vs 0.02"
    text = render_text(comp)
    assert "0.4100 ± 0.0100" in text and "3 (0 1 2)" in text and f"{lska['p']:.3f}" in text


def test_one_seed_per_side_says_no_conclusion(tmp_path, tiny_data, profiler):
    write_run(tmp_path, "a", [(0.5, 0.30)], tiny_data)
    write_run(tmp_path, "b", [(0.6, 0.33)], tiny_data, model="yolov10n-LSKA.yaml")
    runs, _ = read_runs([str(tmp_path / "a"), str(tmp_path / "b")])
    comp = build_comparison(runs, profiler=profiler)
    assert comp.group_rows[1]["verdict"] == NO_CONCLUSION == "no conclusion can be drawn: 1 seed per side"
    assert math.isnan(comp.group_rows[1]["p"]) and comp.group_rows[1]["diff"] == pytest.approx(0.03)
    assert NO_CONCLUSION in render_text(comp)


def test_in_progress_and_not_comparable_are_marked(tmp_path, tiny_data, profiler):
    write_run(tmp_path, "done", [(0.5, 0.3), (0.6, 0.35)], tiny_data)
    write_run(tmp_path, "half", [(0.4, 0.2), (0.5, 0.25)], tiny_data, epochs=5, seed=1)
    write_run(tmp_path, "fresh", [], tiny_data, epochs=5, seed=2)  # args.yaml only: no epoch finished yet
    write_run(tmp_path, "big", [(0.7, 0.5), (0.7, 0.5)], tiny_data, imgsz=128)
    runs, _ = read_runs([str(tmp_path / n) for n in ("done", "half", "fresh", "big")])
    comp = build_comparison(runs, profiler=profiler)
    rows = {r["run"]: r for r in comp.run_rows}
    assert rows["half"]["status"] == "in progress" and rows["fresh"]["status"] == "no results yet"
    assert rows["big"]["not_comparable"] == "imgsz 64 vs 128"
    text = render_text(comp)
    assert "2/5*" in text and "0/5*" in text and "* in progress" in text
    assert "WARNING: half is in progress (2/5 epochs)" in text
    assert "WARNING: big is not comparable with the baseline done: imgsz 64 vs 128" in text
    assert "+0.1500 (not comparable)" in text
    big = next(g for g in comp.group_rows if g["runs"] == "big")
    assert big["verdict"].startswith("NOT COMPARABLE (imgsz 64 vs 128)")
    # done, half and fresh differ only in seed and epochs: half/fresh are another group (epochs 5)
    g_half = next(g for g in comp.group_rows if "half" in g["runs"])
    assert g_half["n"] == 1 and g_half["in_progress"]  # 'fresh' has no results: not a sample


def test_early_stopped_duplicate_seed_and_bad_csv(tmp_path, tiny_data, profiler):
    # patience 2: best at epoch 2, then two epochs without improvement -> stopped at 4 of 10
    write_run(tmp_path, "stopped", [(0.5, 0.3), (0.6, 0.4), (0.5, 0.3), (0.5, 0.3)], tiny_data, epochs=10, patience=2)
    write_run(tmp_path, "again", [(0.5, 0.3), (0.6, 0.4), (0.5, 0.3), (0.5, 0.3)], tiny_data, epochs=10, patience=2)
    bad = write_run(tmp_path, "bad", [(0.5, 0.3)], tiny_data)
    (bad / "results.csv").write_text((bad / "results.csv").read_text().replace("0.3,", "oops,", 1))
    runs, problems = read_runs([str(tmp_path / "*")])
    assert [r.name for r in runs] == ["again", "stopped"]
    assert len(problems) == 1 and "results.csv, row 2, column 'metrics/mAP50-95(B)': 'oops' is not a number" \
        in problems[0] and problems[0].endswith("skipped")
    assert runs[1].status == "early-stopped" and runs[1].done
    comp = build_comparison(runs, profiler=profiler)
    assert len(comp.groups) == 1 and comp.group_rows[0]["n"] == 1
    assert "again, stopped have the same seed 0 and settings: repeats are not independent samples, so only " \
        "again enters the statistics" in comp.warnings


def test_cli_writes_files_and_exit_codes(tmp_path, tiny_data, capsys):
    runs_dir, out = tmp_path / "runs", tmp_path / "report"
    for s, v in enumerate([0.30, 0.32]):
        write_run(runs_dir, f"n-s{s}", [(0.5, v - 0.1), (0.6, v)], tiny_data, seed=s)
    (runs_dir / "notes").mkdir()
    assert main([str(runs_dir / "*"), "--out", str(out), "--baseline", "n-s1"]) == 0
    printed = capsys.readouterr().out
    assert "notes: not a training run (no args.yaml and no results.csv) - skipped" in printed
    assert "n-s1 (baseline)" in printed and "0.3100 ± 0.0141" in printed
    with open(out / "compare.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["run"] for r in rows] == ["n-s0", "n-s1"] and float(rows[0]["best_mAP50-95"]) == pytest.approx(0.30)
    assert float(rows[0]["d_best_mAP50-95"]) == pytest.approx(-0.02) and rows[0]["status"] == "finished"
    with open(out / "compare_groups.csv") as f:
        g = list(csv.DictReader(f))
    assert g[0]["n"] == "2" and float(g[0]["best_mAP50-95_std"]) == pytest.approx(np.std([0.3, 0.32], ddof=1))
    md = (out / "compare.md").read_text()
    assert md.startswith("# Comparison of 2 runs") and "| n-s1 (baseline)" in md and "![curves" in md
    img = cv2.imread(str(out / "compare.png"))
    assert img is not None and img.shape[0] > 500 and img.shape[1] > 1000 and img.std() > 10
    assert main([str(runs_dir / "notes")]) == 1  # nothing usable
    assert main([str(runs_dir / "*"), "--baseline", "nope"]) == 2
    assert "--baseline 'nope' is neither a run nor a group" in capsys.readouterr().out
    assert main([str(runs_dir / "*"), "epochs=3"]) == 2  # settings go with --train only


def test_stats_against_scipy_on_known_inputs():
    a, b = [0.40, 0.42, 0.41, 0.39], [0.45, 0.47, 0.44]
    t, p, df = welch_test(a, b)
    ref = sps.ttest_ind(b, a, equal_var=False)
    assert (t, p) == pytest.approx((ref.statistic, ref.pvalue)) and df == pytest.approx(ref.df)
    lo, hi = welch_ci(a, b)
    ci = ref.confidence_interval(0.95)
    assert (lo, hi) == pytest.approx((ci.low, ci.high))
    s = spread([0.40, 0.42, 0.41])
    assert (s.n, s.mean, s.std) == (3, pytest.approx(0.41), pytest.approx(0.01)) and s.text() == "0.4100 ± 0.0100"
    assert spread([0.5]).text() == "0.5000" and spread([]).text() == "-"
    # single run against a group: t = (x - mean) / (s * sqrt(1 + 1/n)), df = n - 1
    p1, _ = single_vs_spread(0.46, [0.40, 0.42, 0.41])
    assert p1 == pytest.approx(2 * sps.t.sf(0.05 / (0.01 * math.sqrt(4 / 3)), 2))
    v = compare([0.40, 0.42, 0.41], [0.46])
    assert v.method == "single-vs-spread" and v.p == pytest.approx(p1) and "assumes equal spread" in v.text
    boot = bootstrap_ci(a, b)
    assert boot == bootstrap_ci(a, b) and boot[0] < np.mean(b) - np.mean(a) < boot[1]
    assert compare([0.3], [0.4]).text == NO_CONCLUSION
    assert compare([0.3, 0.3], [0.3, 0.3]).p == 1.0  # no spread and no difference


def test_ablation_plan_skips_resumes_and_refuses_other_settings(tmp_path, tiny_data):
    project = tmp_path / "abl"
    common = dict(data=tiny_data, epochs=2, imgsz=64, batch=4, project=str(project))
    write_run(project, "yolov10n-s0", [(0.5, 0.3), (0.6, 0.4)], tiny_data)  # finished
    half = write_run(project, "yolov10n-s1", [(0.5, 0.3)], tiny_data, epochs=2, seed=1)
    (half / "weights").mkdir()
    (half / "weights" / "last.pt").write_bytes(b"x")  # only its presence matters to the plan
    jobs = plan(["yolov10n.yaml", "yolov10n-LSKA.yaml"], [0, 1], common)
    assert [(j.save_dir.name, j.action) for j in jobs] == [
        ("yolov10n-s0", SKIP), ("yolov10n-s1", RESUME), ("yolov10n-LSKA-s0", START), ("yolov10n-LSKA-s1", START)]
    with pytest.raises(UserError, match=r"yolov10n-s0 holds a run with other settings .*epochs 2 vs 3"):
        plan(["yolov10n.yaml"], [0], {**common, "epochs": 3})
    with pytest.raises(UserError, match="seed= cannot be set with --train"):
        plan(["yolov10n.yaml"], [0], {**common, "seed": 3})
    with pytest.raises(UserError, match="closest shipped names: yolov10n-LSKA.yaml"):
        plan(["yolov10n-LKSA.yaml"], [0], common)
    with pytest.raises(UserError, match="needs a dataset"):
        plan(["yolov10n.yaml"], [0], {"epochs": 1})


def test_train_ablation_resumes_an_interrupted_run(tmp_path, tiny_data, monkeypatch, capsys):
    """--train: 2 models x 1 seed; the second dies after epoch 1; the same command again skips the first,
    resumes the second from last.pt, and compares both."""
    from ultralytics.engine import results_log

    original = results_log.ResultsLog.append

    def crash_psalska_after_epoch_1(self, row):
        original(self, row)
        if row["epoch"] == 1 and "PSALSKA" in str(self.path):
            raise KeyboardInterrupt  # the process dies right after epoch 1 is safely written

    cmd = ["--train", "yolov10n.yaml", "yolov10n-PSALSKA.yaml", "--seeds", "0", f"data={tiny_data}", "epochs=2",
           "imgsz=64", "batch=4", "workers=0", "device=cpu", "plots=False", f"project={tmp_path / 'abl'}",
           "--out", str(tmp_path / "report")]
    monkeypatch.setattr(results_log.ResultsLog, "append", crash_psalska_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        main(cmd)
    monkeypatch.setattr(results_log.ResultsLog, "append", original)
    psa = tmp_path / "abl" / "yolov10n-PSALSKA-s0"
    assert len((psa / "results.csv").read_text().splitlines()) == 2  # header + epoch 1
    capsys.readouterr()
    assert main(cmd) == 0
    out = capsys.readouterr().out
    assert "yolov10n-s0: skip (finished (2/2 epochs))" in out
    assert "yolov10n-PSALSKA-s0: resume (1/2 epochs done)" in out
    assert "Resuming training from" in out
    with open(tmp_path / "report" / "compare.csv") as f:
        rows = {r["run"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"yolov10n-s0", "yolov10n-PSALSKA-s0"}
    assert all(r["epochs_done"] == "2" and r["status"] == "finished" for r in rows.values())
    assert int(rows["yolov10n-PSALSKA-s0"]["params"]) < int(rows["yolov10n-s0"]["params"])  # PSALSKA is smaller
    assert "no conclusion can be drawn: 1 seed per side" in out
