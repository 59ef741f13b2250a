"""The one batch-preprocessing step of train, val and predict: uint8 images -> float 0..1 on the device."""

from __future__ import annotations

import torch

LABEL_KEYS = ("batch_idx", "cls", "bboxes")


def preprocess_images(img: torch.Tensor, device: torch.device | str, half: bool = False,
                      channels_last: bool = False) -> torch.Tensor:
    """img: (B, 3, H, W) uint8 (or float 0..255) -> (B, 3, H, W) float32 (float16 if half) 0..1 on `device`.

    The copy is non_blocking (overlaps with compute when the loader pinned the memory, CUDA only) and
    moves uint8, a quarter of the bytes of float32; the cast and the division by 255 run on the device.
    channels_last gives the NHWC memory layout that CUDA convolutions with AMP prefer.
    """
    img = img.to(device, non_blocking=True)
    img = (img.half() if half else img.float()).div_(255)
    return img.contiguous(memory_format=torch.channels_last) if channels_last else img


def preprocess_batch(batch: dict, device: torch.device | str, half: bool = False,
                     channels_last: bool = False) -> dict:
    """A collated batch {'img': (B, 3, H, W) uint8, 'batch_idx': (n,), 'cls': (n, 1), 'bboxes': (n, 4), ...}
    with the image preprocessed (see preprocess_images) and the label tensors on `device`; returns the batch."""
    batch["img"] = preprocess_images(batch["img"], device, half, channels_last)
    for k in LABEL_KEYS:
        if k in batch:
            batch[k] = batch[k].to(device, non_blocking=True)
    return batch
