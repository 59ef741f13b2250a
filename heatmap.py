"""Class-activation heatmaps of a YOLOv10 model: set the model and the images below, then `python heatmap.py`.

The score is the one-to-one head's class scores of the detections above `conf` (all classes, or `classes`);
LayerCAM (default) or Grad-CAM over the chosen rows (default: the rows the head reads). Writes, per image,
an overlay the size of the original (boxes on top, a colour bar at the right edge) to runs/heatmap/exp
(exp2, ...), and with save_npy=True the per-row maps as <name>.npy (L, H, W). Any setting can be overridden:

    python heatmap.py model=runs/train/exp/weights/best.pt source=path/to/images conf=0.3
    python heatmap.py method=gradcam layers=[8,13] classes=[0] imgsz=320 device=cpu
"""

import os

from ultralytics.analysis import heatmap
from ultralytics.cli import run_script, script_settings
from ultralytics.utils import UserError

MODEL = "runs/train/exp/weights/best.pt"  # a checkpoint or a model YAML (YAML = untrained weights)
SOURCE = "datasets/shapes/images/val"  # an image, a folder or a glob

SETTINGS = dict(
    model=MODEL,
    source=SOURCE,
    method="layercam",  # layercam or gradcam
    layers=None,  # rows to explain, e.g. [16, 19, 22]; None = the rows the head reads
    conf=0.25,  # detections with a class score >= conf make the score
    classes=None,  # e.g. [0] for one class; None = all
    imgsz=640,  # images are letterboxed to imgsz x imgsz
    device="",  # '' = CUDA when present, else CPU; '0' = the first GPU; 'cpu'
    save_npy=False,  # also write the raw per-row maps (L, H, W) as .npy
    project="runs/heatmap",
    name="exp",  # the folder: project/name, then name2, name3, ... unless exist_ok
    exist_ok=False,  # True: write into project/name even if it exists
)


def main(argv: list) -> list:
    settings = script_settings("heatmap.py", SETTINGS, argv, builtin_source=SOURCE)
    if settings["model"] == MODEL and not os.path.isfile(MODEL):
        raise UserError(f"{MODEL} does not exist yet: train first (python train.py), or give model=yolov10n-LSKA.yaml "
                        f"for untrained weights")
    return heatmap.run(**settings)


if __name__ == "__main__":
    run_script(main)
