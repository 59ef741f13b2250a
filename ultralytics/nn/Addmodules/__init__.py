"""Modules added to YOLOv10 (the blog's step 2: import each new module here)."""

from ultralytics.nn.Addmodules.CBAM import CBAM
from ultralytics.nn.Addmodules.CoordAtt import CoordAtt
from ultralytics.nn.Addmodules.ECA import ECA
from ultralytics.nn.Addmodules.EMA import EMA
from ultralytics.nn.Addmodules.LKA import LKA
from ultralytics.nn.Addmodules.LSKA import LSKA, PSALSKA, lska_geometry
from ultralytics.nn.Addmodules.SE import SE
from ultralytics.nn.Addmodules.SimAM import SimAM
from ultralytics.nn.Addmodules.TripletAttention import TripletAttention

# The attention baselines LSKA is compared with (compare.py --attention, docs/11-attention-baselines.md).
ATTENTION_BASELINES = ("SE", "CBAM", "ECA", "CoordAtt", "SimAM", "EMA", "LKA", "TripletAttention")

__all__ = ["LSKA", "PSALSKA", "lska_geometry", "SE", "CBAM", "ECA", "CoordAtt", "SimAM", "EMA", "LKA",
           "TripletAttention", "ATTENTION_BASELINES"]
