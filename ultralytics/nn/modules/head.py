"""The YOLOv10 detection head: v10Detect, with one-to-many and one-to-one branches."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn

from ultralytics.nn.modules.block import DFL
from ultralytics.nn.modules.conv import Conv
from ultralytics.utils.tal import dist2bbox, make_anchors


class v10Detect(nn.Module):
    """YOLOv10 head over the levels it is given: three (strides 8, 16, 32) or four with P2 (4, 8, 16, 32).

    Training: {'one2many': [p3, p4, p5], 'one2one': [p3, p4, p5]}, each (B, 4*reg_max + nc, H_i, W_i) (a P2
    model puts its stride-4 map first: [p2, p3, p4, p5]).
    Eval, `nms = False` (default): (B, max_det, 6) rows x1, y1, x2, y2 (input pixels), score, class from the
    one-to-one branch by top-k: no NMS (the YOLOv10 paper). Eval, `nms = True`: (B, A, 4 + nc) decoded boxes
    and class scores of the one-to-many branch, for ultralytics.utils.nms.non_max_suppression (Ultralytics
    8.4's default way of scoring YOLOv10). The one-to-one branch reads detached features, as in the paper.
    """

    max_det = 300

    def __init__(self, nc: int = 80, width_level=0, ch: tuple = ()):
        """nc classes; ch: input channels of each level (parse_model appends them to the YAML args).

        width_level: the input level whose channels set the hidden widths of every branch (box c2 =
        max(16, c // 4, 64), class c3 = max(c, min(nc, 100)) with c = ch[width_level]). Upstream uses level 0;
        a P2 model's YAML says `[nc, 1]` so its P3-P5 branches stay as wide as the base model's instead of
        being narrowed by the thinner P2 level. Called as v10Detect(nc, ch) too (width_level 0).
        """
        super().__init__()
        if isinstance(width_level, (list, tuple)):  # v10Detect(nc, ch): the 3-level YAMLs' [nc]
            width_level, ch = 0, width_level
        if not (isinstance(width_level, int) and 0 <= width_level < len(ch)):
            raise ValueError(f"width_level {width_level!r} must index one of the {len(ch)} input levels {list(ch)}")
        self.nc = nc
        self.nl = len(ch)
        self.reg_max = 16
        self.no = nc + self.reg_max * 4
        self.width_level = width_level
        self.register_buffer("stride", torch.zeros(self.nl), persistent=False)
        c = ch[width_level]
        c2 = max(16, c // 4, self.reg_max * 4)
        c3 = max(c, min(self.nc, 100))
        self.cv2 = nn.ModuleList(
            nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * self.reg_max, 1)) for x in ch
        )
        self.cv3 = nn.ModuleList(
            nn.Sequential(
                nn.Sequential(Conv(x, x, 3, g=x), Conv(x, c3, 1)),
                nn.Sequential(Conv(c3, c3, 3, g=c3), Conv(c3, c3, 1)),
                nn.Conv2d(c3, self.nc, 1),
            )
            for x in ch
        )
        self.dfl = DFL(self.reg_max)
        self.one2one_cv2 = copy.deepcopy(self.cv2)
        self.one2one_cv3 = copy.deepcopy(self.cv3)
        self._anchor_cache: tuple | None = None  # (shapes key, anchors, strides), rebuilt when shapes change
        self.nms = False  # eval output: False = one-to-one top-k; True = decoded one-to-many maps (NMS follows)

    def _branch(self, x: list[torch.Tensor], box: nn.ModuleList, cls: nn.ModuleList) -> list[torch.Tensor]:
        return [torch.cat((box[i](x[i]), cls[i](x[i])), 1) for i in range(self.nl)]

    def forward(self, x: list[torch.Tensor], raw: bool = False):
        """raw=True in eval mode also returns the raw maps of both branches (for the validation loss)."""
        one2one = self._branch([xi.detach() for xi in x], self.one2one_cv2, self.one2one_cv3)
        if self.training:
            return {"one2many": self._branch(x, self.cv2, self.cv3), "one2one": one2one}
        if self.nms and self.cv2 is None:
            raise RuntimeError("nms=True decodes the one-to-many head, which this fused model no longer has; "
                               "use nms=False (the one-to-one head) or an unfused model")
        one2many = self._branch(x, self.cv2, self.cv3) if self.cv2 is not None and (raw or self.nms) else None
        if self.nms:
            y = self.decode(one2many)
        else:
            y = self.postprocess(self.decode(one2one), self.max_det, self.nc)
        return (y, {"one2many": one2many, "one2one": one2one}) if raw else y

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """Raw maps -> (B, A, 4 + nc): xyxy boxes in input pixels and sigmoid class scores."""
        b = feats[0].shape[0]
        key = tuple(f.shape[2:] for f in feats) + (feats[0].device, feats[0].dtype)
        if self._anchor_cache is None or self._anchor_cache[0] != key:
            anchors, strides = make_anchors(feats, self.stride, 0.5)
            self._anchor_cache = (key, anchors.transpose(0, 1), strides.transpose(0, 1))
        _, anchors, strides = self._anchor_cache
        x = torch.cat([f.view(b, self.no, -1) for f in feats], 2)  # (B, no, A)
        box, cls = x.split((self.reg_max * 4, self.nc), 1)
        boxes = dist2bbox(self.dfl(box), anchors.unsqueeze(0), xywh=False, dim=1) * strides
        return torch.cat((boxes, cls.sigmoid()), 1).transpose(1, 2)

    @staticmethod
    def postprocess(preds: torch.Tensor, max_det: int, nc: int) -> torch.Tensor:
        """(B, A, 4 + nc) -> (B, k, 6) with k = min(max_det, A): the k best (anchor, class) pairs."""
        b, a, _ = preds.shape
        boxes, scores = preds.split([4, nc], dim=-1)
        k = min(max_det, a)
        idx = scores.amax(dim=-1).topk(k, dim=1).indices  # best anchors first: (B, k)
        boxes = boxes.gather(1, idx.unsqueeze(-1).expand(-1, -1, 4))
        scores = scores.gather(1, idx.unsqueeze(-1).expand(-1, -1, nc))
        scores, flat = scores.flatten(1).topk(k, dim=1)  # best (anchor, class) pairs among them
        anchor = flat // nc
        boxes = boxes.gather(1, anchor.unsqueeze(-1).expand(-1, -1, 4))
        return torch.cat((boxes, scores.unsqueeze(-1), (flat % nc).unsqueeze(-1).to(boxes.dtype)), dim=-1)

    def bias_init(self) -> None:
        """Initial biases: box logits 1.0; class logits log(5 / nc / (640 / s)^2) (about 5 objects per image)."""
        for box_branch, cls_branch in ((self.cv2, self.cv3), (self.one2one_cv2, self.one2one_cv3)):
            for a, b, s in zip(box_branch, cls_branch, self.stride.tolist()):
                a[-1].bias.data[:] = 1.0
                b[-1].bias.data[: self.nc] = math.log(5 / self.nc / (640 / s) ** 2)

    def fuse(self) -> None:
        """Drop the one-to-many branches: inference uses the one-to-one branch only (unless nms is set)."""
        if not self.nms:
            self.cv2 = self.cv3 = None
