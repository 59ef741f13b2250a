"""Validate a trained model: set the weights and the dataset below, then run `python val.py`.

Any setting can be overridden on the command line (a `model=` or `weights=` key picks the weights):

    python val.py model=runs/train/exp2/weights/best.pt imgsz=320 split=test save_json=True

Prints which head is scored (nms=False: the one-to-one head, NMS-free; nms=True: one-to-many + NMS), P, R,
mAP50 and mAP50-95 overall (`all`) and per class, COCO's mAP by object size, then the speed per image; writes the PR/F1/P/R
curves, the confusion matrices and val_batch*_labels/pred.jpg to runs/val/exp, exp2, ... With save_json=True
it also writes predictions.json and ground_truth.json (COCO format) and, when pycocotools is installed,
prints COCOeval's mAP beside ours.
"""

from ultralytics import YOLO
from ultralytics.cfg import parse_key_value_args
from ultralytics.cli import run_script
from ultralytics.utils.checks import weights_from_args

WEIGHTS = "runs/train/exp/weights/best.pt"  # the model to validate (best.pt of a training run)
DATA = "shapes.yaml"  # the built-in dataset, or 'path/to/your/data.yaml'


def main(argv: list) -> None:
    overrides = parse_key_value_args(argv)
    weights = weights_from_args(overrides, WEIGHTS)
    model = YOLO(weights)
    settings = dict(
        data=DATA,
        split="val",  # val, test or train
        imgsz=640,  # validate at the size you trained at for comparable numbers
        batch=16,
        conf=0.001,  # keep (almost) every detection: AP integrates over all confidences
        nms=False,  # False: the one-to-one head, NMS-free (YOLOv10 paper); True: one-to-many + NMS (Ultralytics 8.4)
        iou=0.7,  # NMS IoU threshold, used with nms=True
        device="",  # '' = CUDA when present, else CPU; '0' = the first GPU; 'cpu'
        project="runs/val",
        name="exp",
        plots=True,
        save_json=False,  # True: COCO-format JSON (+ COCOeval's mAP when pycocotools is installed)
    )
    metrics = model.val(**{**settings, **overrides})
    b = metrics.box
    size = ", ".join(f"{k} {'n/a' if v < 0 else f'{v:.4f}'}" for k, v in
                     (("APs", b.map_small), ("APm", b.map_medium), ("APl", b.map_large)))
    print(f"mAP50-95 {b.map:.4f}, mAP50 {b.map50:.4f}, precision {b.mp:.4f}, recall {b.mr:.4f}, {size}")


if __name__ == "__main__":
    run_script(main)
