"""Prediction results: one Results per image, with its Boxes mapped to the original image size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ultralytics.utils.ops import xyxy2xywh


class Boxes:
    """Detections of one image: data (N, 6) = x1, y1, x2, y2 (original pixels), conf, cls.

    Properties (upstream names): xyxy (N, 4), conf (N,), cls (N,), xywh (N, 4) centre and size,
    xyxyn / xywhn (N, 4) normalised by the original width and height.
    """

    def __init__(self, data: torch.Tensor | np.ndarray, orig_shape: tuple[int, int]):
        data = torch.as_tensor(data) if isinstance(data, np.ndarray) else data
        if data.ndim != 2 or data.shape[1] != 6:
            raise ValueError(f"Boxes expects (N, 6) x1, y1, x2, y2, conf, cls; got shape {tuple(data.shape)}")
        self.data = data
        self.orig_shape = tuple(orig_shape)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, idx) -> "Boxes":
        """A subset of the boxes (int, slice, bool mask or index tensor)."""
        return Boxes(self.data[idx].reshape(-1, 6), self.orig_shape)

    def __repr__(self) -> str:
        return f"Boxes(n={len(self)}, orig_shape={self.orig_shape})\n{self.data}"

    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

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

    def _wh_scale(self) -> torch.Tensor:
        h, w = self.orig_shape
        return torch.tensor([w, h, w, h], dtype=self.data.dtype, device=self.data.device)

    @property
    def xyxyn(self) -> torch.Tensor:
        return self.xyxy / self._wh_scale()

    @property
    def xywhn(self) -> torch.Tensor:
        return self.xywh / self._wh_scale()

    def cpu(self) -> "Boxes":
        return Boxes(self.data.cpu(), self.orig_shape)

    def numpy(self) -> np.ndarray:
        """The (N, 6) data as a numpy array."""
        return self.data.detach().cpu().numpy()


class Results:
    """The detections of one image: `.boxes`, `.names`, `.orig_shape` (h, w), `.orig_img` (BGR), `.path`, `.speed`.

    `.plot()` draws them, `.save(file)` writes the drawing, `.save_txt(file)` writes YOLO label lines,
    `.summary()` lists them as dicts, `.to_json()` as JSON, `.verbose()` counts them per class.
    """

    def __init__(self, orig_img: np.ndarray, path: str, names: dict[int, str], boxes: torch.Tensor):
        self.orig_img = orig_img
        self.orig_shape = tuple(orig_img.shape[:2])
        self.path = path
        self.names = names
        self.boxes = Boxes(boxes, self.orig_shape)
        self.speed: dict[str, float] = {}
        self.save_path: Path | None = None
        self.frame: int | None = None  # index of this frame in its video (0-based); None for an image

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, idx) -> "Results":
        """A Results holding a subset of the boxes (same image)."""
        r = Results(self.orig_img, self.path, self.names, self.boxes[idx].data)
        r.speed, r.frame = dict(self.speed), self.frame
        return r

    def __repr__(self) -> str:
        return f"Results({self.path!r}, orig_shape={self.orig_shape}, {self.verbose().rstrip(', ')})"

    def plot(self, line_width: int | None = None, labels: bool = True, conf: bool = True) -> np.ndarray:
        """The image (BGR uint8 (H, W, 3)) with its boxes drawn; the original image is not changed."""
        from ultralytics.utils.plotting import draw_detections

        b = self.boxes.cpu()
        names = self.names if labels else {k: "" for k in self.names}
        return draw_detections(self.orig_img, b.xyxy.numpy(), b.cls.numpy().astype(int),
                               b.conf.numpy() if conf else None, names, line_width=line_width)

    def save(self, filename: str | Path | None = None, **plot_kwargs) -> Path:
        """Write the annotated image (default: results_<name>.jpg in the working directory); returns the path."""
        import cv2

        from ultralytics.utils import UserError

        path = Path(filename) if filename is not None else Path(f"results_{Path(self.path).stem}.jpg")
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), self.plot(**plot_kwargs)):
            raise UserError(f"could not write the annotated image {path} (unknown suffix or folder not writable)")
        self.save_path = path
        return path

    def to_txt_lines(self, save_conf: bool = False) -> list[str]:
        """YOLO label lines: `cls cx cy w h [conf]`, normalised to the original image."""
        b = self.boxes.cpu()
        lines = []
        for c, xywh, cf in zip(b.cls.tolist(), b.xywhn.tolist(), b.conf.tolist()):
            line = f"{int(c)} " + " ".join(f"{v:.6f}" for v in xywh)
            lines.append(line + (f" {cf:.6f}" if save_conf else ""))
        return lines

    def save_txt(self, txt_file: str | Path, save_conf: bool = False) -> Path:
        """Write the YOLO label lines to txt_file (folder created); returns the path."""
        path = Path(txt_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = self.to_txt_lines(save_conf)
        path.write_text("".join(line + "\n" for line in lines))
        return path

    def verbose(self) -> str:
        """Upstream's log string: '2 circles, 1 square, ' (or '(no detections), ')."""
        if not len(self):
            return "(no detections), "
        counts = torch.bincount(self.boxes.cls.int().cpu())
        return "".join(f"{int(n)} {self.names.get(c, c)}{'s' * (n > 1)}, " for c, n in enumerate(counts.tolist()) if n)

    def summary(self, normalize: bool = False, decimals: int = 5) -> list[dict]:
        """One dict per detection: name, class, confidence, box {x1, y1, x2, y2} (pixels, or 0-1 if normalize)."""
        b = self.boxes.cpu()
        boxes = (b.xyxyn if normalize else b.xyxy).tolist()
        return [{"name": str(self.names.get(int(c), int(c))), "class": int(c), "confidence": round(float(s), decimals),
                 "box": dict(zip(("x1", "y1", "x2", "y2"), (round(v, decimals) for v in box)))}
                for box, s, c in zip(boxes, b.conf.tolist(), b.cls.tolist())]

    def to_json(self, normalize: bool = False, decimals: int = 5) -> str:
        """summary() as a JSON string."""
        return json.dumps(self.summary(normalize, decimals), indent=2)

    def cpu(self) -> "Results":
        r = Results(self.orig_img, self.path, self.names, self.boxes.data.cpu())
        r.speed, r.save_path, r.frame = dict(self.speed), self.save_path, self.frame
        return r
