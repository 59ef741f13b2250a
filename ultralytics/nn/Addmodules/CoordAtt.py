"""Coordinate Attention (CoordAtt): channel attention factorised along height and width.

Paper: Hou, Zhou, Feng, "Coordinate Attention for Efficient Mobile Network Design", CVPR 2021.

    z_h = mean over W of x  (B, C, H, 1),     z_w = mean over H of x  (B, C, 1, W)
    f = h_swish(BN(W1 · [z_h; z_wᵀ]))          (concatenated along the spatial axis, C -> m channels)
    g_h = sigmoid(W_h · f_h),  g_w = sigmoid(W_w · f_wᵀ),       y = x ⊙ g_h ⊙ g_w

m = max(8, C / r), r = reduction (32). W1 is the tree's Conv (1x1 without bias, BatchNorm eps 1e-3,
momentum 0.03, Hardswish), so model.fuse() folds its BN; W_h, W_w are 1x1 convs m -> C with bias.
Parameters: C·m + 2m + 2(m·C + C).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ultralytics.nn.Addmodules._norm import conv_bn


class CoordAtt(nn.Module):
    """Coordinate attention. x: (B, C, H, W) -> same shape. YAML: [CoordAtt, []] or [CoordAtt, [c2, reduction]].

    c2 (output channels) defaults to the input's and must equal it: the output gates the input.
    """

    def __init__(self, c1: int, c2: int | None = None, reduction: int = 32):
        super().__init__()
        c2 = c1 if c2 is None else c2
        if c2 != c1:
            raise ValueError(f"CoordAtt output channels c2={c2} must equal its input channels {c1} (the output "
                             "gates the input); leave c2 out of the YAML args")
        if not isinstance(reduction, int) or reduction < 1:
            raise ValueError(f"CoordAtt reduction={reduction!r} must be a positive integer, e.g. 32")
        mip = max(8, c1 // reduction)
        self.cv1 = conv_bn(c1, mip, 1, act=nn.Hardswish())
        self.conv_h = nn.Conv2d(mip, c2, 1)
        self.conv_w = nn.Conv2d(mip, c2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        z_h = x.mean(3, keepdim=True)  # (B, C, H, 1)
        z_w = x.mean(2, keepdim=True).transpose(2, 3)  # (B, C, W, 1)
        f = self.cv1(torch.cat([z_h, z_w], 2))
        f_h, f_w = f.split([h, w], 2)
        return x * torch.sigmoid(self.conv_h(f_h)) * torch.sigmoid(self.conv_w(f_w.transpose(2, 3)))
