"""Large Kernel Attention (LKA), the attention of the Visual Attention Network (VAN).

Paper: Guo, Lu, Liu, Liu, Cheng, Hu, "Visual Attention Network", Computational Visual Media 2023
(arXiv 2022).

    attn = W_1x1 · DWD_{k1×k1, dilation d}(DW_{k0×k0}(x)),      y = x ⊙ attn

All three convs carry a bias. VAN's LKA is k0 = 5, k1 = 7, d = 3 (5x5 depthwise, 7x7 depthwise with
dilation 3, 1x1): the geometry LSKA lists for k_size 23, the default here. Other k_size values take
LSKA's geometry for the same receptive field (LSKA_GEOMETRY), so LSKA(k) and LKA(k) differ only in
2-D versus separable 1-D depthwise kernels: LKA's depthwise parameters grow with k², LSKA's with k.
Parameters: C·(k0² + 1) + C·(k1² + 1) + C² + C.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ultralytics.nn.Addmodules.LSKA import lska_geometry


class LKA(nn.Module):
    """Large kernel attention. x: (B, C, H, W) -> same shape. YAML: [LKA, []] (VAN's) or [LKA, [k_size]]."""

    def __init__(self, dim: int, k_size: int = 23):
        super().__init__()
        k0, k1, d = lska_geometry(k_size)
        self.k_size = k_size
        self.conv0 = nn.Conv2d(dim, dim, k0, padding=k0 // 2, groups=dim)
        self.conv_spatial = nn.Conv2d(dim, dim, k1, padding=(k1 // 2) * d, groups=dim, dilation=d)
        self.conv1 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv1(self.conv_spatial(self.conv0(x)))
