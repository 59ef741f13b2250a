"""Analysis tools for attention research, one file per tool (import the one you need).

    ultralytics.analysis.erf       the effective receptive field (RepLKNet's measure) and area ratios
    ultralytics.analysis.heatmap   class-activation heatmaps (LayerCAM, Grad-CAM) of the one-to-one head
    ultralytics.analysis.profile   `yolo profile`: the per-layer table of nn/layer_profile.py for a model file
    ultralytics.analysis.rows      what they share: model loading, layer checks, running rows
"""
