"""Prediction results: one Results per image, with its Boxes mapped to the original image size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ultralytics.utils.ops import xyxy2xywh


class Boxes:
    """Detections of one image: data (N, 6) = x1, y1, x2, y2 (original pixels), conf, cls."""

    def __init__(self, data: torch.Tensor, orig_shape: tuple[int, int]):
        self.data = data
        self.orig_shape = orig_shape

    def __len__(self) -> int:
        return len(self.data)

    @property
    def xyxy(self) -> torch.Tensor:
        return self.data[:, :4]

    @property
    def conf(self) -> torch.Tensor:
        return self.data[:, 4]

    @property
    def cls(self) -> torch.Tensor:
        return self.data[:, 5]

    @property
    def xywh(self) -> torch.Tensor:
        return xyxy2xywh(self.xyxy)

    @property
    def xyxyn(self) -> torch.Tensor:
        h, w = self.orig_shape
        return self.xyxy / torch.tensor([w, h, w, h], dtype=self.data.dtype, device=self.data.device)

    @property
    def xywhn(self) -> torch.Tensor:
        h, w = self.orig_shape
        return self.xywh / torch.tensor([w, h, w, h], dtype=self.data.dtype, device=self.data.device)

    def cpu(self) -> "Boxes":
        return Boxes(self.data.cpu(), self.orig_shape)


class Results:
    """The detections of one image: `.boxes`, `.names`, `.orig_shape`, `.orig_img` (BGR), `.path`, `.speed`."""

    def __init__(self, orig_img: np.ndarray, path: str, names: dict[int, str], boxes: torch.Tensor):
        self.orig_img = orig_img
        self.orig_shape = tuple(orig_img.shape[:2])
        self.path = path
        self.names = names
        self.boxes = Boxes(boxes, self.orig_shape)
        self.speed: dict[str, float] = {}
        self.save_path: Path | None = None

    def __len__(self) -> int:
        return len(self.boxes)

    def plot(self, line_width: int | None = None, labels: bool = True, conf: bool = True) -> np.ndarray:
        """The image (BGR) with its boxes drawn."""
        from ultralytics.utils.plotting import draw_detections

        b = self.boxes.cpu()
        names = self.names if labels else {k: "" for k in self.names}
        return draw_detections(self.orig_img, b.xyxy.numpy(), b.cls.numpy().astype(int),
                               b.conf.numpy() if conf else None, names, line_width=line_width)

    def to_txt_lines(self, save_conf: bool = False) -> list[str]:
        """YOLO label lines: `cls cx cy w h [conf]`, normalised to the original image."""
        b = self.boxes.cpu()
        lines = []
        for c, xywh, cf in zip(b.cls.tolist(), b.xywhn.tolist(), b.conf.tolist()):
            line = f"{int(c)} " + " ".join(f"{v:.6f}" for v in xywh)
            lines.append(line + (f" {cf:.6f}" if save_conf else ""))
        return lines

    def summary(self) -> str:
        """'2 circles, 1 square' style count string."""
        if not len(self):
            return "(no detections)"
        counts = torch.bincount(self.boxes.cls.int().cpu())
        parts = [f"{int(n)} {self.names.get(c, c)}{'s' * (n > 1)}" for c, n in enumerate(counts.tolist()) if n]
        return ", ".join(parts)
