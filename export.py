"""Export a trained model to ONNX or TorchScript: set the weights and the format below, then run `python export.py`.

Any setting can be overridden on the command line (a `model=` or `weights=` key picks the weights):

    python export.py model=runs/train/exp/weights/best.pt format=onnx imgsz=640 dynamic=True

The model is fused first (BNs folded, the one-to-many branch dropped); the file's graph ends in YOLOv10's
NMS-free top-k and outputs (B, max_det, 6): x1, y1, x2, y2 in input pixels, score, class. It is written
beside the weights (best.pt -> best.onnx / best.torchscript) and runs with `YOLO('best.onnx').predict(...)`
or `.val(...)`. ONNX needs `pip install -r requirements-export.txt`.
"""

from ultralytics import YOLO
from ultralytics.cfg import parse_key_value_args
from ultralytics.cli import run_script
from ultralytics.utils.checks import weights_from_args

WEIGHTS = "runs/train/exp/weights/best.pt"  # the model to export (best.pt of a training run)


def main(argv: list) -> str:
    overrides = parse_key_value_args(argv)
    weights = weights_from_args(overrides, WEIGHTS)
    settings = dict(
        format="onnx",  # 'onnx' or 'torchscript'
        imgsz=640,  # the size it runs at (int or [h, w]); dynamic=True also accepts other sizes
        batch=1,
        dynamic=False,  # ONNX: dynamic batch and image size
        half=False,  # FP16 (needs a CUDA device)
        opset=None,  # ONNX opset; None = 17
        simplify=False,  # ONNX graph simplification (needs onnxslim)
        device="cpu",
    )
    path = YOLO(weights).export(**{**settings, **overrides})
    print(f"exported {path}")
    return path


if __name__ == "__main__":
    run_script(main)
