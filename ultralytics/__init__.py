"""An Ultralytics-shaped YOLOv10 source tree with Large Separable Kernel Attention (LSKA, PSALSKA).

Importing the package (any of its modules) before torch sets OMP_WAIT_POLICY=PASSIVE unless the environment
already has it: OpenMP threads that spin while they wait take the cores from the dataloader workers and from any
other busy process, which on a small shared CPU makes one predict call many times slower (see
benchmarks/predict_call.py --load). OpenMP reads the variable once, when torch loads it, so when torch came first
the package can only warn (once, at import).
"""

import os
import sys

from ultralytics.version import __version__

__all__ = ["YOLO", "__version__"]

OMP_POLICY_NOTE = ""  # what the import did about OMP_WAIT_POLICY: "set", "user" (yours kept) or "late" (torch first)
if "OMP_WAIT_POLICY" in os.environ:
    OMP_POLICY_NOTE = "user"
elif "torch" in sys.modules:
    OMP_POLICY_NOTE = "late"
    import warnings

    warnings.warn("torch was imported before ultralytics, so ultralytics could not set OMP_WAIT_POLICY=PASSIVE (its "
                  "OpenMP threads keep spinning, slow on a busy CPU): import ultralytics before torch, or set "
                  "OMP_WAIT_POLICY=PASSIVE in the environment", RuntimeWarning, stacklevel=2)
else:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    OMP_POLICY_NOTE = "set"


def __getattr__(name):
    """Import the YOLO facade lazily, so that `import ultralytics.utils` stays light."""
    if name == "YOLO":
        from ultralytics.models.yolo import YOLO

        return YOLO
    raise AttributeError(f"module 'ultralytics' has no attribute {name!r}")
