"""Squeeze-and-Excitation (SE).

Paper: Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018.

    s = sigmoid(W2 · ReLU(W1 · GAP(x) + b1) + b2),   y = x ⊙ s   (s broadcast over H and W)

W1: C -> C/r, W2: C/r -> C (1x1 convs with bias), r = reduction (16); C/r is at least 1, so any C builds.
Parameters: 2·C·(C/r) + C/r + C.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class SE(nn.Module):
    """Squeeze-and-Excitation. x: (B, C, H, W) -> same shape. YAML: [SE, []] or [SE, [reduction]]."""

    def __init__(self, c1: int, reduction: int = 16):
        super().__init__()
        if not isinstance(reduction, int) or reduction < 1:
            raise ValueError(f"SE reduction={reduction!r} must be a positive integer, e.g. 16")
        c_ = max(c1 // reduction, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c1, c_, 1)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(c_, c1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(self.act(self.fc1(self.pool(x)))))
