"""One decision per training step for all ranks of a torchrun group: whether the loss was non-finite somewhere,
whether Ctrl-C was pressed somewhere, and whether a rank's step raised. Each rank learns it at the same
all-reduce, so all of them skip, or stop at, the same step.

A mixin of BaseTrainer (engine/trainer.py), which owns rank, device and sigint (a utils.dist.SigintFlag).
"""

from __future__ import annotations

import torch

from ultralytics.utils import dist


class StepAgreementMixin:
    """The per-step all-reduce of the ranks' faults, and the coordinated stop that follows one."""

    def _step_flags(self, loss: torch.Tensor | None) -> tuple[bool, bool, int]:
        """(the loss is non-finite on some rank, Ctrl-C was pressed on some rank, the highest rank whose step raised
        or -1; loss None: this one raised): one all-reduce under DDP."""
        raised = self.rank + 1 if loss is None else 0
        bad, stop, raised = dist.max_over_ranks(
            [loss is not None and not bool(torch.isfinite(loss)), self.sigint.pressed, raised], self.device)
        return bad > 0, stop > 0, int(raised) - 1

    def _coordinated_stop(self, error: Exception | None, raised: int, epoch: int, i: int) -> None:
        """Every rank stops at this step, having learnt at the same all-reduce that a rank raised (raised >= 0) or
        that Ctrl-C was pressed: the rank that raised re-raises its error, the others raise PeerError, and for an
        interrupt all raise KeyboardInterrupt; none is left waiting in a collective."""
        where = dict(epoch=epoch + 1, batch=i)
        if raised >= 0:
            dist.write_exit_record(stop="exception", raised_by=raised, raised_here=error is not None, **where)
            if error is not None:
                raise error
            raise dist.PeerError(f"rank {raised} raised an error at epoch {epoch + 1}, batch {i} (its traceback is "
                                 f"above); rank {self.rank} stopped at the same step")
        dist.write_exit_record(stop="interrupt", pressed_here=self.sigint.pressed, **where)
        raise KeyboardInterrupt
