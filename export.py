"""Export a trained model to ONNX, TorchScript or OpenVINO: set the weights and the format below, then run
`python export.py`.

Any setting can be overridden on the command line (a `model=` or `weights=` key picks the weights):

    python export.py model=runs/train/exp/weights/best.pt format=onnx imgsz=640 dynamic=True

The model is fused first (BNs folded, the one-to-many branch dropped); the file's graph ends in YOLOv10's
NMS-free top-k and outputs (B, max_det, 6): x1, y1, x2, y2 in input pixels, score, class. It is written
beside the weights (best.pt -> best.onnx / best.torchscript / best_openvino_model/, INT8:
best_int8_openvino_model/) and runs with `YOLO('best.onnx').predict(...)` or `.val(...)`. ONNX and OpenVINO need
`pip install -r requirements-export.txt`; INT8 (format=openvino int8=True data=shapes.yaml) calibrates on data's
val images (docs/15-deployment.md).
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
        format="onnx",  # 'onnx', 'torchscript' or 'openvino'
        imgsz=640,  # the size it runs at (int or [h, w]); dynamic=True also accepts other sizes
        batch=1,
        dynamic=False,  # ONNX, OpenVINO: dynamic batch and image size
        half=False,  # FP16 (needs a CUDA device; OpenVINO: FP16 weights in the IR, any device)
        int8=False,  # OpenVINO: INT8 post-training quantisation (NNCF), needs data=
        data=None,  # int8: the data YAML whose val images calibrate the quantisation
        fraction=1.0,  # int8: the fraction of those val images used
        int8_head="last",  # int8: head convolutions kept in float: 'last' (the last ones) or 'all'
        opset=None,  # ONNX opset; None = 17
        simplify=True,  # ONNX graph simplification with onnxslim
        device="cpu",
    )
    path = YOLO(weights).export(**{**settings, **overrides})
    print(f"exported {path}")
    return path


if __name__ == "__main__":
    run_script(main)
