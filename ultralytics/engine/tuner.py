"""Hyperparameter search on Optuna: each trial is a normal training run through the public YOLO.train.

`YOLO(...).tune(data=..., epochs=..., iterations=300, space=None, use_ray=False, storage=None, study=None,
prune=True)`, Ultralytics' signature (use_ray=True is refused: the Optuna study already runs parallel workers on one
storage, which is what Ray Tune would add),
`python tune.py ...` and `yolo tune ...` (ultralytics/tune_cli.py) run the study `study` (default '<model>-<data>'):
- trial n trains in runs/tune/<study>/trial_<n> (all of a run's usual files) with the shared train settings and
  the values it sampled from the space (engine/tune_space.py); its objective is the fitness
  (0.1 mAP50 + 0.9 mAP50-95) of its best epoch;
- the study lives in storage (default SQLite at runs/tune/<study>/study.db): the same command again continues
  it up to `iterations` trials in all; several processes given one storage share it; a trial whose process
  died (SIGKILL, power loss) stops sending heartbeats and is marked failed by the next process that runs;
- pruning (median pruner, on by default) hears the fitness after every epoch through a callback and ends a
  hopeless trial after that epoch (trainer.stop), which the study records as pruned;
- optimizer=auto ignores lr0 and momentum, so when they are tuned every trial uses the optimizer auto would pick;
- outputs in runs/tune/<study>: tune_results.csv and best_hyperparameters.yaml (after every trial),
  tune_fitness.png and param_importance.png (at the end), see engine/tune_report.py;
- device=0,1: each trial trains with DDP as train.py does: torchrun reruns the script, whose tune() call sees
  the trial in the environment and trains that trial only (rank 0 reports to the storage).
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from pathlib import Path

from ultralytics.utils import LOGGER, UserError, colorstr

TRIAL_ENV = "YOLO_TUNE_TRIAL"  # set around a DDP trial's training: {"storage", "study", "trial_id", "prune"}
HEARTBEAT_S = 30  # a running trial writes a heartbeat to the storage this often (seconds)
GRACE_S = 120  # a running trial whose heartbeat is older than this is marked failed: its process died
FIXED_BY_TUNE = ("name", "exist_ok", "resume")  # tune sets these for every trial (project is the parent folder)
INSTALL = "pip install optuna (or pip install -r requirements-optional.txt)"


def import_optuna():
    """The optuna module, or a UserError naming the package to install."""
    try:
        import optuna
    except ImportError:
        raise UserError(f"tune needs the optuna package, which is not installed: {INSTALL}") from None
    return optuna


RAY_HINT = ("use_ray=True: this tree tunes with Optuna only (Ray Tune is not a dependency). What Ray would add, "
            "parallel trials, the Optuna study does already: start the same tune command in several processes or on "
            "several machines with one storage, e.g. storage='postgresql://user:password@host/db' and the same "
            "study=..., and each worker takes the next trial (docs/12-tracking-and-tuning.md, 'One study, several "
            "machines'). Drop use_ray or pass use_ray=False")


def tune(model, settings: dict | None = None, data=None, iterations: int = 300, space=None, use_ray: bool = False,
         storage: str | None = None, study: str | None = None, prune: bool = True, **kwargs):
    """Run (or continue) the study; returns the optuna Study (None in a DDP trial process).

    Ultralytics' `model.tune(use_ray=False, iterations=..., **train_args)` shape: settings (a dict) and kwargs are
    the train settings every trial shares (data= among them, or given here); use_ray=True is a UserError pointing
    to the shared Optuna study; iterations is the number of trials of the study in all (300 as in Ultralytics).
    """
    settings = {**(settings or {}), **kwargs}
    use_ray = settings.pop("use_ray", use_ray)  # the facade passes its kwargs on as settings
    if use_ray not in (False, True, None, 0, 1):
        raise UserError(f"use_ray={use_ray!r} must be False (True is refused: {RAY_HINT})")
    if use_ray:
        raise UserError(RAY_HINT)
    if data is not None:
        settings["data"] = data
    optuna = import_optuna()  # before anything is written
    from ultralytics.utils import dist

    if os.environ.get(TRIAL_ENV) and dist.under_torchrun():
        return _ddp_trial(model)
    from ultralytics.cfg import get_cfg
    from ultralytics.engine.tune_report import write_plots, write_tables
    from ultralytics.engine.tune_space import load_space

    fixed = [k for k in FIXED_BY_TUNE if k in settings]
    if fixed:
        raise UserError(f"tune sets {', '.join(fixed)} itself (trials go to <project>/<study>/trial_<n>); "
                        "name the study with study=... and continue it by running the same command again")
    args = get_cfg(overrides={**settings, "mode": "train"})  # every setting checked before anything is written
    if not args.data:
        raise UserError("tune needs a dataset: data='path/to/data.yaml' (the built-in one is data='shapes.yaml')")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise UserError(f"iterations={iterations!r} must be an int >= 1 (the number of trials of the study in all)")
    dists = load_space(space)
    name = study or f"{Path(str(model.cfg or model.ckpt_path)).stem}-{Path(str(args.data)).stem}"
    study_dir = Path(args.project or "runs/tune") / name
    optimizer = _fixed_optimizer(args, dists)
    study_dir.mkdir(parents=True, exist_ok=True)
    url = str(storage or study_dir / "study.db")
    url = url if "://" in url else f"sqlite:///{Path(url).resolve()}"  # a plain path is an SQLite file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # optuna marks heartbeats so
        rdb = optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
    pruner = optuna.pruners.MedianPruner() if prune else optuna.pruners.NopPruner()
    st = optuna.create_study(study_name=name, storage=rdb, direction="maximize", load_if_exists=True, pruner=pruner)
    _check_same_space(st, dists, url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(st)  # trials of dead processes: failed, before they are counted
    others = sum(t.state == optuna.trial.TrialState.RUNNING for t in st.trials)  # trials of live processes
    seed = args.seed + 1000003 * len(st.trials) + (os.getpid() if others else 0)  # resumed: new samples
    st.sampler = optuna.samplers.TPESampler(seed=seed)
    remaining = iterations - len(st.trials)
    LOGGER.info(f"{colorstr('tune:')} study '{name}' in {url}: {len(st.trials)} trial(s) so far, {max(remaining, 0)} "
                f"to run of iterations={iterations}; space {', '.join(dists)}; pruning {'on' if prune else 'off'}")
    runner = TrialRunner(model, settings, dists, study_dir, optimizer, prune, url)
    if remaining > 0:
        st.optimize(runner, n_trials=remaining, catch=(Exception,),
                    callbacks=[optuna.study.MaxTrialsCallback(iterations, states=None),
                               lambda s, t: write_tables(s, study_dir, dists)])
    write_tables(st, study_dir, dists)
    if runner.error is not None:  # a mistake in the settings: every trial would fail the same way
        raise runner.error
    write_plots(st, study_dir)
    return st


class TrialRunner:
    """The objective: train one trial (a copy of the model, the sampled settings), return its best fitness."""

    def __init__(self, model, settings: dict, dists: dict, study_dir: Path, optimizer: str | None, prune: bool,
                 url: str):
        self.model, self.settings, self.dists, self.study_dir = model, settings, dists, study_dir
        self.optimizer, self.prune, self.url = optimizer, prune, url
        self.error: UserError | None = None

    def __call__(self, trial) -> float:
        import optuna

        from ultralytics.engine.trainer import NonFiniteLossError

        params = {k: _suggest(trial, k, d) for k, d in self.dists.items()}
        overrides = {**self.settings, **params, "project": str(self.study_dir), "name": f"trial_{trial.number}",
                     "exist_ok": True}
        if self.optimizer and str(overrides.get("optimizer", "auto")).lower() == "auto":
            overrides["optimizer"] = self.optimizer
            trial.set_user_attr("optimizer", self.optimizer)
        trial.set_user_attr("overrides", json.loads(json.dumps(overrides, default=str)))  # for a DDP trial
        LOGGER.info(f"\n{colorstr('tune:')} trial {trial.number}: "
                    + ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()))
        m = trial_model(self.model)
        m.add_callback("on_fit_epoch_end", PruningReport(trial, self.prune))
        os.environ[TRIAL_ENV] = json.dumps({"storage": self.url, "study": trial.study.study_name,
                                            "trial_id": trial._trial_id, "prune": self.prune})
        try:
            m.train(**overrides)
        except UserError as e:
            if not isinstance(e, NonFiniteLossError):  # a bad setting: stop the study (a NaN is this trial's)
                self.error = e
                trial.study.stop()
            raise
        finally:
            os.environ.pop(TRIAL_ENV, None)
        done = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
        values = done.intermediate_values  # what the callback reported (rank 0 of a DDP trial too)
        if "pruned_after_epoch" in done.user_attrs:
            raise optuna.TrialPruned(f"after epoch {done.user_attrs['pruned_after_epoch']}")
        return max(values.values()) if values else 0.0


class PruningReport:
    """on_fit_epoch_end: report the epoch's fitness to the trial; a hopeless trial ends after this epoch."""

    def __init__(self, trial, prune: bool):
        self.trial, self.prune = trial, prune

    def __call__(self, trainer) -> None:
        if trainer.metrics is None:  # val=False: this epoch was not validated, there is nothing to report
            return
        epoch, fitness = trainer.epoch + 1, float(trainer.fitness)
        self.trial.report(fitness, step=epoch)
        if self.prune and epoch < trainer.epochs and self.trial.should_prune():  # the last epoch saves nothing
            self.trial.set_user_attr("pruned_after_epoch", epoch)
            trainer.stop = True
            LOGGER.info(f"{colorstr('tune:')} trial {self.trial.number} pruned after epoch {epoch}: fitness "
                        f"{fitness:.4f} is below the median of the earlier trials at this epoch")


def trial_model(model):
    """A YOLO like `model` (same file, starting weights and callbacks) that one trial may train and replace."""
    m = copy.copy(model)
    m.model = copy.deepcopy(model.model)
    m.callbacks = model.callbacks.copy()
    m.metrics = None
    return m


def _suggest(trial, name: str, dist):
    import optuna.distributions as od

    if isinstance(dist, od.CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, od.IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high)
    return trial.suggest_float(name, dist.low, dist.high, log=dist.log)


def _check_same_space(st, dists: dict, url: str) -> None:
    """A study continues with the space it began with (its trials' values are only comparable under it)."""
    for t in st.trials:
        for k in set(t.distributions) | set(dists):
            d = t.distributions.get(k)
            if d is not None and dists.get(k) == d:
                continue
            was = f"with {k} ~ {d}" if d is not None else f"without {k}"
            now = f"samples it as {dists[k]}" if k in dists else "lacks it"
            raise UserError(f"study '{st.study_name}' in {url} was run {was}; the space given now {now}. Give the "
                            "same space to continue it, or a new study name (study=...)")


def _fixed_optimizer(args, dists: dict) -> str | None:
    """The optimizer 'auto' would pick for these settings, when lr0 or momentum is tuned (auto ignores both)."""
    if not {"lr0", "momentum"} & set(dists):
        return None
    choices = dists["optimizer"].choices if "optimizer" in dists else [args.optimizer]
    if not any(str(c).lower() == "auto" for c in choices):
        return None
    if args.batch == -1:
        raise UserError("tune with lr0 or momentum in the space and optimizer=auto needs a fixed batch (the "
                        "optimizer auto picks depends on it); set batch=16 or optimizer=SGD/AdamW")
    from ultralytics.data import build_yolo_dataset, check_det_dataset
    from ultralytics.utils.torch_utils import auto_optimizer

    data = check_det_dataset(args.data)
    n_train = len(build_yolo_dataset(args, data["train"], args.batch, data, "train"))
    iterations = math.ceil(n_train / max(args.batch, args.nbs)) * args.epochs  # as BaseTrainer counts them
    name = auto_optimizer(iterations, 1 if args.single_cls else data["nc"])[0]
    LOGGER.info(f"{colorstr('tune:')} lr0/momentum are tuned but optimizer=auto would ignore them: every trial "
                f"uses optimizer={name}, the one auto picks for {iterations} iterations")
    return name


def _ddp_trial(model) -> None:
    """A torchrun process of a DDP trial: train the trial the launching tune process started (rank 0 reports)."""
    import optuna

    spec = json.loads(os.environ[TRIAL_ENV])
    st = optuna.load_study(study_name=spec["study"], storage=spec["storage"])
    trial = optuna.trial.Trial(st, int(spec["trial_id"]))
    m = trial_model(model)
    m.add_callback("on_fit_epoch_end", PruningReport(trial, bool(spec["prune"])))
    m.train(**trial.user_attrs["overrides"])
