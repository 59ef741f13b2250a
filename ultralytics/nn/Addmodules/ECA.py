"""Efficient Channel Attention (ECA).

Paper: Wang, Wu, Zhu, Li, Zuo, Hu, "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural
Networks", CVPR 2020.

    t = int(|(log2(C) + b) / γ|),  k = t if t is odd else t + 1   (γ = 2, b = 1)
    s = sigmoid(conv1d_k(GAP(x)))   (one 1-D conv across the channel axis, no bias),   y = x ⊙ s

Parameters: k (C = 64 -> k 3, C = 256 -> k 5).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


def eca_kernel(c: int, gamma: int = 2, b: int = 1) -> int:
    """The adaptive kernel size: t = int(|(log2 C + b) / γ|), made odd (t + 1 when even)."""
    t = int(abs((math.log2(c) + b) / gamma))
    return t if t % 2 else t + 1


class ECA(nn.Module):
    """ECA. x: (B, C, H, W) -> same shape. YAML: [ECA, []] (adaptive k) or [ECA, [k_size]]."""

    def __init__(self, c1: int, k_size: int | None = None, gamma: int = 2, b: int = 1):
        super().__init__()
        k = eca_kernel(c1, gamma, b) if k_size is None else k_size
        if not isinstance(k, int) or k < 1 or k % 2 == 0:
            raise ValueError(f"ECA k_size={k!r} must be a positive odd integer")
        self.k = k
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.conv(self.pool(x).flatten(1).unsqueeze(1))  # (B, 1, C): channels as a 1-D sequence
        return x * torch.sigmoid(s).transpose(1, 2).unsqueeze(-1)  # (B, C, 1, 1)
