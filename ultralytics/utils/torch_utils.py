"""Training utilities: device selection, seeding, EMA, optimizer groups, LR lambdas, early stopping, AMP."""

from __future__ import annotations

import math
import os
import platform
import random
import time
from contextlib import contextmanager
from copy import deepcopy
from typing import Any, Callable, Iterable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from ultralytics.utils import LOGGER, UserError, colorstr

OPTIMIZERS = ("SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp")
NORM_LAYERS = tuple(v for k, v in vars(nn).items() if "Norm" in k and isinstance(v, type))  # BatchNorm*, LayerNorm...


def select_device(device: str | int | list | torch.device | None = "", batch: int = 0,
                  verbose: bool = True) -> torch.device:
    """Return the torch.device for a device setting: '' / None = cuda:0 if available else cpu; 'cpu'; 'mps';
    '0', 0, 'cuda:0', '0,1' or [0, 1] = CUDA (the first listed id is returned; DDP ranks pick LOCAL_RANK).

    batch (when > 0 or -1) must be a positive multiple of the GPU count for multi-GPU. Sets no environment variables.
    """
    if isinstance(device, torch.device):
        return device
    given = device
    if isinstance(device, (list, tuple)):
        device = ",".join(str(d) for d in device)
    s = str("" if device is None else device).strip().lower()
    for junk in ("cuda:", "'", '"', "[", "]", " "):
        s = s.replace(junk, "")
    s = "" if s in ("none", "auto") else "0" if s == "cuda" else s
    if s == "":
        dev = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    elif s == "cpu":
        dev = torch.device("cpu")
    elif s == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UserError(f"device={given!r} requested but MPS is not available; use device='cpu'")
        dev = torch.device("mps")
    else:
        ids = s.split(",")
        if not all(i.isdigit() for i in ids) or len(set(ids)) != len(ids):
            raise UserError(f"device={given!r} not understood; use '' (auto), 'cpu', 'mps', '0', '0,1' or 'cuda:0'")
        if not torch.cuda.is_available():
            raise UserError(f"device={given!r} requested but CUDA is not available "
                            f"(torch.cuda.is_available() is False); use device='cpu'")
        n_visible = torch.cuda.device_count()
        if any(int(i) >= n_visible for i in ids):
            raise UserError(f"device={given!r} requested but only {n_visible} CUDA device(s) are visible "
                            f"(ids 0..{n_visible - 1})")
        if len(ids) > 1 and batch and (batch < 1 or batch % len(ids)):
            raise UserError(f"batch={batch} must be a positive multiple of the GPU count {len(ids)} for "
                            f"multi-GPU training, e.g. batch={max(batch // len(ids), 1) * len(ids) or len(ids)}")
        dev = torch.device(f"cuda:{ids[0]}")
    if verbose:
        LOGGER.info(f"Python-{platform.python_version()} torch-{torch.__version__} {_device_name(dev, s)}")
    return dev


def _device_name(dev: torch.device, spec: str) -> str:
    """'CUDA:0 (NVIDIA H100, 80GiB)' / 'MPS' / 'CPU (model name)' for the log line."""
    if dev.type == "cuda":
        ids = spec.split(",") if spec else [str(dev.index or 0)]
        props = [torch.cuda.get_device_properties(int(i)) for i in ids]
        return ", ".join(f"CUDA:{i} ({p.name}, {p.total_memory / (1 << 30):.0f}GiB)" for i, p in zip(ids, props))
    if dev.type == "mps":
        return "MPS"
    return f"CPU ({platform.processor() or platform.machine() or 'unknown'})"


def init_seeds(seed: int = 0, deterministic: bool = False) -> None:
    """Seed python `random`, numpy and torch (all devices); deterministic=True also turns on deterministic mode.

    Process-wide effects, and only these: the three global RNG states; with deterministic=True,
    torch.use_deterministic_algorithms(True, warn_only=True), cudnn.deterministic=True, cudnn.benchmark=False
    and os.environ['CUBLAS_WORKSPACE_CONFIG'] (set only when absent). deterministic=False changes no flags.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device too
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def is_parallel(model: nn.Module) -> bool:
    """True for DataParallel / DistributedDataParallel wrappers."""
    return isinstance(model, (nn.parallel.DataParallel, nn.parallel.DistributedDataParallel))


def de_parallel(model: nn.Module) -> nn.Module:
    """The bare model inside a DP/DDP wrapper (the model itself otherwise)."""
    return model.module if is_parallel(model) else model


def time_sync() -> float:
    """perf_counter() after waiting for pending CUDA work, for honest timings."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


def get_num_params(model: nn.Module) -> int:
    """Total number of parameter elements."""
    return sum(p.numel() for p in model.parameters())


def get_num_gradients(model: nn.Module) -> int:
    """Number of parameter elements that require gradients."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def copy_attr(a: Any, b: Any, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> None:
    """Copy public attributes of b onto a (only `include` if given), skipping `exclude` and '_private' names."""
    include, exclude = tuple(include), tuple(exclude)
    for k, v in vars(b).items():
        if (include and k not in include) or k.startswith("_") or k in exclude:
            continue
        setattr(a, k, v)


class ModelEMA:
    """Exponential moving average of a model's floating-point state: ema = d * ema + (1 - d) * model.

    d = decay * (1 - exp(-updates / tau)) ramps from 0 up to `decay`, so early updates follow the model closely.
    Integer buffers (e.g. BatchNorm num_batches_tracked) are left as copied at construction.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000, updates: int = 0):
        self.ema = deepcopy(de_parallel(model)).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.decay, self.tau, self.updates = float(decay), float(tau), int(updates)
        self.enabled = True

    def decay_at(self, updates: int) -> float:
        """The EMA decay d used for the update number `updates`."""
        return self.decay * (1 - math.exp(-updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Blend the (possibly DDP-wrapped) model's floating-point state into the EMA."""
        if not self.enabled:
            return
        self.updates += 1
        d = self.decay_at(self.updates)
        msd = de_parallel(model).state_dict()
        ema, src = [], []  # rebuilt each time: .half()/.float() during validation replaces the EMA's tensors
        for k, v in self.ema.state_dict().items():
            if v.dtype.is_floating_point:
                ema.append(v)
                src.append(msd[k].detach().to(v.dtype))
        torch._foreach_lerp_(ema, src, 1 - d)  # ema += (1 - d) * (model - ema): one fused multi-tensor kernel

    def update_attr(self, model: nn.Module, include: Iterable[str] = (),
                    exclude: Iterable[str] = ("process_group", "reducer")) -> None:
        """Copy the model's plain attributes (e.g. names, args, stride) onto the EMA model."""
        if self.enabled:
            copy_attr(self.ema, de_parallel(model), include, exclude)

    def state_dict(self) -> dict:
        """Plain data for a checkpoint: {'ema': {name: tensor (cloned)}, 'updates': int}."""
        return {"ema": {k: v.detach().clone() for k, v in self.ema.state_dict().items()}, "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        """Restore the EMA weights and update count written by state_dict()."""
        self.ema.load_state_dict(state["ema"])
        self.updates = int(state["updates"])


class EarlyStopping:
    """Stop when fitness has not improved for `patience` epochs (patience 0 = never stop)."""

    def __init__(self, patience: int = 50):
        self.patience = patience if patience and patience > 0 else math.inf
        self.best_fitness, self.best_epoch, self.possible_stop = 0.0, 0, False

    def __call__(self, epoch: int, fitness: float | None) -> bool:
        """Record this epoch's fitness; return True when training should stop (and log why)."""
        if fitness is None:
            return False
        if fitness >= self.best_fitness:  # >= : later epochs with equal fitness reset the count
            self.best_epoch, self.best_fitness = epoch, float(fitness)
        waited = epoch - self.best_epoch
        self.possible_stop = waited >= self.patience - 1
        stop = waited >= self.patience
        if stop:
            LOGGER.info(f"{colorstr('EarlyStopping:')} stopping at epoch {epoch}: no fitness improvement in the "
                        f"last {self.patience} epochs (best {self.best_fitness:.5f} at epoch {self.best_epoch}). "
                        f"Train longer with patience=300, or patience=0 to never stop early.")
        return stop

    def state_dict(self) -> dict:
        """Plain data for exact resume."""
        return {"best_fitness": self.best_fitness, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict) -> None:
        """Restore what state_dict() wrote."""
        self.best_fitness, self.best_epoch = float(state["best_fitness"]), int(state["best_epoch"])


@contextmanager
def torch_distributed_zero_first(local_rank: int):
    """Let local rank 0 run the block first (e.g. build a dataset cache); other ranks wait, then run it."""
    initialized = dist.is_available() and dist.is_initialized()
    kwargs = {"device_ids": [local_rank]} if initialized and dist.get_backend() == "nccl" else {}
    if initialized and local_rank not in (-1, 0):
        dist.barrier(**kwargs)
    yield
    if initialized and local_rank == 0:
        dist.barrier(**kwargs)


def one_cycle(y1: float = 0.0, y2: float = 1.0, steps: int = 100) -> Callable[[float], float]:
    """Cosine ramp from y1 (x=0) to y2 (x=steps): y1 + (y2 - y1) * (1 - cos(pi * x / steps)) / 2."""
    return lambda x: max((1 - math.cos(x * math.pi / steps)) / 2, 0) * (y2 - y1) + y1


def lr_lambda(cos_lr: bool, lrf: float, epochs: int) -> Callable[[float], float]:
    """LambdaLR factor per epoch: cosine (cos_lr) or linear from 1 at epoch 0 to lrf at `epochs`."""
    if cos_lr:
        return one_cycle(1, lrf, epochs)
    return lambda x: max(1 - x / epochs, 0) * (1.0 - lrf) + lrf


def auto_optimizer(iterations: float, nc: int) -> tuple[str, float, float]:
    """(name, lr, momentum) that optimizer='auto' picks: SGD lr=0.01 for long runs (> 10000 iterations), else
    AdamW with an lr that suits short runs, smaller for many classes."""
    return ("SGD", 0.01, 0.9) if iterations > 10000 else ("AdamW", round(0.002 * 5 / (4 + nc), 6), 0.9)


def build_optimizer(model: nn.Module, name: str = "auto", lr: float = 0.001, momentum: float = 0.9,
                    decay: float = 1e-5, iterations: float = 1e5, nc: int = 80) -> torch.optim.Optimizer:
    """Build an optimizer with three named groups, in order: 0 'decay' conv/linear weights (weight_decay=decay),
    1 'norm' normalization-layer weights (no decay), 2 'bias' all biases (no decay).

    name: SGD (nesterov), Adam, AdamW, NAdam, RAdam, RMSProp or 'auto' (SGD lr=0.01 when iterations > 10000,
    else AdamW lr=round(0.002 * 5 / (4 + nc), 6)); momentum is beta1 for the Adam family.
    Frozen parameters (requires_grad False) are skipped; a parameter shared by modules is counted once.
    """
    groups = {"decay": [], "norm": [], "bias": []}
    seen = set()
    for module in de_parallel(model).modules():
        for pname, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            kind = "bias" if pname == "bias" else "norm" if isinstance(module, NORM_LAYERS) else "decay"
            groups[kind].append(p)
    if not seen:
        raise UserError("build_optimizer: the model has no trainable parameters (all frozen?)")
    choice = {n.lower(): n for n in (*OPTIMIZERS, "auto")}.get(str(name).strip().lower())
    if choice is None:
        raise UserError(f"optimizer={name!r} is not supported; choose one of {', '.join(OPTIMIZERS)} or auto")
    if choice == "auto":
        choice, lr, momentum = auto_optimizer(iterations, nc)
        LOGGER.info(f"{colorstr('optimizer:')} 'optimizer=auto' chose {choice}(lr={lr}, momentum={momentum}) "
                    f"for {int(iterations)} iterations; set optimizer, lr0 and momentum to choose yourself")
    param_groups = [{"params": groups["decay"], "weight_decay": decay, "name": "decay"},
                    {"params": groups["norm"], "weight_decay": 0.0, "name": "norm"},
                    {"params": groups["bias"], "weight_decay": 0.0, "name": "bias"}]
    if choice in ("Adam", "AdamW", "NAdam", "RAdam"):
        optimizer = getattr(torch.optim, choice)(param_groups, lr=lr, betas=(momentum, 0.999))
    elif choice == "RMSProp":
        optimizer = torch.optim.RMSprop(param_groups, lr=lr, momentum=momentum)
    else:
        optimizer = torch.optim.SGD(param_groups, lr=lr, momentum=momentum, nesterov=True)
    LOGGER.info(f"{colorstr('optimizer:')} {choice}(lr={lr}, momentum={momentum}) with parameter groups "
                f"{len(groups['decay'])} weight(decay={decay}), {len(groups['norm'])} norm weight(decay=0.0), "
                f"{len(groups['bias'])} bias(decay=0.0)")
    return optimizer


def amp_allowed(device: str | torch.device) -> bool:
    """Automatic mixed precision is used on CUDA only."""
    return torch.device(device).type == "cuda"


def make_grad_scaler(enabled: bool, device: str | torch.device) -> torch.amp.GradScaler:
    """A GradScaler that scales only when enabled and on CUDA; elsewhere scale/step/update are pass-throughs."""
    return torch.amp.GradScaler("cuda", enabled=bool(enabled) and amp_allowed(device))


def autocast(enabled: bool, device: str | torch.device):
    """torch.autocast for the device type, active only when AMP is enabled and allowed (CUDA)."""
    dev = torch.device(device)
    return torch.autocast(device_type=dev.type, enabled=bool(enabled) and amp_allowed(dev))


def auto_batch(model: nn.Module, imgsz: int, device: torch.device, amp: bool = True, fraction: float = 0.6,
               sizes: tuple[int, ...] = (1, 2, 4, 8, 16)) -> int:
    """AutoBatch (batch=-1): the largest batch whose training step uses about `fraction` of the free CUDA memory.

    Runs one forward + backward of a copy of `model` on random (b, 3, imgsz, imgsz) images for each b in
    `sizes`, fits peak memory = a * b + c, and solves for fraction * free memory. Off CUDA: 16.
    The model itself (weights, BN statistics) is untouched. A profile that fails (out of memory) ends the list.
    """
    if device.type != "cuda":
        LOGGER.warning(f"WARNING: batch=-1 (AutoBatch) measures free CUDA memory; on {device.type} it uses batch=16")
        return 16
    probe = deepcopy(de_parallel(model)).to(device).train()
    free, total = torch.cuda.mem_get_info(device)
    done, peaks = [], []
    for b in sizes:
        try:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            img = torch.rand(b, 3, imgsz, imgsz, device=device)
            with autocast(amp, device):
                out = probe(img)
            feats = [t for v in (out.values() if isinstance(out, dict) else [out]) for t in v]
            sum(f.float().mean() for f in feats).backward()
            peaks.append(torch.cuda.max_memory_allocated(device) - base)
            done.append(b)
            probe.zero_grad(set_to_none=True)
        except torch.OutOfMemoryError:
            break
    del probe
    torch.cuda.empty_cache()
    if len(done) < 2:
        LOGGER.warning("WARNING: AutoBatch could not profile two batch sizes; using batch=16")
        return 16
    a, c = np.polyfit(done, peaks, 1)
    batch = int(max(1, min(1024, (free * fraction - c) / max(a, 1))))
    LOGGER.info(f"{colorstr('AutoBatch:')} batch={batch} for imgsz={imgsz}: {a / 2**20:.0f} MiB per image, "
                f"{fraction:.0%} of {free / 2**30:.1f} GiB free (of {total / 2**30:.1f} GiB)")
    return batch
