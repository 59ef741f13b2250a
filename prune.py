"""Prune a trained model, fine-tune it, and validate it before, after pruning and after fine-tuning.

    python prune.py model=runs/train/exp/weights/best.pt ratio=0.3 method=l1 data=shapes.yaml epochs=10
    python prune.py model=best.pt ratio=0.5 ignore=[10]        # hold row 10 (e.g. PSA) fixed

ratio, method (l1, lamp, bn_scale) and ignore (rows, layer names or class names held fixed) are pruning's
own arguments (YOLO.prune, docs/14-lightweight-models.md); every other key=value is a training setting of
cfg/default.yaml for the fine-tuning. The fine-tuning run lands in runs/prune/<name> as any training run;
its weights/ folder also gets pruned.pt (pruned, before fine-tuning) and prune_summary.json (the three
validations, parameters and GFLOPs).
"""

import copy
import inspect
import json
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as train.py: spinning OpenMP threads starve a busy CPU

from ultralytics import YOLO  # noqa: E402
from ultralytics.cfg import parse_key_value_args  # noqa: E402
from ultralytics.nn.prune import prune_model, summary  # noqa: E402
from ultralytics.nn.weights import save_model  # noqa: E402
from ultralytics.utils import LOGGER, UserError  # noqa: E402

DATA = "shapes.yaml"  # the built-in dataset, or 'path/to/your/data.yaml'
PRUNE_ARGS = {k: p.default for k, p in inspect.signature(prune_model).parameters.items()
              if k in ("ratio", "method", "ignore")}  # defaults from the function: one place


def validate(model: YOLO, settings: dict) -> dict:
    """mAP50 and mAP50-95 of `model` on the settings' data at their imgsz and batch."""
    keys = ("data", "imgsz", "batch", "device", "workers", "single_cls", "nms")
    m = model.val(**{k: settings[k] for k in keys if k in settings}, plots=False, verbose=False)
    return {"mAP50": float(m.box.map50), "mAP50-95": float(m.box.map)}


def main(argv: list[str]) -> dict:
    overrides = parse_key_value_args(argv)
    if "model" not in overrides:
        raise UserError("prune.py needs model=path/to/best.pt (a trained checkpoint; a YAML prunes an untrained model)")
    prune_args = {k: overrides.pop(k, v) for k, v in PRUNE_ARGS.items()}
    if isinstance(prune_args["ignore"], (int, str)):
        prune_args["ignore"] = [prune_args["ignore"]]
    model = YOLO(overrides.pop("model"))
    settings = dict(data=DATA, imgsz=256, epochs=10, batch=16, workers=2, optimizer="AdamW", lr0=0.001, nbs=16,
                    warmup_epochs=0, project="runs/prune", name="exp")
    settings.update(overrides)
    before = validate(model, settings)
    report = model.prune(**prune_args)
    pruned = copy.deepcopy(model.model)
    after_prune = validate(model, settings)
    model.train(**settings)
    after_tune = validate(model, settings)
    wdir = model.trainer.wdir
    save_model(pruned, wdir / "pruned.pt")
    out = {"ratio": report["ratio"], "method": report["method"], "params": report["params"],
           "gflops_640": report["gflops"], "clipped": report["clipped"], "held": report["held"],
           "epochs": settings["epochs"], "before": before, "after_prune": after_prune, "after_finetune": after_tune}
    (wdir / "prune_summary.json").write_text(json.dumps(out, indent=2))
    LOGGER.info(summary(report))
    for name, m in (("before pruning", before), ("after pruning", after_prune),
                    (f"after fine-tuning ({settings['epochs']} epochs)", after_tune)):
        LOGGER.info(f"{name:>32}: mAP50 {m['mAP50']:.3f}  mAP50-95 {m['mAP50-95']:.3f}")
    LOGGER.info(f"Pruned weights: {wdir / 'pruned.pt'}; fine-tuned: {wdir / 'best.pt'}")
    return out


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except UserError as e:
        sys.exit(f"prune.py: {e}")
