"""The model summary line: layers, parameters, gradients and GFLOPs (thop's count, as the field prints it)."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from ultralytics.utils import LOGGER


def count_flops(model: nn.Module, imgsz: int | tuple = 640, ch: int = 3) -> float:
    """GFLOPs of one forward pass at imgsz, as the field prints them (thop's count, Ultralytics' convention).

    The thop package counts multiply-accumulates per module (convolutions with their bias, batch-norm,
    upsampling, ...; matmuls written in forward code are not modules and count zero); GFLOPs = 2 x MACs.
    The model is profiled in eval mode with both head branches run (a fused model has only the one-to-one
    branch), on a copy (BN statistics untouched), at a stride-size square input (the largest stride, at
    least 32), and the count is scaled to imgsz by area: yolov10n 8.74 at 640, fused 6.70. Returns 0.0
    when thop is not installed.
    """
    try:
        import thop
    except ImportError:  # pragma: no cover - thop is a listed dependency
        return 0.0
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    stride = max(int(getattr(model, "stride", torch.tensor([32])).max()), 32)
    model = copy.deepcopy(model).eval()
    head = model.model[-1] if hasattr(model, "model") else None
    both = getattr(head, "cv2", None) is not None  # unfused: run the one-to-many branch too
    p = next(model.parameters())
    x = torch.zeros(1, ch, stride, stride, device=p.device, dtype=p.dtype)
    with torch.no_grad():
        macs = thop.profile(_BothBranches(model) if both else model, inputs=(x,), verbose=False)[0]
    return 2 * macs / 1e9 * (h / stride) * (w / stride)


class _BothBranches(nn.Module):
    """Calls a DetectionModel with raw=True, so that the eval forward runs both head branches."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        return self.model(x, raw=True)


def model_info(model: nn.Module, detailed: bool = False, verbose: bool = True, imgsz: int = 640):
    """Log `YOLOv10n summary: L layers, P parameters, G gradients, F GFLOPs`; return (L, P, G, F).

    Layers are distinct modules (the shared stateless SiLU counts once).
    """
    n_l = len(list(model.modules()))
    n_p = sum(p.numel() for p in model.parameters())
    n_g = sum(p.numel() for p in model.parameters() if p.requires_grad)
    flops = count_flops(model, imgsz)
    if detailed and isinstance(getattr(model, "model", None), nn.Sequential):  # one line per YAML row
        from ultralytics.nn.layer_profile import profile_table

        LOGGER.info(profile_table(model, imgsz))
    elif detailed:
        LOGGER.info(f"{'layer':>5} {'name':>40} {'gradient':>9} {'parameters':>12} {'shape':>20}")
        for i, (name, p) in enumerate(model.named_parameters()):
            LOGGER.info(f"{i:5g} {name:>40} {str(p.requires_grad):>9} {p.numel():12g} {str(list(p.shape)):>20}")
    if verbose:
        LOGGER.info(f"{summary_name(model)} summary{' (fused)' if _fused(model) else ''}: {n_l:,} layers, "
                    f"{n_p:,} parameters, {n_g:,} gradients, {flops:.1f} GFLOPs")
    return n_l, n_p, n_g, flops


def summary_name(model: nn.Module) -> str:
    """'YOLOv10n' for yolov10n*.yaml models (the scale letter kept), else the YAML's stem."""
    yaml = getattr(model, "yaml", {}) or {}
    stem = str(yaml.get("yaml_file", "model")).replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    if stem.lower().startswith("yolov10"):
        rest = stem[7:]
        scale = yaml.get("scale") or ""
        suffix = rest[1:] if rest[:1] in "nsmblx" and rest[:1] else rest
        return f"YOLOv10{scale}{suffix}"
    return stem


def _fused(model: nn.Module) -> bool:
    return not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
