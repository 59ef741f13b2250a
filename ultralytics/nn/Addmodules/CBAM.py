"""Convolutional Block Attention Module (CBAM): channel attention, then spatial attention.

Paper: Woo, Park, Lee, Kweon, "CBAM: Convolutional Block Attention Module", ECCV 2018.

    Mc = sigmoid(MLP(AvgPool(x)) + MLP(MaxPool(x))),          x' = x ⊙ Mc
    Ms = sigmoid(f_k×k([mean_c(x'); max_c(x')])),              y  = x' ⊙ Ms

MLP: 1x1 convs C -> C/r -> C without bias, ReLU between, shared by both pools (r = reduction, 16; C/r is
at least 1). f: one k×k conv (kernel 7) from 2 maps to 1, without bias, as in the paper's formula.
Parameters: 2·C·(C/r) + 2·k².
"""

from __future__ import annotations

import torch
import torch.nn as nn


class ChannelAttention(nn.Module):
    """CBAM's channel gate: sigmoid(MLP(avg) + MLP(max)) per channel."""

    def __init__(self, c1: int, reduction: int = 16):
        super().__init__()
        c_ = max(c1 // reduction, 1)
        self.mlp = nn.Sequential(nn.Conv2d(c1, c_, 1, bias=False), nn.ReLU(), nn.Conv2d(c_, c1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(x.mean((2, 3), keepdim=True))
        mx = self.mlp(x.amax((2, 3), keepdim=True))
        return x * torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    """CBAM's spatial gate: sigmoid(conv_k([mean over channels; max over channels]))."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        if kernel_size not in (3, 5, 7):
            raise ValueError(f"CBAM kernel_size={kernel_size!r} must be 3, 5 or 7")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.conv(pooled))


class CBAM(nn.Module):
    """CBAM. x: (B, C, H, W) -> same shape. YAML: [CBAM, []] or [CBAM, [reduction, kernel_size]]."""

    def __init__(self, c1: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        if not isinstance(reduction, int) or reduction < 1:
            raise ValueError(f"CBAM reduction={reduction!r} must be a positive integer, e.g. 16")
        self.channel = ChannelAttention(c1, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
