"""The model summary line: layers, parameters, gradients and GFLOPs counted the thop way."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from ultralytics.utils import LOGGER


def count_flops(model: nn.Module, imgsz: int | tuple = 640, ch: int = 3) -> float:
    """GFLOPs of one forward pass at imgsz: 2 x multiply-accumulates counted the thop way.

    Counted: convolutions (a MAC per kernel weight per output element, one more for a bias), linear
    layers, batch-norm (4 per element: normalise and affine), nearest upsampling (1 per output element)
    and the two attention matmuls (q^T k and v attn). Activations and pooling count zero. The model is
    profiled as built (training mode: both head branches run) on a copy, so its BN statistics are kept;
    a fused model, which has only the one-to-one branch, is profiled in eval mode.
    """
    from ultralytics.nn.modules.block import Attention  # local: summary must not import the blocks at load

    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    macs = [0]

    def add(n: int) -> None:
        macs[0] += n

    rules = [
        (nn.Conv2d, lambda m, i, o: add(o.numel() * (m.weight[0].numel() + (m.bias is not None)))),
        (nn.modules.batchnorm._BatchNorm, lambda m, i, o: add(4 * i[0].numel())),
        (nn.Linear, lambda m, i, o: add(o.numel() * m.in_features)),
        (nn.Upsample, lambda m, i, o: add(o.numel())),
        (Attention, lambda m, i, o: add(m.num_heads * (i[0].shape[2] * i[0].shape[3]) ** 2
                                        * (m.key_dim + m.head_dim) * i[0].shape[0])),
    ]
    model = copy.deepcopy(model)
    head = model.model[-1] if hasattr(model, "model") else None
    model.train(getattr(head, "cv2", None) is not None)
    for m in model.modules():
        for kind, hook in rules:
            if isinstance(m, kind):
                m.register_forward_hook(hook)
    p = next(model.parameters())
    with torch.no_grad():
        model(torch.zeros(1, ch, h, w, device=p.device, dtype=p.dtype))
    return 2 * macs[0] / 1e9


def model_info(model: nn.Module, detailed: bool = False, verbose: bool = True, imgsz: int = 640):
    """Log `YOLOv10n summary: L layers, P parameters, G gradients, F GFLOPs`; return (L, P, G, F).

    Layers are distinct modules (the shared stateless SiLU counts once).
    """
    n_l = len(list(model.modules()))
    n_p = sum(p.numel() for p in model.parameters())
    n_g = sum(p.numel() for p in model.parameters() if p.requires_grad)
    flops = count_flops(model, imgsz)
    if detailed:
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
