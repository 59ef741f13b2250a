"""torch.distributed helpers: join the torchrun process group, rank checks, collective decisions, the launcher.

One process per device. Under torchrun (WORLD_SIZE, RANK, LOCAL_RANK set) the trainer calls `setup()`:
NCCL on CUDA with device cuda:LOCAL_RANK, gloo on the CPU. Rank 0 alone writes and validates; every
decision that ends the training loop is taken on rank 0 (or reduced over all ranks) and broadcast, so
no process waits forever in a collective the others never reach.

`device=0,1` outside torchrun makes the trainer call `launch()`: torchrun runs the same script with the
same arguments, one process per listed GPU; modules registered by the script exist in every process
because every process runs the script.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from ultralytics.utils import UserError
from ultralytics.utils.files import atomic_write_text

LAUNCHED_ENV = "YOLO_DDP_LAUNCHED"  # set by launch(): the device setting the launching process was given
SAVE_DIR_ENV = "YOLO_DDP_SAVE_DIR"  # set by launch(): the run directory the launching process claimed
TIMEOUT = timedelta(hours=3)  # a collective waits this long (rank 0 validates while the others wait)
EXIT_RECORDS_ENV = "YOLO_DDP_EXIT_RECORDS"  # a directory: each rank stopped by a coordinated stop writes a record


class PeerError(RuntimeError):
    """Raised on the ranks that did not fail when another rank raised: they stop at the same step."""


def under_torchrun() -> bool:
    """True in a process that torchrun started (WORLD_SIZE, RANK and LOCAL_RANK in the environment)."""
    return all(k in os.environ for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"))


def env_world_size() -> int:
    """WORLD_SIZE from the environment (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", 1)) if under_torchrun() else 1


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Processes in the joined group (1 when none was joined)."""
    return dist.get_world_size() if is_initialized() else 1


def rank() -> int:
    """Rank in the joined group; -1 when training runs in one process (no group)."""
    return dist.get_rank() if is_initialized() else -1


def is_main() -> bool:
    """True on the process that writes files and logs (rank 0, or the only process)."""
    return rank() in (-1, 0)


def cuda_ids(device) -> list[int]:
    """The CUDA ids a device setting names: '0,1' / [0, 1] / 'cuda:0' -> [0, 1] / [0]; '', 'cpu', 'mps' -> []."""
    if isinstance(device, torch.device):
        return [device.index or 0] if device.type == "cuda" else []
    if isinstance(device, (list, tuple)):
        device = ",".join(str(d) for d in device)
    s = str("" if device is None else device).strip().lower()
    for junk in ("cuda:", "'", '"', "[", "]", " "):
        s = s.replace(junk, "")
    s = "0" if s == "cuda" else s
    ids = s.split(",") if s else []
    return [int(i) for i in ids] if ids and all(i.isdigit() for i in ids) else []


def process_device(device, batch: int) -> torch.device:
    """The device of this torchrun process, after checking the settings; raises UserError before anything runs.

    CUDA (device '' with CUDA present, or a list of ids): cuda:LOCAL_RANK. The listed ids must be exactly
    0..LOCAL_WORLD_SIZE-1 (choose other GPUs with CUDA_VISIBLE_DEVICES). device='cpu': the CPU (gloo).
    batch is the global batch: it must divide by WORLD_SIZE.
    """
    world, local_rank = env_world_size(), int(os.environ["LOCAL_RANK"])
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    spec = str(device if device is not None else "").strip().lower()
    if batch == -1:
        raise UserError(f"batch=-1 (AutoBatch) is not supported under torchrun (WORLD_SIZE={world}); give the "
                        f"global batch, a multiple of {world}, e.g. batch={16 * world}")
    if batch % world:
        raise UserError(f"batch={batch} is the global batch and must divide by the world size {world} "
                        f"(WORLD_SIZE), e.g. batch={max(batch // world, 1) * world}")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        raise UserError("device='mps' cannot train under torchrun; use device='cpu' (gloo) or CUDA GPUs (nccl)")
    ids = cuda_ids(device)
    if spec not in ("", "none", "auto") and not ids:
        raise UserError(f"device={device!r} not understood under torchrun; use '' (cuda:LOCAL_RANK), 'cpu' or "
                        f"the GPU ids of this node, e.g. device={','.join(map(str, range(local_world)))}")
    if not torch.cuda.is_available():
        if ids:
            raise UserError(f"device={device!r} requested under torchrun but CUDA is not available; use device=cpu "
                            "(the gloo backend)")
        return torch.device("cpu")
    launched = os.environ.get(LAUNCHED_ENV)
    if ids and launched is None and ids != list(range(local_world)):
        raise UserError(f"device={device!r} under torchrun: each process uses the GPU LOCAL_RANK "
                        f"(0..{local_world - 1} here, LOCAL_WORLD_SIZE={local_world}), so device must be '' or "
                        f"{','.join(map(str, range(local_world)))}; pick other GPUs with CUDA_VISIBLE_DEVICES")
    if local_rank >= torch.cuda.device_count():
        raise UserError(f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA device(s) are visible; "
                        f"start at most {torch.cuda.device_count()} processes per node (torchrun --nproc_per_node)")
    return torch.device(f"cuda:{local_rank}")


def setup(device: torch.device) -> str:
    """Join the torchrun process group for `device` (nccl on CUDA, gloo otherwise); returns the backend."""
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not is_initialized():
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend, timeout=TIMEOUT, **kwargs)
    return backend


def cleanup() -> None:
    """Leave the process group (after a barrier, so no rank leaves while another still talks)."""
    if is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_initialized():
        dist.barrier()


def broadcast_object(obj, src: int = 0):
    """Rank src's `obj` on every rank (the object itself when no group was joined)."""
    if not is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def broadcast_flag(flag: bool, device: torch.device) -> bool:
    """Rank 0's decision (e.g. stop) on every rank."""
    if not is_initialized():
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def max_over_ranks(values: list[float], device: torch.device) -> list[float]:
    """Element-wise maximum of a few small numbers over all ranks (one all-reduce): OR of flags, or which rank."""
    if not is_initialized():
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def write_exit_record(**fields) -> None:
    """Under EXIT_RECORDS_ENV (set by the tests), write {"rank": r, **fields} to <dir>/rank<r>.json: this rank
    reached the coordinated stop (and was not, say, killed by torchrun after another rank died)."""
    folder = os.environ.get(EXIT_RECORDS_ENV)
    if folder:
        atomic_write_text(Path(folder) / f"rank{rank()}.json", json.dumps({"rank": rank(), **fields}))


def mean_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over all ranks (the tensor itself when no group was joined)."""
    if not is_initialized():
        return t
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / dist.get_world_size()


def average_gradients(params) -> None:
    """Average .grad over the ranks by hand (when the last micro-batch, skipped, did not let DDP do it)."""
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= dist.get_world_size()


class SigintFlag:
    """Under DDP, the first Ctrl-C only sets `pressed`, which the trainer OR-s over the ranks at the next step
    (so every rank stops at the same step and none waits in a collective); a second Ctrl-C raises at once."""

    def __init__(self, active: bool):
        self.pressed, self._old = False, None
        if active and threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)

    def _handler(self, signum, frame):
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True

    def restore(self) -> None:
        """Put back the handler that was there before."""
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None


# --- device=0,1: start torchrun on the same script ------------------------------------------------------
def launch_needed(device) -> bool:
    """True when the setting names several GPUs and this process is not one torchrun started."""
    return len(cuda_ids(device)) > 1 and not under_torchrun()


def script_command() -> list[str]:
    """The running script and its arguments, as torchrun should start them; UserError when there is none."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":  # python -m package.module
        return ["-m", spec.name.removesuffix(".__main__"), *sys.argv[1:]]
    if not path or not Path(path).is_file():
        raise UserError("device with several GPUs starts torchrun on the running script, but there is no script "
                        "file (interactive session or notebook). Put the training in a script and run it, or run "
                        "`torchrun --nproc_per_node N your_script.py` yourself")
    return [str(Path(path).resolve()), *sys.argv[1:]]


def launch(device, save_dir: Path) -> None:
    """Run torchrun with one process per GPU of `device` on this script; raise if it fails.

    The children see CUDA_VISIBLE_DEVICES = the listed GPUs (so each uses cuda:LOCAL_RANK), the run
    directory this process claimed (SAVE_DIR_ENV) and LAUNCHED_ENV; they train and exit.
    """
    ids = cuda_ids(device)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    physical = [visible.split(",")[i].strip() for i in ids] if visible else [str(i) for i in ids]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={len(ids)}",
           *script_command()]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(physical), LAUNCHED_ENV: ",".join(map(str, ids)),
           SAVE_DIR_ENV: str(save_dir)}
    from ultralytics.utils import LOGGER

    LOGGER.info(f"DDP: starting {len(ids)} processes on GPUs {','.join(physical)}: {shlex.join(cmd)}")
    rc = subprocess.run(cmd, env=env).returncode
    if rc != 0:
        raise RuntimeError(f"DDP training failed: torchrun exited with code {rc} (the error of the failing rank is "
                           f"printed above); the run directory is {save_dir}")
