"""Detect objects with a trained model: set the weights and the images below, then run `python predict.py`.

Any setting can be overridden on the command line (a `model=` or `weights=` key picks the weights):

    python predict.py model=runs/train/exp2/weights/best.pt source=path/to/images conf=0.4 save_txt=True

The source can be an image, a folder, a glob ('imgs/*.jpg'), a .txt list of image paths, a video file
(source=clip.mp4, vid_stride=2: written back annotated to runs/detect/predictN/clip.mp4) or a webcam
(source=0). Annotated images go to runs/detect/predict, predict2, ...; with save_txt=True also YOLO labels
in <run>/labels/<name>.txt.
YOLOv10 needs no NMS: its one-to-one head gives each object one box.
"""

from pathlib import Path

from ultralytics import YOLO
from ultralytics.cfg import parse_key_value_args
from ultralytics.cli import run_script
from ultralytics.utils.checks import weights_from_args

WEIGHTS = "runs/train/exp/weights/best.pt"  # the model to use (best.pt of a training run)
SOURCE = "datasets/shapes/images/val"  # the built-in dataset's val images, or your images


def main(argv: list) -> None:
    overrides = parse_key_value_args(argv)
    weights = weights_from_args(overrides, WEIGHTS)
    source = overrides.pop("source", None)
    source = SOURCE if source is None else source  # source=0 is the first webcam
    if source == SOURCE and not Path(SOURCE).exists():  # the built-in dataset is generated on first use
        from ultralytics.data import check_det_dataset

        check_det_dataset("shapes.yaml")
    model = YOLO(weights)
    settings = dict(
        conf=0.25,  # keep detections scoring at least this
        imgsz=640,  # use the size you trained at
        device="",  # '' = CUDA when present, else CPU; '0' = the first GPU; 'cpu'
        save=True,  # annotated images
        save_txt=False,  # YOLO label files (add save_conf=True for a confidence column)
        project="runs/detect",
        name="predict",
    )
    n = detections = 0
    for r in model.predict(source=source, stream=True, **{**settings, **overrides}):  # memory stays flat on videos
        n, detections = n + 1, detections + len(r)
    print(f"{n} images, {detections} detections")


if __name__ == "__main__":
    run_script(main)
