"""Convolution building blocks: Conv (conv-BN-SiLU), Concat, RepVGGDW and BN folding."""

from __future__ import annotations

import torch
import torch.nn as nn

# The default activation is one stateless module shared by every Conv: it holds no parameters, and
# sharing it makes the model summary count it once, as upstream Ultralytics does.
_SHARED_SILU = nn.SiLU()


def autopad(k: int, p: int | None = None, d: int = 1) -> int:
    """Padding that keeps the spatial size for an odd kernel k with dilation d."""
    if p is not None:
        return p
    k = d * (k - 1) + 1 if d > 1 else k
    return k // 2


class Conv(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> SiLU. x: (B, c1, H, W) -> (B, c2, H/s, W/s)."""

    default_act = _SHARED_SILU

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, p: int | None = None, g: int = 1,
                 d: int = 1, act: bool | nn.Module = True):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p, d), groups=g, dilation=d, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = self.default_act if act is True else act if isinstance(act, nn.Module) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    def forward_fuse(self, x: torch.Tensor) -> torch.Tensor:
        """Forward after fuse(): the BN has been folded into the conv."""
        return self.act(self.conv(x))

    def fuse(self) -> None:
        """Fold the BatchNorm into the conv (eval-time only) and drop it."""
        self.conv = fuse_conv_and_bn(self.conv, self.bn)
        del self.bn
        self.forward = self.forward_fuse


class Concat(nn.Module):
    """Concatenate a list of tensors along `dimension` (channels by default)."""

    def __init__(self, dimension: int = 1):
        super().__init__()
        self.d = dimension

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(x, self.d)


class RepVGGDW(nn.Module):
    """Depthwise 7x7 + depthwise 3x3 branches summed, then SiLU; fuse() merges them into one 7x7."""

    def __init__(self, ed: int):
        super().__init__()
        self.conv = Conv(ed, ed, 7, 1, 3, g=ed, act=False)
        self.conv1 = Conv(ed, ed, 3, 1, 1, g=ed, act=False)
        self.dim = ed
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x) + self.conv1(x))

    def forward_fuse(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold both BNs, pad the 3x3 kernel to 7x7 and add it into the 7x7 conv; drop the 3x3 branch."""
        conv = fuse_conv_and_bn(self.conv.conv, self.conv.bn)
        conv1 = fuse_conv_and_bn(self.conv1.conv, self.conv1.bn)
        conv.weight.add_(nn.functional.pad(conv1.weight, [2, 2, 2, 2]))
        conv.bias.add_(conv1.bias)
        self.conv = conv
        del self.conv1
        self.forward = self.forward_fuse


@torch.no_grad()
def fuse_conv_and_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Return a Conv2d with bias equal to conv followed by bn in eval mode."""
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      dilation=conv.dilation, groups=conv.groups, bias=True).requires_grad_(False)
    fused = fused.to(conv.weight.device)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return fused
