"""Triplet Attention: three gates over the (C, W), (H, C) and (H, W) planes, averaged.

Paper: Misra, Nalamada, Arasanipalai, Hou, "Rotate to Attend: Convolutional Triplet Attention Module",
WACV 2021.

For a view x̂ of x rotated so that one of C, H, W is the pooled axis:

    Z(x̂) = [max over the axis; mean over the axis]                          (2 maps)
    gate(x̂) = x̂ ⊙ sigmoid(BN(conv_k×k(Z(x̂))))                               (k = 7, 2 -> 1)
    y = (rot⁻¹ gate(x rotated C<->H) + rot⁻¹ gate(x rotated C<->W) + gate(x)) / 3

Each gate's conv is the tree's Conv (no bias, BatchNorm eps 1e-3, momentum 0.03, no activation), so
model.fuse() folds its BN. Parameters: 3·(2k² + 2) = 300, whatever C is.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ultralytics.nn.Addmodules._norm import conv_bn


class AttentionGate(nn.Module):
    """Z-pool (max and mean over dim 1) -> k×k Conv+BN to one map -> sigmoid, gating the input."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = conv_bn(2, 1, kernel_size, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.conv(z))


class TripletAttention(nn.Module):
    """Triplet attention. x: (B, C, H, W) -> same shape. YAML: [TripletAttention, []] or [.., [kernel_size]].

    c1 is accepted (the `same` rule passes it) and not needed: the parameters do not depend on C.
    """

    def __init__(self, c1: int | None = None, kernel_size: int = 7, no_spatial: bool = False):
        super().__init__()
        if kernel_size not in (3, 5, 7):
            raise ValueError(f"TripletAttention kernel_size={kernel_size!r} must be 3, 5 or 7")
        self.cw = AttentionGate(kernel_size)  # pools over H: the (C, W) plane
        self.hc = AttentionGate(kernel_size)  # pools over W: the (H, C) plane
        self.hw = None if no_spatial else AttentionGate(kernel_size)  # pools over C: the (H, W) plane

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y_cw = self.cw(x.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)
        y_hc = self.hc(x.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)
        if self.hw is None:
            return (y_cw + y_hc) / 2
        return (y_cw + y_hc + self.hw(x)) / 3
