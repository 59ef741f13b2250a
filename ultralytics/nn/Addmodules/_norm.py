"""Norm helpers shared by the attention modules: BatchNorm as the rest of the model has it (eps 1e-3, momentum 0.03)."""

from __future__ import annotations

import torch.nn as nn

from ultralytics.nn.modules import Conv

BN_EPS, BN_MOMENTUM = 1e-3, 0.03  # what tasks.initialize_weights sets on every BatchNorm2d of a model


def conv_bn(c1: int, c2: int, k: int = 1, act: bool | nn.Module = False) -> Conv:
    """The tree's Conv (conv without bias -> BatchNorm2d -> act), its BN with the model's eps and momentum.

    Being a Conv, DetectionModel.fuse() folds its BN into the conv like every other Conv of the model.
    """
    m = Conv(c1, c2, k, act=act)
    m.bn.eps, m.bn.momentum = BN_EPS, BN_MOMENTUM
    return m
