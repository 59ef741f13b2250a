"""SimAM: a simple, parameter-free attention module.

Paper: Yang, Zhang, Li, Xie, "SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural
Networks", ICML 2021.

Per channel, with n = H·W − 1, μ the channel's spatial mean and σ² = Σ(x − μ)² / n:

    E⁻¹ = (x − μ)² / (4(σ² + λ)) + 0.5,       y = x ⊙ sigmoid(E⁻¹)       (λ = 1e-4)

No parameters.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class SimAM(nn.Module):
    """SimAM. x: (B, C, H, W) -> same shape. YAML: [SimAM, []] or [SimAM, [e_lambda]]; c1 is accepted, unused."""

    def __init__(self, c1: int | None = None, e_lambda: float = 1e-4):
        super().__init__()
        if not isinstance(e_lambda, (int, float)) or e_lambda <= 0:
            raise ValueError(f"SimAM e_lambda={e_lambda!r} must be a positive number, e.g. 1e-4")
        self.e_lambda = float(e_lambda)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[2] * x.shape[3] - 1
        d = (x - x.mean((2, 3), keepdim=True)).pow(2)
        energy_inv = d / (4 * (d.sum((2, 3), keepdim=True) / max(n, 1) + self.e_lambda)) + 0.5
        return x * torch.sigmoid(energy_inv)
