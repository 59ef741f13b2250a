"""The ablation in one command: train every model with the same settings and seeds, resuming what is done.

Each (model, seed) trains into <project>/<model stem>-s<seed> (project default runs/train), a fixed name,
so running the same command again finds its runs: finished ones are skipped, interrupted ones resume
from weights/last.pt, missing ones start. A run directory trained with other settings is never mixed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ultralytics.compare.groups import diff_text, settings_diff
from ultralytics.compare.runs import NotARunError, read_run
from ultralytics.utils import LOGGER, UserError

# Settings the ablation itself sets for each run; giving them as key=value would break the naming.
OWN_SETTINGS = ("model", "seed", "name", "exist_ok", "resume")
# Settings a resumed run may change (they do not change results; the trainer accepts only these).
RESUME_SETTINGS = ("device", "workers")
START, RESUME, SKIP = "start", "resume", "skip"


@dataclass
class Job:
    """One (model, seed) of the ablation, where it trains and what will be done about it."""

    model: str
    seed: int
    save_dir: Path
    action: str  # start / resume / skip
    detail: str = ""


def run_name(model: str, seed: int) -> str:
    """'yolov10n-LSKA.yaml', 0 -> 'yolov10n-LSKA-s0'."""
    return f"{Path(model).stem}-s{seed}"


def check_request(models: list[str], seeds: list[int], overrides: dict) -> dict:
    """Validate models, seeds and settings before any training; return the settings as the trainer sees them."""
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import resolve_model_yaml

    if not models:
        raise UserError("--train needs at least one model YAML, e.g. --train yolov10n.yaml yolov10n-LSKA.yaml")
    if not seeds:
        raise UserError("--seeds needs at least one seed, e.g. --seeds 0 1 2")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {' '.join(map(str, seeds))} repeats a seed: a repeat is not a new sample")
    own = [k for k in overrides if k in OWN_SETTINGS]
    if own:
        raise UserError(f"{', '.join(f'{k}=' for k in own)} cannot be set with --train: the ablation sets model, "
                        "seed and name (<model>-s<seed>) for each run; choose seeds with --seeds, the folder with "
                        "project=")
    stems = [Path(m).stem for m in models]
    if len(set(stems)) != len(stems):
        raise UserError(f"--train lists models with the same name ({', '.join(models)}): their runs would share "
                        "a folder")
    for m in models:
        if m.endswith((".yaml", ".yml")):
            resolve_model_yaml(m)  # UserError naming the closest shipped YAMLs
        elif not (m.endswith(".pt") and Path(m).is_file()):
            raise UserError(f"--train model {m!r} must be a model YAML or an existing .pt checkpoint")
    wanted = vars(get_cfg(overrides={**overrides, "model": models[0], "seed": seeds[0]}))
    if not wanted.get("data"):
        raise UserError("--train needs a dataset: add data=path/to/data.yaml (the built-in one: data=shapes.yaml)")
    return wanted


def plan(models: list[str], seeds: list[int], overrides: dict) -> list[Job]:
    """What to do for each (model, seed): start, resume or skip; UserError if a folder holds another experiment."""
    wanted = check_request(models, seeds, overrides)
    project = Path(overrides.get("project") or "runs/train")
    jobs = []
    for m in models:
        for s in seeds:
            d = project / run_name(m, s)
            jobs.append(_job(m, s, d, {**wanted, "model": m, "seed": s}))
    return jobs


def _job(model: str, seed: int, d: Path, wanted: dict) -> Job:
    try:
        run = read_run(d)
    except NotARunError:
        return Job(model, seed, d, START, "new run")
    diff = {k: v for k, v in settings_diff(run.args, wanted).items() if k not in RESUME_SETTINGS}
    if diff:
        raise UserError(f"{d} holds a run with other settings than this ablation ({diff_text(diff)}, "
                        f"run vs asked); give another project=... or remove {d}")
    if run.done:
        return Job(model, seed, d, SKIP, f"{run.status} ({run.epochs_done}/{run.epochs} epochs)")
    last = d / "weights" / "last.pt"
    if last.is_file():
        return Job(model, seed, d, RESUME, f"{run.epochs_done}/{run.epochs} epochs done")
    return Job(model, seed, d, START, "no checkpoint yet: starting over")


def run_ablation(models: list[str], seeds: list[int], overrides: dict) -> list[Path]:
    """Train what is missing (one run after the other, in this process); return every run directory."""
    from ultralytics import YOLO

    jobs = plan(models, seeds, overrides)
    LOGGER.info(f"Ablation: {len(models)} model(s) x {len(seeds)} seed(s) = {len(jobs)} runs")
    for j in jobs:
        LOGGER.info(f"  {j.save_dir}: {j.action} ({j.detail})")
    for i, j in enumerate(jobs, 1):
        if j.action == SKIP:
            continue
        LOGGER.info(f"\n[{i}/{len(jobs)}] {j.model} seed {j.seed}: {j.action} in {j.save_dir}")
        if j.action == RESUME:
            last = j.save_dir / "weights" / "last.pt"
            YOLO(str(last)).train(resume=str(last), **{k: overrides[k] for k in RESUME_SETTINGS if k in overrides})
        else:
            YOLO(j.model).train(**{**overrides, "seed": j.seed, "project": str(j.save_dir.parent),
                                   "name": j.save_dir.name, "exist_ok": True})
    return [j.save_dir for j in jobs]
