"""Knowledge distillation as a criterion: the detection loss plus a score-weighted L2 loss on neck features.

    criterion = DistillLoss(v10DetectLoss(head, args), student, teacher, weight=args.dis)
    loss, items = criterion(student(img), batch)          # the trainer's step, unchanged

The teacher (a trained, larger model with the same classes) is frozen and kept in eval mode on the student's
device; it lives inside the criterion, never in the model, so checkpoints hold the student only. Features
are the maps the head reads (forward pre-hooks on the student's and the teacher's heads: P3, P4, P5). A
1x1 conv per level (the projector, student channels -> teacher channels, identity where they agree)
aligns them, and the loss per level is

    L_i = sum_hw w * mean_c (proj(s) - t)^2 / sum_hw w,    w = max over classes of the teacher's score (B, 1, H, W)

so locations where the teacher sees an object count most. The distillation term is mean_i L_i, times the
weight `dis` and the batch size (the detection loss is a sum over the batch too). Validation (no gradient)
gets the detection loss alone.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ultralytics.utils import UserError


class _HeadInputs:
    """A forward pre-hook that keeps the list of maps a head reads: [(B, C_i, H_i, W_i)] for each level."""

    def __init__(self, head: nn.Module):
        self.feats: list[torch.Tensor] | None = None
        self.handle = head.register_forward_pre_hook(self)

    def __call__(self, module, args):
        self.feats = list(args[0])

    def remove(self) -> None:
        self.handle.remove()


def head_channels(model: nn.Module, imgsz: int = 64) -> list[int]:
    """Channels of the maps the model's head reads (one blank forward)."""
    hook = _HeadInputs(model.model[-1])
    was = model.training
    try:
        with torch.no_grad():
            p = next(model.parameters())
            model.eval()(torch.zeros(1, 3, imgsz, imgsz, device=p.device, dtype=p.dtype))
    finally:
        model.train(was)
        hook.remove()
    return [f.shape[1] for f in hook.feats]


def projector(c_student: list[int], c_teacher: list[int]) -> nn.ModuleList:
    """One 1x1 conv (with bias) per level, student -> teacher channels; the identity where the counts agree."""
    convs = nn.ModuleList()
    for cs, ct in zip(c_student, c_teacher):
        conv = nn.Conv2d(cs, ct, 1)
        if cs == ct:
            with torch.no_grad():
                conv.weight.copy_(torch.eye(cs).view(cs, cs, 1, 1))
                conv.bias.zero_()
        convs.append(conv)
    return convs


def check_teacher(student_names: dict, teacher_names: dict, student_imgsz, teacher_imgsz, path: str) -> None:
    """UserError when the teacher has other class names or was trained at another image size."""
    s, t = {int(k): str(v) for k, v in student_names.items()}, {int(k): str(v) for k, v in teacher_names.items()}
    if s != t:
        diff = [f"{k}: {s.get(k)!r} vs {t.get(k)!r}" for k in sorted(set(s) | set(t)) if s.get(k) != t.get(k)]
        raise UserError(f"distill_model='{path}': its class names differ from the dataset's "
                        f"({', '.join(diff[:3])}{' ...' if len(diff) > 3 else ''}); the teacher must be trained on "
                        "the same classes")
    if teacher_imgsz is not None and teacher_imgsz != student_imgsz:
        raise UserError(f"distill_model='{path}' was trained at imgsz={teacher_imgsz}, this run uses "
                        f"imgsz={student_imgsz}; train the student at the teacher's size (imgsz={teacher_imgsz})")


class DistillLoss(nn.Module):
    """The detection criterion plus `weight` x the score-weighted feature L2 between student and teacher.

    base: the detection criterion, (preds, batch) -> (loss, items (n,)); student, teacher: DetectionModels.
    The items gain one more entry, the weighted distillation term ('distill' in the trainer's loss_names).
    """

    def __init__(self, base, student: nn.Module, teacher: nn.Module, weight: float = 6.0, imgsz: int = 64):
        super().__init__()
        self.base, self.weight = base, float(weight)
        self.teacher = [teacher.eval().requires_grad_(False)]  # a list: not a submodule, not in state_dict
        self.proj = projector(head_channels(student, imgsz), head_channels(teacher, imgsz))
        self.proj.to(next(student.parameters()).device)
        self.s_hook = _HeadInputs(student.model[-1])
        self.t_hook = _HeadInputs(teacher.model[-1])
        self.last = 0.0  # the last weighted distillation term (per image), for logging

    def __getattr__(self, name):  # set_epoch, hyp, ... of the detection criterion
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.__dict__["base"], name)

    def feature_loss(self, s_feats: list[torch.Tensor], t_feats: list[torch.Tensor],
                     t_maps: list[torch.Tensor], nc: int) -> torch.Tensor:
        """mean over levels of the score-weighted channel-mean squared error (a scalar)."""
        losses = []
        for proj, s, t, m in zip(self.proj, s_feats, t_feats, t_maps):
            w = m[:, -nc:].float().sigmoid().amax(1, keepdim=True)  # (B, 1, H, W) teacher's best class score
            d = (proj(s.float()) - t.float()).pow(2).mean(1, keepdim=True)  # (B, 1, H, W)
            losses.append((w * d).sum() / w.sum().clamp(min=1e-6))
        return torch.stack(losses).mean()

    def forward(self, preds, batch: dict):
        loss, items = self.base(preds, batch)
        if not torch.is_grad_enabled() or self.s_hook.feats is None:  # validation: the detection loss alone
            return loss, torch.cat((items, items.new_zeros(1)))  # validation: no distillation term
        teacher = self.teacher[0]
        with torch.no_grad():
            _, raw = teacher(batch["img"], raw=True)
        d = self.feature_loss(self.s_hook.feats, self.t_hook.feats, raw["one2many"], teacher.nc) * self.weight
        self.s_hook.feats = None  # each step's features once
        self.last = float(d.detach())
        loss = loss + d * batch["img"].shape[0]
        return loss, torch.cat((items, d.detach().view(1).to(items)))

    def remove_hooks(self) -> None:
        self.s_hook.remove()
        self.t_hook.remove()
