"""OpenVINO export: the fused model's graph (top-k included) as IR (.xml/.bin) in FP32, FP16 weights or INT8.

The folder `<name>_openvino_model/` (INT8: `<name>_int8_openvino_model/`) holds `<name>.xml` (the graph),
`<name>.bin` (the weights) and `metadata.yaml` (names, stride, imgsz, task, batch, dynamic, ...), the layout
Ultralytics writes. The graph maps
images (B, 3, H, W) float 0..1 RGB to detections (B, max_det, 6), as the ONNX export does.

- FP32 stays FP32: `openvino.save_model` compresses weights to FP16 unless told not to, so compress_to_fp16 is
  half. (The runtime in nn/backend_openvino.py also asks the CPU for f32 inference: on CPUs with AMX,
  OpenVINO's default would run FP32 graphs in bf16.)
- INT8 (int8=True): NNCF post-training quantisation (`nncf.quantize`), calibrated on the first `fraction` of
  data's val images, letterboxed to imgsz as validation does. Mixed precision: IGNORED keeps the head's last
  convolutions, the box decoding and the top-k in floating point (see ignored_scope()).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ultralytics.utils import LOGGER, UserError, colorstr

CALIB_RECOMMENDED = 300  # NNCF's default subset_size: fewer calibration images warn (quantisation is noisier)
SUFFIX = "_openvino_model"


def openvino_dir(base: Path) -> Path:
    """best.pt -> best_openvino_model/ beside it (base is the file path without the format's suffix)."""
    return base.with_name(base.name + SUFFIX)


def ignored_scope(head_index: int, nncf, whole_head: bool = False):
    """The nodes INT8 must leave in floating point, by name (the tracer names nodes after module paths).

    - `one2one_cv2.<level>.2`, `one2one_cv3.<level>.2`: the head's last 1x1 convolutions. Their outputs are the
      raw DFL logits of the 4 box sides and the class logits; a uint8 step there moves a box side by up to a
      pixel per DFL bin and shifts scores around the threshold (Ultralytics' INT8 issues: quantising these
      costs mAP; excluding head ops recovered 0.6 mAP50-95 in one upstream fix).
    - `dfl` and the head's own ops (`model.<head>/...`): softmax over the bins, the expectation, anchors and
      stride scaling, the sigmoid: arithmetic on pixel coordinates, where 8 bits cannot hold 0..640 px.
    - the graph's top ops (`aten::...` without a module: the padding and the top-k): selection by score, which
      must compare exact float scores.
    whole_head=True (setting int8_head=all) keeps every convolution of the head in floating point too
    (benchmarks/deploy_table.py measures what that recovers).
    """
    prefix = rf"__module\.model\.model\.{head_index}"
    last = rf"{prefix}\.one2one_cv[23]\..*" if whole_head else rf"{prefix}\.one2one_cv[23]\.\d+\.2/.*"
    patterns = [last, rf"{prefix}\.dfl.*", rf"{prefix}/.*", r"(aten|prim)::.*"]
    return nncf.IgnoredScope(patterns=patterns, validate=False), patterns


def calibration_images(data, imgsz: list[int], fraction: float, batch: int) -> list[np.ndarray]:
    """Batches (batch, 3, h, w) float32 0..1 RGB of the first `fraction` of data's val images, letterboxed."""
    import cv2

    from ultralytics.data import check_det_dataset
    from ultralytics.data.augment import LetterBox
    from ultralytics.data.image_io import imread
    from ultralytics.data.utils import get_img_files

    if not data:
        raise UserError("int8=True needs calibration images: give data=<data YAML> (its val split is used), e.g. "
                        "export(format='openvino', int8=True, data='shapes.yaml')")
    d = check_det_dataset(data)
    files = sorted(get_img_files(d["val"]))
    n = max(1, math.ceil(len(files) * float(fraction))) if files else 0
    if n == 0:
        raise UserError(f"int8=True: data '{data}' has no images in its val split {d['val']} to calibrate on")
    if n < CALIB_RECOMMENDED:
        LOGGER.warning(f"int8 calibration: {n} images from '{data}' val (fraction={fraction}); NNCF asks for "
                       f"{CALIB_RECOMMENDED} by default: using the {n} there are (add val images for a steadier "
                       "INT8 model)")
    letterbox = LetterBox(tuple(imgsz), auto=False)
    ims = [cv2.cvtColor(letterbox(image=imread(f)), cv2.COLOR_BGR2RGB) for f in files[:n]]
    arr = np.stack(ims).transpose(0, 3, 1, 2).astype(np.float32) / 255.0  # (n, 3, h, w)
    arr = arr[np.arange(len(arr) + (-len(arr)) % batch) % len(arr)]  # fixed batch: repeat images to fill the last
    return [np.ascontiguousarray(arr[i:i + batch]) for i in range(0, len(arr), batch)]


def export_openvino(net: nn.Module, im: torch.Tensor, folder: Path, metadata: dict, args, head_index: int, ov,
                    nncf=None) -> Path:
    """Convert `net` (ExportModel, input like im) and write folder/<stem>.xml, .bin and metadata.yaml; returns
    the folder. args: dynamic, half, int8, data, fraction. ov, nncf: the packages (the exporter's require())."""
    import yaml

    batch, _, h, w = im.shape
    shape = [-1, 3, -1, -1] if args.dynamic else [batch, 3, h, w]
    with torch.no_grad(), _quiet():
        model = ov.convert_model(net, example_input=im, input=[ov.PartialShape(shape)])
    model.inputs[0].get_tensor().set_names({"images"})
    model.outputs[0].get_tensor().set_names({"output0"})
    if args.int8:
        model = quantize(model, args, [h, w], 1 if args.dynamic else batch, head_index, nncf)
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder.name[: -len(SUFFIX)] if folder.name.endswith(SUFFIX) else folder.name  # best(_int8)
    xml = folder / f"{stem}.xml"
    ov.save_model(model, str(xml), compress_to_fp16=bool(args.half))
    meta = {**metadata, "int8": bool(args.int8), "precision": "int8" if args.int8 else "fp16" if args.half else
            "fp32"}
    (folder / "metadata.yaml").write_text(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True))
    return folder


def quantize(model, args, imgsz: list[int], batch: int, head_index: int, nncf):
    """nncf.quantize (post-training, mixed preset) of the converted model on data's val images."""
    batches = calibration_images(args.data, imgsz, float(args.fraction), batch)
    whole_head = str(args.get("int8_head") or "last").lower() == "all"
    scope, patterns = ignored_scope(head_index, nncf, whole_head=whole_head)
    kept = [op.get_friendly_name() for op in model.get_ordered_ops() if _matches(op.get_friendly_name(), patterns)]
    if not any(".one2one_cv" in k for k in kept):
        raise UserError("int8: the head's convolutions were not found by name in the converted graph, so they "
                        "would be quantised; this model's head is not the YOLOv10 head this export knows")
    what = "all the head's convs" if whole_head else "the head's last convs"
    LOGGER.info(f"{colorstr('export:')} INT8 (NNCF) on {len(batches)} calibration batch(es) of {batch} from "
                f"'{args.data}'; {len(kept)} ops kept in floating point ({what}, box decoding, top-k)")
    with _quiet():
        return nncf.quantize(model, nncf.Dataset(batches), preset=nncf.QuantizationPreset.MIXED,
                             subset_size=sum(len(b) for b in batches), ignored_scope=scope)


def _matches(name: str, patterns: list[str]) -> bool:
    import re

    return any(re.fullmatch(p, name) for p in patterns)


class _quiet:
    """Silence the tracer's warnings (shapes are checked by tests) and NNCF's progress bars."""

    def __enter__(self):
        import logging
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore")
        self._log = logging.getLogger("nncf")
        self._level = self._log.level
        self._log.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        self._log.setLevel(self._level)
        self._w.__exit__(*exc)
