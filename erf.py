"""Measure the effective receptive field (ERF) of a model, or of two side by side: `python erf.py`.

For each layer (default: the three neck outputs the head reads, P3/P4/P5), the mean over n images of
|d(centre unit, summed over channels) / d(input)|, as RepLKNet measures it. Writes runs/erf/exp (exp2, ...):
erf.png (one log-scaled, normalised map per model and layer), erf.csv (model, level, threshold, area_ratio
for thresholds 0.2, 0.3, 0.5, 0.99: the fraction of the image that holds that share of the contribution;
larger = a larger ERF) and erf.npz (the raw maps). Any setting can be overridden on the command line:

    python erf.py model=yolov10n.yaml model2=yolov10n-LSKA.yaml n=20 imgsz=512
    python erf.py model=runs/train/exp/weights/best.pt model2=runs/train/exp2/weights/best.pt
    python erf.py layers=[10,16] device=0
"""

from ultralytics.analysis import erf
from ultralytics.cli import run_script, script_settings

MODEL = "yolov10n.yaml"  # a model YAML (untrained) or a checkpoint, e.g. runs/train/exp/weights/best.pt
MODEL2 = "yolov10n-LSKA.yaml"  # a second model shown beside the first (None: one model)
SOURCE = "datasets/shapes/images/val"  # a folder or glob of images (the built-in dataset: python train.py makes it)

SETTINGS = dict(
    model=MODEL,
    model2=MODEL2,
    source=SOURCE,
    n=50,  # images averaged (RepLKNet uses 50)
    imgsz=512,  # images are resized to imgsz x imgsz (RepLKNet: 1024); the centre unit sits at the middle
    layers=None,  # rows to measure, e.g. [16, 19, 22]; None = the rows the head reads
    batch=4,  # images per backward pass
    device="",  # '' = CUDA when present, else CPU; '0' = the first GPU; 'cpu'
    project="runs/erf",
    name="exp",  # the folder: project/name, then name2, name3, ... unless exist_ok
    exist_ok=False,  # True: write into project/name even if it exists
)


def main(argv: list) -> dict:
    settings = script_settings("erf.py", SETTINGS, argv, builtin_source=SOURCE)
    return erf.run(**settings)


if __name__ == "__main__":
    run_script(main)
