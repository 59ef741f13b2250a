"""Efficient Multi-scale Attention (EMA) with cross-spatial learning.

Paper: Ouyang, He, Zhang, Lu, Zhou, Guo, Huang, "Efficient Multi-Scale Attention Module with Cross-Spatial
Learning", ICASSP 2023.

The C channels are split into G groups (G = groups, 8) of c = C/G; per group x_g (c, H, W):

    a_h, a_w = split(W1 · [mean_W(x_g); mean_H(x_g)ᵀ])                       (1x1 branch, c -> c)
    x1 = GN(x_g ⊙ sigmoid(a_h) ⊙ sigmoid(a_wᵀ)),      x2 = W3 · x_g           (3x3 branch)
    w = softmax(GAP(x1)) · x2 + softmax(GAP(x2)) · x1   (1 x HW: each branch's channel descriptor weights
                                                         the other's pixels: cross-spatial learning)
    y_g = x_g ⊙ sigmoid(w)

GN: GroupNorm with c groups over c channels (per-channel, so it has no running statistics to fold).
When G does not divide C, the largest divisor of C not above G is used, so every channel count builds.
Parameters: (c² + c) + (9c² + c) + 2c.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class EMA(nn.Module):
    """EMA. x: (B, C, H, W) -> same shape. YAML: [EMA, []] or [EMA, [groups]]."""

    def __init__(self, c1: int, groups: int = 8):
        super().__init__()
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"EMA groups={groups!r} must be a positive integer, e.g. 8")
        self.groups = max(g for g in range(1, min(groups, c1) + 1) if c1 % g == 0)
        c = c1 // self.groups
        self.gn = nn.GroupNorm(c, c)
        self.conv1x1 = nn.Conv2d(c, c, 1)
        self.conv3x3 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, ch, h, w = x.shape
        g = x.reshape(b * self.groups, ch // self.groups, h, w)
        a = self.conv1x1(torch.cat([g.mean(3, keepdim=True), g.mean(2, keepdim=True).transpose(2, 3)], 2))
        a_h, a_w = a.split([h, w], 2)
        x1 = self.gn(g * a_h.sigmoid() * a_w.transpose(2, 3).sigmoid())
        x2 = self.conv3x3(g)
        bg = b * self.groups

        def descriptor(t: torch.Tensor) -> torch.Tensor:  # (bg, 1, c): softmax over channels of the GAP
            return torch.softmax(t.mean((2, 3)).reshape(bg, 1, -1), -1)

        weights = descriptor(x1) @ x2.reshape(bg, -1, h * w) + descriptor(x2) @ x1.reshape(bg, -1, h * w)
        return (g * weights.reshape(bg, 1, h, w).sigmoid()).reshape(b, ch, h, w)
