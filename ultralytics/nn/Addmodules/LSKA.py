"""Large Separable Kernel Attention (LSKA) and PSALSKA: PSA whose attention is LSKA.

LSKA (Lau et al., 2023) splits the large-kernel attention's 2-D depthwise kernels into 1-D horizontal
and vertical kernels, so its cost grows linearly with the kernel size k instead of quadratically.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ultralytics.nn.modules.block import PSA

# k_size -> (k0: plain 1-D kernel, k1: dilated 1-D kernel, d: dilation); k ~ d * (k1 - 1) + k0 rounded up.
LSKA_GEOMETRY: dict[int, tuple[int, int, int]] = {
    7: (3, 3, 2),
    11: (3, 5, 2),
    23: (5, 7, 3),
    35: (5, 11, 3),
    41: (5, 13, 3),
    53: (5, 17, 3),
}


def lska_geometry(k_size: int) -> tuple[int, int, int]:
    """(k0, k1, dilation) for a supported LSKA kernel size; ValueError listing the sizes otherwise."""
    if k_size not in LSKA_GEOMETRY:
        sizes = ", ".join(str(k) for k in LSKA_GEOMETRY)
        raise ValueError(f"LSKA k_size={k_size!r} is not supported; choose one of {sizes}")
    return LSKA_GEOMETRY[k_size]


class LSKA(nn.Module):
    """Large separable kernel attention. x: (B, dim, H, W) -> x * attention(x), same shape."""

    def __init__(self, dim: int, k_size: int = 7):
        super().__init__()
        k0, k1, d = lska_geometry(k_size)
        p0, p1 = (k0 - 1) // 2, (k1 - 1) // 2 * d
        self.k_size = k_size
        self.conv0h = nn.Conv2d(dim, dim, (1, k0), padding=(0, p0), groups=dim)
        self.conv0v = nn.Conv2d(dim, dim, (k0, 1), padding=(p0, 0), groups=dim)
        self.conv_spatial_h = nn.Conv2d(dim, dim, (1, k1), padding=(0, p1), groups=dim, dilation=(1, d))
        self.conv_spatial_v = nn.Conv2d(dim, dim, (k1, 1), padding=(p1, 0), groups=dim, dilation=(d, 1))
        self.conv1 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.conv0v(self.conv0h(x))  # local 1-D depthwise convs
        attn = self.conv_spatial_v(self.conv_spatial_h(attn))  # dilated 1-D depthwise convs: long range
        return x * self.conv1(attn)  # pointwise channel mixing, then gate the input


class PSALSKA(PSA):
    """PSA with its multi-head self-attention replaced by LSKA(c, k_size), c = c1 * e.

    The submodule names (cv1, cv2, attn, ffn) are PSA's, so PSA weights transfer where shapes agree.
    """

    def __init__(self, c1: int, c2: int, e: float = 0.5, k_size: int = 7):
        super().__init__(c1, c2, e)
        self.attn = LSKA(self.c, k_size)
