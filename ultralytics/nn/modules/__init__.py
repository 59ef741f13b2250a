"""YOLOv10 building blocks."""

from ultralytics.nn.modules.block import C2f, CIB, DFL, PSA, SCDown, SPPF, Attention, Bottleneck, C2fCIB
from ultralytics.nn.modules.conv import Concat, Conv, RepVGGDW
from ultralytics.nn.modules.head import v10Detect

__all__ = ["Attention", "Bottleneck", "C2f", "C2fCIB", "CIB", "Concat", "Conv", "DFL", "PSA", "RepVGGDW",
           "SCDown", "SPPF", "v10Detect"]
