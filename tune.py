"""Tune hyperparameters with Optuna: set the model, dataset and search space below, then run `python tune.py`.

Each trial is a training run in runs/tune/<study>/trial_<n>; the study is kept in runs/tune/<study>/study.db,
so running the same command again continues it. Any setting can be overridden on the command line:
`python tune.py iterations=20 epochs=5 space=my_space.yaml`. Afterwards train with the best values:
`python train.py cfg=runs/tune/<study>/best_hyperparameters.yaml`. See docs/12-tracking-and-tuning.md.
"""

import sys

from ultralytics import YOLO
from ultralytics.cfg import parse_key_value_args

MODEL = "ultralytics/cfg/models/v10/yolov10n-LSKA.yaml"  # the model YAML whose training is tuned
DATA = "shapes.yaml"  # the built-in dataset (made offline on first use), or 'path/to/your/data.yaml'
SPACE = {  # {setting: (low, high)} or {setting: [choices]}; None = Ultralytics' tuner space
    "lr0": (1e-4, 1e-2),
    "momentum": (0.7, 0.98),
    "box": (3.0, 12.0),
    "cls": (0.2, 2.0),
    "mosaic": (0.0, 1.0),
}

if __name__ == "__main__":
    overrides = parse_key_value_args(sys.argv[1:])
    model = YOLO(overrides.pop("model", MODEL))
    settings = dict(
        data=DATA,
        epochs=10,  # per trial: short trials, pruned early when hopeless
        iterations=30,  # trials of the study in all (a rerun continues up to this many)
        space=SPACE,
        study=None,  # None = '<model>-<data>'; its folder is runs/tune/<study>
        storage=None,  # None = SQLite in runs/tune/<study>/study.db; e.g. 'postgresql://...' to share machines
        prune=True,  # the median pruner stops a trial whose fitness is below the median of earlier ones
        imgsz=256,
        batch=16,
        nbs=16,
        workers=2,
        device="",  # '' = CUDA when present, else CPU; '0,1' = every trial trains with DDP on two GPUs
        plots=False,  # per-trial plots cost time; best_hyperparameters.yaml and the study plots are written anyway
    )
    settings.update(overrides)
    model.tune(**settings)
