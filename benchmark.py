"""Inference latency as papers report it: set the models below, then run `python benchmark.py`.

Any setting can be overridden on the command line:

    python benchmark.py model=yolov10n.yaml,runs/train/exp/weights/best.onnx imgsz=640 batch=1 device=0

Each model (a YAML, a .pt, an .onnx or a .torchscript file) is fused (one-to-one head), warmed up, and timed
over `timed_runs` forward passes (CUDA synchronised around each); the table goes to
runs/benchmark/expN/benchmark.csv with params and GFLOPs of the inference graph. Time on an idle machine.

With data=, one trained .pt is exported to every deployment format and each file is timed (ms per image at
batch 1 and at a larger batch) and validated on data; one table: format, size MB, mAP50-95, ms/image
(ultralytics/analysis/deploy.py, docs/15-deployment.md):

    python benchmark.py model=runs/train/exp/weights/best.pt data=shapes.yaml imgsz=320 device=cpu
"""

import sys

from ultralytics.analysis.benchmark import benchmark
from ultralytics.cfg import parse_key_value_args
from ultralytics.utils import UserError

MODELS = [  # compared side by side; YAMLs time random weights, which run exactly as fast as trained ones
    "ultralytics/cfg/models/v10/yolov10n.yaml",
    "ultralytics/cfg/models/v10/yolov10n-LSKA.yaml",
    "ultralytics/cfg/models/v10/yolov10n-PSALSKA.yaml",
]

if __name__ == "__main__":
    try:
        overrides = parse_key_value_args(sys.argv[1:])
        settings = dict(
            imgsz=640,
            batch=1,
            half=False,  # FP16 (CUDA only)
            device="",  # '' = CUDA when present, else CPU; '0' = the first GPU; 'cpu'
            warmup_runs=10,
            timed_runs=50,
            project="runs/benchmark",
            name="exp",
        )
        if overrides.get("data"):  # one table per format: export the .pt to each, time and validate each file
            from ultralytics.analysis.deploy import deploy_table
            from ultralytics.models.yolo.detect import DetectionValidator

            settings.update(warmup_runs=5, timed_runs=20, name="deploy")
            deploy_table(overrides.pop("model", None), overrides.pop("data"), DetectionValidator,
                         **{**settings, **overrides})
        else:
            benchmark(overrides.pop("model", None) or MODELS, **{**settings, **overrides})
    except UserError as e:
        sys.exit(f"ERROR: {e}")
