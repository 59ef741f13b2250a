"""Analysis tools for attention research, one file per tool (import the one you need).

    ultralytics.analysis.benchmark latency of models side by side (`yolo benchmark`, YOLO.benchmark)
    ultralytics.analysis.erf       the effective receptive field (RepLKNet's measure) and area ratios
    ultralytics.analysis.heatmap   class-activation heatmaps (LayerCAM, Grad-CAM) of the one-to-one head
    ultralytics.analysis.profile   `yolo profile`: the per-layer table of nn/layer_profile.py for a model file
    ultralytics.analysis.rows      what they share: model loading, layer checks, running rows

They import nn (and cfg, data, utils); nothing in nn, data or utils imports them (tests/test_imports.py).
"""
