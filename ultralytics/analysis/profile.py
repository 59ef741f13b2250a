"""`yolo profile`: the per-layer table (ultralytics/nn/layer_profile.py) and the summary line of one model.

    yolo profile model=yolov10n-LSKA.yaml imgsz=640 device=cpu
"""

from __future__ import annotations

from ultralytics.nn.layer_profile import format_table, profile_rows


def profile(model, imgsz=640, device="", runs: int = 5) -> tuple[list[dict], dict]:
    """`yolo profile`: print the per-row table and the summary line of a model (YAML, .pt or model) on `device`."""
    from ultralytics.analysis.rows import load_detection_model
    from ultralytics.nn.summary import model_info
    from ultralytics.utils import LOGGER
    from ultralytics.utils.torch_utils import select_device

    det = load_detection_model(model, select_device(device, verbose=False), freeze=False)
    rows, totals = profile_rows(det, imgsz, runs)
    LOGGER.info(format_table(rows, totals, imgsz, next(det.parameters()).device, runs))
    model_info(det, verbose=True, imgsz=imgsz if isinstance(imgsz, int) else max(imgsz))
    return rows, totals


def main(argv: list[str]) -> tuple[list[dict], dict]:
    """One line per YAML row (shape, params, GFLOPs, ms), e.g. model=yolov10n-LSKA.yaml imgsz=640."""
    from ultralytics.cfg import command_settings, parse_key_value_args

    args = command_settings(parse_key_value_args(argv), "profile")
    return profile(args.model, imgsz=args.imgsz, device=args.device)
