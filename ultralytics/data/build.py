"""Build datasets and loaders: an epoch-aware sampler and a loader whose workers live across epochs."""

from __future__ import annotations

import csv
import math
import os
import random
from pathlib import Path
import time

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from ultralytics.data.allocator import keep_image_buffers
from ultralytics.data.dataset import YOLODataset
from ultralytics.utils import LOGGER, UserError, colorstr
from ultralytics.utils.checks import get_setting


class EpochSampler(Sampler):
    """Indices 0..n-1; when shuffling, in a permutation that depends only on (seed, epoch)."""

    def __init__(self, n: int, shuffle: bool = True, seed: int = 0):
        """n: dataset length."""
        self.n, self.shuffle, self.seed, self.epoch = n, shuffle, int(seed) & ((1 << 63) - 1), 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the permutation of this epoch."""
        self.epoch = int(epoch)

    def __iter__(self):
        """Indices of the current epoch."""
        if not self.shuffle:
            return iter(range(self.n))
        return iter(np.random.default_rng([self.seed, self.epoch]).permutation(self.n).tolist())

    def __len__(self) -> int:
        """Number of indices per epoch."""
        return self.n


class DistributedEpochSampler(Sampler):
    """This rank's share of EpochSampler's (seed, epoch) order, cut so that the ranks' step-k batches together
    are the step-k batch of one process with the global batch `batch * world_size`.

    Global batch k is order[k*B:(k+1)*B] (B = batch * world_size); rank r takes its r-th equal slice. The
    order is padded (from its start) to a multiple of world_size so every rank gets the same number of
    batches (no rank waits in a collective the others never reach).
    """

    def __init__(self, n: int, batch: int, world_size: int, rank: int, shuffle: bool = True, seed: int = 0):
        """n: dataset length; batch: images per rank and step."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
        self.order = EpochSampler(n, shuffle=shuffle, seed=seed)
        self.n, self.batch, self.world, self.rank = n, int(batch), int(world_size), int(rank)

    def set_epoch(self, epoch: int) -> None:
        """Choose the permutation of this epoch."""
        self.order.set_epoch(epoch)

    def __iter__(self):
        """Indices of this rank for the current epoch, batch after batch."""
        order = list(self.order)
        padded = math.ceil(self.n / self.world) * self.world
        order += order[: padded - self.n]
        big = self.batch * self.world
        out = []
        for k in range(0, padded, big):
            chunk = order[k:k + big]
            share = len(chunk) // self.world  # every chunk is a multiple of world_size long
            out += chunk[self.rank * share:(self.rank + 1) * share]
        return iter(out)

    def __len__(self) -> int:
        """Indices of this rank per epoch."""
        padded = math.ceil(self.n / self.world) * self.world
        return padded // self.world


class EpochBatchSampler:
    """Endless batches of (epoch, index) pairs: epoch after epoch, calling sampler.set_epoch(epoch) before each.

    Carrying the epoch in each index lets worker processes (which keep their own copy of the dataset)
    draw the augmentation of the right epoch even when they prefetch across an epoch boundary.
    """

    def __init__(self, sampler, batch_size: int, drop_last: bool = False):
        """sampler: yields dataset indices, may have set_epoch (EpochSampler, DistributedSampler)."""
        self.sampler, self.batch_size, self.drop_last, self.start_epoch = sampler, batch_size, drop_last, 0

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        """Batches of epoch start_epoch, then start_epoch + 1, ... forever."""
        epoch = self.start_epoch
        while True:
            if hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(epoch)
            batch = []
            for i in self.sampler:
                batch.append((epoch, int(i)))
                if len(batch) == self.batch_size:
                    yield batch
                    batch = []
            if batch and not self.drop_last:
                yield batch
            epoch += 1


class InfiniteDataLoader(DataLoader):
    """DataLoader that keeps one iterator (and its workers) across epochs; call set_epoch(e) before each epoch.

    The batches of epoch e are a pure function of (seed, e): the order comes from the sampler, the
    augmentation from (seed, e, index). Iterating without set_epoch continues with the next epoch.
    If the dataset's transforms change (close_mosaic), the workers restart so they pick up the change.
    """

    def __init__(self, dataset, batch_size: int, sampler, drop_last: bool = False, **kwargs):
        """kwargs go to DataLoader (num_workers, pin_memory, collate_fn, worker_init_fn, generator)."""
        super().__init__(dataset, batch_sampler=EpochBatchSampler(sampler, batch_size, drop_last), **kwargs)
        self._it, self._next_epoch, self._mid = None, 0, False
        self._state = getattr(dataset, "state_version", 0)

    def __len__(self) -> int:
        """Batches per epoch."""
        return len(self.batch_sampler)

    def _stale(self) -> bool:
        """True when the live iterator cannot serve the next epoch as is."""
        return self._it is None or self._mid or self._state != getattr(self.dataset, "state_version", 0)

    def reset(self, epoch: int | None = None) -> None:
        """Drop the iterator (stopping its workers) and start a new one at `epoch` (default: the next one)."""
        epoch = self._next_epoch if epoch is None else int(epoch)
        if self._it is not None and hasattr(self._it, "_shutdown_workers"):
            self._it._shutdown_workers()
        self._it = None
        self.batch_sampler.start_epoch = epoch
        self._next_epoch, self._mid = epoch, False
        self._state = getattr(self.dataset, "state_version", 0)
        self._it = self._get_iterator()

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration yield epoch `epoch` (restarting the iterator only when needed)."""
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        if self._stale() or int(epoch) != self._next_epoch:
            self.reset(epoch)

    def __iter__(self):
        """Yield the batches of one epoch."""
        if self._stale():
            self.reset(self._next_epoch)
        for _ in range(len(self)):
            self._mid = True
            yield next(self._it)
        self._mid = False
        self._next_epoch += 1

    def __del__(self):
        """Stop the workers."""
        it = getattr(self, "_it", None)
        if it is not None and hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()


class WaitClock:
    """Iterate over a loader while adding up the seconds spent inside next(): the time waiting for data."""

    def __init__(self, loader):
        """loader: any iterable (an InfiniteDataLoader epoch)."""
        self.loader, self.wait, self.steps, self.start = loader, 0.0, 0, time.perf_counter()

    def __len__(self) -> int:
        """Batches of the wrapped loader."""
        return len(self.loader)

    def __iter__(self):
        """The loader's batches."""
        it = iter(self.loader)
        while True:
            t = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                return
            finally:
                self.wait += time.perf_counter() - t
            self.steps += 1
            yield batch

    def report(self, total: float | None = None) -> str:
        """One log line: data wait vs the rest (forward, loss, backward, optimizer) over `total` seconds."""
        total = time.perf_counter() - self.start if total is None else total
        share = self.wait / total if total > 0 else 0.0
        note = " (loader-bound: more workers, cache=ram or augment_device may help)" if share > 0.2 else ""
        return (f"data wait {self.wait:.1f}s ({100 * share:.0f}%, {1000 * self.wait / max(self.steps, 1):.0f} "
                f"ms/step), forward/backward {total - self.wait:.1f}s of {total:.1f}s{note}")


def seed_worker(worker_id: int) -> None:
    """Seed the global RNGs of a worker from its torch seed; single-threaded OpenCV inside workers; large image
    buffers reused from the heap (data/allocator.py)."""
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)
    cv2.setNumThreads(0)
    keep_image_buffers()


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask: taskset, cgroups cpusets), not all of the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def build_dataloader(dataset, batch: int, workers: int, shuffle: bool = True, rank: int = -1,
                     seed: int = 0, world_size: int = 1) -> InfiniteDataLoader:
    """Loader over `dataset` (batch = images per process): workers clipped to the CPUs per process and to
    batch; a DistributedEpochSampler when rank != -1. Workers live across epochs; pinned memory on CUDA (the
    trainer's copy to the device is non_blocking)."""
    if getattr(dataset, "rect", False) and shuffle:
        LOGGER.warning("WARNING ⚠️ rect batches cannot be shuffled; shuffle=False")
        shuffle = False
    batch = max(1, min(int(batch), len(dataset)))
    nd = max(torch.cuda.device_count(), int(world_size), 1)  # processes sharing this machine's CPUs
    nw = max(0, min(usable_cpus() // nd, int(workers), batch if batch > 1 else 0))
    if rank == -1:
        sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=seed)
    else:
        sampler = DistributedEpochSampler(len(dataset), batch, world_size, rank, shuffle=shuffle, seed=seed)
    g = torch.Generator()
    g.manual_seed(6148914691236517205 + int(seed) + max(rank, 0))  # per-rank worker seeds from (seed, rank)
    return InfiniteDataLoader(dataset, batch, sampler, num_workers=nw, pin_memory=torch.cuda.is_available(),
                              collate_fn=getattr(dataset, "collate_fn", None), worker_init_fn=seed_worker,
                              generator=g)


def _setting(cfg, key: str):
    """cfg[key] from a namespace or a dict; UserError naming the key when it is absent."""
    val = cfg.get(key, KeyError) if isinstance(cfg, dict) else getattr(cfg, key, KeyError)
    if val is KeyError:
        raise UserError(f"setting '{key}' is missing from the training config (expected from cfg/default.yaml)")
    return val


def build_yolo_dataset(cfg, img_path, batch: int, data: dict, mode: str = "train", rect: bool = False,
                       stride: int = 32) -> YOLODataset:
    """YOLODataset for a split: augmented in 'train' mode, rectangular batches (pad 0.5) when rect in 'val'."""
    if mode not in ("train", "val"):
        raise UserError(f"dataset mode must be 'train' or 'val', got {mode!r}")
    train = mode == "train"
    aug_device = get_setting(cfg, "augment_device")
    dataset = YOLODataset(
        img_path=img_path, imgsz=_setting(cfg, "imgsz"), augment=train, hyp=cfg if train else None,
        rect=bool(_setting(cfg, "rect") or rect), batch_size=batch, stride=int(stride), pad=0.0 if train else 0.5,
        single_cls=bool(_setting(cfg, "single_cls")), cache=_setting(cfg, "cache") or False, data=data,
        prefix=colorstr(f"{mode}: "), seed=int(_setting(cfg, "seed")),
        fraction=float(_setting(cfg, "fraction")) if train else 1.0,
        defer_augment=train and bool(aug_device),
        fast_decode=cfg.get("fast_decode") if isinstance(cfg, dict) else getattr(cfg, "fast_decode", None))
    if train:
        LOGGER.info(dataset_summary(dataset.stats, data or {}))
    return dataset


def dataset_summary(stats: dict, data: dict) -> str:
    """One line as the dataset report gives it; points to `python dataset.py data=...` when there are problems.

    Problems: images skipped and label rows dropped by the label scan, plus the rows of the problems.csv a
    conversion (`python dataset.py source=...`) left beside the data.yaml.
    """
    n = sum(stats.get("images_skipped", {}).values()) + sum(stats.get("rows_dropped", {}).values())
    yaml_file = data.get("yaml_file") or ""
    csv_file = Path(yaml_file).parent / "problems.csv" if yaml_file else None
    if csv_file is not None and csv_file.is_file():
        with open(csv_file, newline="", encoding="utf-8") as f:
            n += max(0, sum(1 for _ in csv.reader(f)) - 1)  # rows after the header (a detail may hold newlines)
    line = (f"dataset: {stats.get('images_used', 0)} images, {stats.get('instances', 0)} instances, "
            f"{data.get('nc', '?')} classes, {stats.get('backgrounds', 0)} background images, {n} problems found")
    if n and yaml_file:
        line += f"; see `python dataset.py data={yaml_file}` for the report"
    return line
