"""Train a YOLOv10 model: set the model YAML and the dataset below, then run `python train.py`.

Any setting can be overridden on the command line: `python train.py epochs=3 imgsz=320 device=cpu`.
Swap MODEL for yolov10n.yaml / yolov10n-PSALSKA.yaml, run again, and compare what lands in runs/train
(`python compare.py runs/train/*`). `data=datasets/mine/folds` (from `python dataset.py ... folds=5`) trains
each fold into runs/train/<name>-fold<k> and prints mean ± std of mAP50 and mAP50-95.
"""

import copy
import sys

from ultralytics import YOLO
from ultralytics.cfg import parse_key_value_args
from ultralytics.data.convert.folds import fold_yamls
from ultralytics.engine.kfold import train_folds

MODEL = "ultralytics/cfg/models/v10/yolov10n-LSKA.yaml"  # the model YAML to train
DATA = "shapes.yaml"  # the built-in dataset (made offline on first use), or 'path/to/your/data.yaml'

if __name__ == "__main__":
    overrides = parse_key_value_args(sys.argv[1:])
    resume = overrides.get("resume")
    model = YOLO(resume if isinstance(resume, str) else overrides.pop("model", MODEL))
    # model.load('yolov10n.pt')  # start from pretrained weights: tensors with matching names and shapes are copied
    settings = dict(
        data=DATA,
        cache=False,
        imgsz=256,
        epochs=20,
        single_cls=False,
        batch=16,
        close_mosaic=10,
        workers=2,
        device="",  # '' = CUDA when present, else CPU; '0' = the first GPU; 'cpu'
        optimizer="AdamW",  # the tutorial's 'SGD' needs many more steps than a short CPU run has
        lr0=0.002,
        nbs=16,  # nominal batch: one optimizer step per batch of 16 (the default 64 accumulates 4 batches)
        amp=True,  # mixed precision on CUDA (ignored on CPU)
        project="runs/train",
        name="exp",
        # resume='runs/train/exp/weights/last.pt',  # continue an interrupted run from its last.pt
    )
    settings.update(overrides)
    if fold_yamls(settings["data"]):  # data=out/folds (dataset.py folds=K): every fold, then mean ± std
        train_folds(lambda: copy.deepcopy(model), settings)  # each fold starts from the same weights
    else:
        model.train(**settings)
