"""Tuning on Optuna: the study's files, resuming it, a SIGKILLed trial, a pruned trial, a DDP trial process."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ultralytics import YOLO
from ultralytics.cfg import get_cfg
from ultralytics.utils import UserError
from ultralytics.utils.checkpoint import read_checkpoint

optuna = pytest.importorskip("optuna")

MODEL = str(Path(__file__).parent / "faults" / "yolov10t-faults.yaml")  # a very small YOLOv10
SPACE = {"lr0": (1e-4, 1e-2), "box": (3.0, 9.0)}
BASE = dict(imgsz=64, batch=16, workers=0, device="cpu", plots=False, warmup_epochs=0, close_mosaic=0,
            tensorboard=False)


def table(study_dir: Path) -> list[dict]:
    with open(study_dir / "tune_results.csv") as f:
        return list(csv.DictReader(f))


def fitness_of(run: Path) -> float:
    """0.1 mAP50 + 0.9 mAP50-95 of the best epoch in a run's results.csv (as printed there, 6 digits)."""
    with open(run / "results.csv") as f:
        rows = list(csv.DictReader(f))
    return max(0.1 * float(r["metrics/mAP50(B)"]) + 0.9 * float(r["metrics/mAP50-95(B)"]) for r in rows)


@pytest.fixture(scope="module")
def study4(tiny_data, tmp_path_factory):
    project = tmp_path_factory.mktemp("tune")
    YOLO(MODEL).tune(data=tiny_data, epochs=1, iterations=4, space=SPACE, study="s", project=str(project), **BASE)
    return project


def test_study_files_and_best(study4):
    d = study4 / "s"
    assert (d / "study.db").is_file() and (d / "tune_fitness.png").is_file() and (d / "param_importance.png").is_file()
    rows = table(d)
    assert list(rows[0]) == ["number", "state", "fitness", "lr0", "box", "seconds"]
    assert [r["number"] for r in rows] == ["0", "1", "2", "3"] and {r["state"] for r in rows} == {"COMPLETE"}
    for r in rows:  # each trial a normal run; its objective the fitness of its best epoch
        run = d / f"trial_{r['number']}"
        assert float(r["fitness"]) == pytest.approx(fitness_of(run), abs=2e-6)
        args = yaml.safe_load((run / "args.yaml").read_text())
        assert (args["lr0"], args["box"], args["epochs"], args["optimizer"]) == (
            float(r["lr0"]), float(r["box"]), 1, "AdamW")  # auto would ignore lr0: tune fixed what auto picks
        groups = read_checkpoint(run / "weights" / "last.pt")["optimizer"]["param_groups"]
        assert groups[0]["initial_lr"] == float(r["lr0"])  # the sampled lr0 acted
        assert 1e-4 <= float(r["lr0"]) <= 1e-2 and 3.0 <= float(r["box"]) <= 9.0
    best_row = max(rows, key=lambda r: float(r["fitness"]))  # the first of equal ones, as optuna's best
    best = yaml.safe_load((d / "best_hyperparameters.yaml").read_text())
    assert best == {"lr0": float(best_row["lr0"]), "box": float(best_row["box"]), "optimizer": "AdamW"}
    cfg = get_cfg(overrides={"cfg": str(d / "best_hyperparameters.yaml")})  # loadable as train.py's cfg=
    assert (cfg.lr0, cfg.box, cfg.optimizer) == (best["lr0"], best["box"], "AdamW")


def test_rerun_continues_the_study_from_the_cli(study4, tiny_data, tmp_path):
    from ultralytics.tune_cli import main

    before = table(study4 / "s")
    space = tmp_path / "space.yaml"  # the same space in YAML form (YAML has no tuples)
    space.write_text("lr0: {low: 0.0001, high: 0.01}\nbox: {low: 3.0, high: 9.0}\n")
    argv = [f"model={MODEL}", f"data={tiny_data}", "epochs=1", "iterations=6", f"space={space}", "study=s",
            f"project={study4}"] + [f"{k}={v}" for k, v in BASE.items()]
    main(argv)
    rows = table(study4 / "s")
    assert [r["number"] for r in rows] == ["0", "1", "2", "3", "4", "5"] and rows[:4] == before
    assert rows[4]["lr0"] not in {r["lr0"] for r in before}  # a resumed study samples anew
    with pytest.raises(UserError, match="was run with box"):  # another space cannot continue it
        YOLO(MODEL).tune(data=tiny_data, epochs=1, iterations=7, space={"lr0": (1e-4, 1e-2)}, study="s",
                         project=str(study4), **BASE)
    assert len(table(study4 / "s")) == 6


def test_killed_trial_is_failed_and_the_study_goes_on(tiny_data, tmp_path, monkeypatch):
    from ultralytics.engine import tuner

    child = (f"import os, signal, sys; sys.path.insert(0, {str(Path(__file__).parents[1])!r})\n"
             "from ultralytics import YOLO\n"
             f"m = YOLO({MODEL!r})\n"
             "m.add_callback('on_train_epoch_start', lambda t: os.kill(os.getpid(), signal.SIGKILL))\n"
             f"m.tune(data={tiny_data!r}, epochs=1, iterations=1, space={SPACE!r}, study='k', "
             f"project={str(tmp_path)!r}, **{BASE!r})\n")
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    killed = optuna.load_study(study_name="k", storage=f"sqlite:///{tmp_path / 'k' / 'study.db'}").trials
    assert [t.state.name for t in killed] == ["RUNNING"]  # nobody told the study: the process just died
    monkeypatch.setattr(tuner, "GRACE_S", 1)  # heartbeats older than 1 s: its process is dead
    time.sleep(1.5)
    YOLO(MODEL).tune(data=tiny_data, epochs=1, iterations=2, space=SPACE, study="k", project=str(tmp_path), **BASE)
    rows = table(tmp_path / "k")
    assert [(r["number"], r["state"]) for r in rows] == [("0", "FAIL"), ("1", "COMPLETE")]
    assert rows[0]["fitness"] == "" and not (tmp_path / "k" / "trial_0" / "results.csv").exists()


def test_hopeless_trial_is_pruned(tiny_data, tmp_path):
    from ultralytics.engine.tune_space import load_space

    d = tmp_path / "p"
    d.mkdir()
    st = optuna.create_study(study_name="p", storage=f"sqlite:///{d / 'study.db'}", direction="maximize")
    for lr0 in (1e-4, 1e-3, 2e-3, 5e-3, 1e-2):  # 5 earlier trials (the median pruner's startup) at fitness 0.5
        st.add_trial(optuna.trial.create_trial(params={"lr0": lr0, "box": 5.0}, distributions=load_space(SPACE),
                                               value=0.5, intermediate_values={1: 0.5, 2: 0.5}))
    YOLO(MODEL).tune(data=tiny_data, epochs=2, iterations=6, space=SPACE, study="p", project=str(tmp_path), **BASE)
    row = table(d)[5]
    assert row["state"] == "PRUNED"
    run = d / "trial_5"
    assert float(row["fitness"]) == pytest.approx(fitness_of(run), abs=2e-6)  # the fitness it reported
    with open(run / "results.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1"]  # pruned after epoch 1 of 2: one epoch saved


def test_ddp_trial_process_trains_the_launchers_trial(tiny_data, tmp_path, monkeypatch):
    """What a torchrun process of a DDP trial does: read the trial from the storage, train it, report to it."""
    from ultralytics.engine import tuner

    url = f"sqlite:///{tmp_path / 'study.db'}"
    st = optuna.create_study(study_name="d", storage=url, direction="maximize")
    trial = st.ask()
    overrides = {**BASE, "data": tiny_data, "epochs": 1, "lr0": 0.002, "optimizer": "SGD",
                 "project": str(tmp_path), "name": "trial_0", "exist_ok": True}
    trial.set_user_attr("overrides", overrides)
    monkeypatch.setenv(tuner.TRIAL_ENV, json.dumps({"storage": url, "study": "d", "trial_id": trial._trial_id,
                                                    "prune": True}))
    tuner._ddp_trial(YOLO(MODEL))
    reported = st.get_trials(deepcopy=False)[0].intermediate_values
    assert reported == {1: pytest.approx(fitness_of(tmp_path / "trial_0"), abs=2e-6)}
    assert yaml.safe_load((tmp_path / "trial_0" / "args.yaml").read_text())["lr0"] == 0.002


def test_without_optuna_nothing_is_written(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna fails as if not installed
    with pytest.raises(UserError, match="pip install optuna"):
        YOLO(MODEL).tune(data=tiny_data, epochs=1, iterations=1, project=str(tmp_path / "t"), **BASE)
    assert not (tmp_path / "t").exists() and not os.path.exists("runs/tune")


def test_space_errors_name_the_entry():
    from ultralytics.engine.tune_space import DEFAULT_SPACE, load_space

    assert set(DEFAULT_SPACE) - set(load_space(None)) == {"bgr", "mixup", "copy_paste"}  # would change nothing
    for space, match in (({"lr00": (1, 2)}, "did you mean 'lr0'"), ({"mixup": (0.0, 1.0)}, "not implemented"),
                         ({"weight_decay": (0.0, 1e-3)}, "log scale"), ({"hsv_h": (0.0, 2.0)}, "hsv_h"),
                         ({"box": (9.0, 3.0)}, "low <= high"), ({"optimizer": ["SGD", "Foo"]}, "optimizer")):
        with pytest.raises(UserError, match=match):
            load_space(space)


@pytest.mark.parametrize("spec, kind, low, high", [
    ((1e-4, 1e-2), "float", 1e-4, 1e-2),  # (min, max)
    ((1e-4, 1e-2, 0.5), "float", 1e-4, 1e-2),  # (min, max, gain): the gain is ignored
    ([1e-4, 1e-2], "float", 1e-4, 1e-2),  # a two-number list (what a YAML space gives) is a range, not 2 choices
    ([1e-4, 1e-2, 1.0], "float", 1e-4, 1e-2),
    ({"low": 1e-4, "high": 1e-2}, "float", 1e-4, 1e-2),
    ({"low": 1e-4, "high": 1e-2, "gain": 0.3}, "float", 1e-4, 1e-2),
])
def test_range_forms_draw_inside_the_range(spec, kind, low, high):
    from ultralytics.engine.tune_space import load_space

    dists = load_space({"lr0": spec})
    st = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    draws = [st.ask(dists).params["lr0"] for _ in range(200)]
    assert all(low <= v <= high for v in draws)
    assert len(set(draws)) == 200  # a continuous range, not a few choices
    # log scale for lr0: about half the draws below the geometric middle 1e-3 (uniform would put ~9% there)
    assert 0.35 < sum(v < 1e-3 for v in draws) / 200 < 0.65


@pytest.mark.parametrize("name, spec, choices", [
    ("optimizer", ["SGD", "AdamW"], {"SGD", "AdamW"}),  # a list of non-numbers
    ("batch", {"choices": [8, 16]}, {8, 16}),  # numbers as choices: said so
    ("batch", [4, 8, 16, 32], {4, 8, 16, 32}),  # more than three numbers: choices
    ("close_mosaic", (0, 3), {0, 1, 2, 3}),  # an int setting with int bounds: ints
])
def test_choice_forms_draw_only_their_choices(name, spec, choices):
    from ultralytics.engine.tune_space import load_space

    st = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    dists = load_space({name: spec})
    assert {st.ask(dists).params[name] for _ in range(100)} == choices


def test_space_values_outside_the_setting_are_refused():
    from ultralytics.engine.tune_space import load_space

    for space, match in (({"hsv_h": [0.0, 2.0]}, r"hsv_h.*\[0, 1\]"), ({"mosaic": (-0.5, 0.5, 0.5)}, "mosaic"),
                         ({"batch": {"choices": [8, 0]}}, "batch"),
                         ({"lr0": (1e-4, 1e-2, 3.0)}, r"gain is in \(0, 1\]"),
                         ({"batch": [8, 16, 32]}, r"choices: \[8, 16, 32\]"), ({"lr0": {"low": 1e-4}}, "keys")):
        with pytest.raises(UserError, match=match):
            load_space(space)


def test_ultralytics_tune_signature(tiny_data, tmp_path, monkeypatch):
    import inspect

    from ultralytics.engine import tuner

    assert inspect.signature(YOLO.tune).parameters["iterations"].default == 300
    assert inspect.signature(tuner.tune).parameters["iterations"].default == 300
    with pytest.raises(UserError, match="Optuna.*storage='postgresql://"):
        YOLO(MODEL).tune(use_ray=True, data=tiny_data, epochs=1, project=str(tmp_path / "t"), **BASE)
    monkeypatch.setitem(sys.modules, "optuna", None)  # use_ray=False goes on to the study (here: optuna missing)
    with pytest.raises(UserError, match="pip install optuna"):
        YOLO(MODEL).tune(use_ray=False, data=tiny_data, epochs=1, project=str(tmp_path / "t"), **BASE)
    assert not (tmp_path / "t").exists()
