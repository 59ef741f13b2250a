"""YOLODataset: images + verified YOLO labels -> augmented samples, reproducible per (seed, epoch, index)."""

from __future__ import annotations

import math
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch.utils.data import Dataset

from ultralytics.data.augment import build_transforms
from ultralytics.data.cache import scan_labels
from ultralytics.data.image_io import imread, read_resized, resize_to_fit
from ultralytics.data.utils import get_img_files, img2label_paths
from ultralytics.utils import LOGGER, NUM_THREADS, UserError

HYP_KEYS = ("mosaic", "degrees", "translate", "scale", "shear", "perspective", "flipud", "fliplr",
            "hsv_h", "hsv_s", "hsv_v")
UNIMPLEMENTED_HYP = ("mixup", "copy_paste")
_SEED_MASK = (1 << 63) - 1


def _hyp_copy(hyp) -> SimpleNamespace:
    """Private copy of the augmentation settings (close_mosaic must not change the caller's config)."""
    get = hyp.get if isinstance(hyp, dict) else lambda k, d=None: getattr(hyp, k, d)
    missing = [k for k in HYP_KEYS if get(k) is None]
    if missing:
        raise UserError(f"augmentation settings are missing key(s) {missing} (expected from cfg/default.yaml)")
    d = {k: float(get(k)) for k in HYP_KEYS}
    d.update({k: float(get(k, 0.0) or 0.0) for k in UNIMPLEMENTED_HYP})
    return SimpleNamespace(**d)


def _stack_images(imgs: list[torch.Tensor]) -> torch.Tensor:
    """Stack (3, H, W) uint8 images -> (B, 3, H, W). In a loader worker the batch is written straight into
    shared memory (as torch's default collate does), so sending it to the main process copies nothing."""
    arrays = [im.numpy() for im in imgs]
    new_shared = getattr(torch.UntypedStorage, "_new_shared", None)  # private torch API: absent -> plain path
    if torch.utils.data.get_worker_info() is None or new_shared is None:
        return torch.from_numpy(np.stack(arrays))
    shape = (len(arrays), *arrays[0].shape)
    out = torch.empty(0, dtype=torch.uint8).new(new_shared(math.prod(shape))).view(shape)
    np.stack(arrays, out=out.numpy())
    return out


class YOLODataset(Dataset):
    """Detection dataset over YOLO-format labels.

    dataset[i] or dataset[(epoch, i)] -> {'img': uint8 tensor (3, H, W) RGB, 'cls': (n, 1), 'bboxes': (n, 4)
    normalised xywh, 'batch_idx': (n,) zeros, 'im_file', 'ori_shape' (h0, w0), 'resized_shape' (h, w),
    'ratio_pad': ((rh, rw), (pad_w, pad_h))}. Augmentation randomness is drawn from a generator seeded
    with (seed, epoch, i) only, so a sample is the same whichever worker makes it and whenever.
    """

    fast_decode = True  # JPEGs >= 2x larger than imgsz are decoded at 1/2, 1/4 or 1/8 scale (the fast_decode setting)

    def __init__(self, img_path, imgsz: int = 640, augment: bool = True, hyp=None, rect: bool = False,
                 batch_size: int = 16, stride: int = 32, pad: float = 0.0, single_cls: bool = False,
                 cache: bool | str = False, data: dict | None = None, prefix: str = "", seed: int = 0,
                 fraction: float = 1.0, defer_augment: bool = False, fast_decode: bool | None = None):
        """img_path: folder / glob / .txt list / list of those; data: checked data dict (for 'nc' and 'names').

        defer_augment: leave the affine, HSV and flips to batch_augment.BatchAugment (augment_device).
        fast_decode: the setting of that name (None keeps the class default, True): reduced-scale JPEG decode."""
        if fast_decode is not None:
            self.fast_decode = bool(fast_decode)
        self.defer_augment = bool(defer_augment and augment and not rect)  # rect batches: not square, per image
        if defer_augment and augment and rect:
            LOGGER.warning(f"{prefix}WARNING ⚠️ augment_device is ignored with rect=True (rectangular batches are "
                           "augmented in the loader)")
        self.img_path, self.imgsz, self.augment, self.rect = img_path, int(imgsz), augment, rect
        self.batch_size, self.stride, self.pad, self.single_cls = batch_size, int(stride), pad, single_cls
        self.data, self.prefix, self.seed, self.epoch = data or {}, prefix, int(seed) & _SEED_MASK, 0
        self.hyp = _hyp_copy(hyp) if augment else None
        self.state_version = 0  # bumped when the transforms change (close_mosaic): loaders restart workers
        nc = int(self.data.get("nc") or 0) or 10**9  # without data, any non-negative class id is accepted
        im_files = get_img_files(img_path)
        label_files = img2label_paths(im_files)
        records, report = scan_labels(im_files, label_files, nc, self._cache_path(img_path, label_files), prefix)
        report.warn(prefix)
        if not 0 < fraction <= 1:
            raise UserError(f"fraction must be in (0, 1], got {fraction}")
        records = records[: max(1, round(len(records) * fraction))] if records else records
        if not records:
            raise UserError(f"{prefix}no usable images in {img_path} ({report.summary()})")
        self.labels = [self._label_entry(r) for r in records]
        self.im_files = [lb["im_file"] for lb in self.labels]
        self.label_files = img2label_paths(self.im_files)
        self.stats = report.stats()
        self.stats.update(images_used=len(self.labels), instances=sum(len(lb["cls"]) for lb in self.labels),
                          backgrounds=sum(len(lb["cls"]) == 0 for lb in self.labels))
        if rect:
            self._set_rect_shapes()
        self.ims = [None] * len(self.labels)  # RAM cache of resized images
        self.cache = None
        self.cache = self._init_cache(cache)
        if self.augment and self.rect and self.hyp.mosaic > 0:
            self.hyp.mosaic = 0.0  # rectangular batches cannot be mosaicked
        if self.augment and any(getattr(self.hyp, k) > 0 for k in UNIMPLEMENTED_HYP):
            LOGGER.warning(f"{prefix}WARNING ⚠️ mixup and copy_paste are not implemented and are ignored "
                           f"(mixup={self.hyp.mixup}, copy_paste={self.hyp.copy_paste})")
        self.transforms = build_transforms(self, self.imgsz, self.hyp, self.augment, self.defer_augment)

    # ----------------------------------------------------------------------------------------- labels
    def _label_entry(self, rec: dict) -> dict:
        """A cache record -> a label dict: im_file, shape (h, w), cls (n, 1), bboxes (n, 4) normalised xywh."""
        cls = np.asarray(rec["cls"], np.float32).reshape(-1, 1)
        if self.single_cls:
            cls = np.zeros_like(cls)
        return {"im_file": rec["im_file"], "shape": tuple(rec["shape"]), "cls": cls,
                "bboxes": np.asarray(rec["bboxes"], np.float32).reshape(-1, 4), "normalized": True,
                "bbox_format": "xywh"}

    @staticmethod
    def _cache_path(img_path, label_files: list[str]) -> Path:
        """Label cache file: next to a .txt image list, else '<labels dir>.cache'."""
        if isinstance(img_path, (str, Path)) and str(img_path).lower().endswith(".txt") and Path(img_path).is_file():
            return Path(img_path).with_suffix(".cache")
        return Path(label_files[0]).parent.with_suffix(".cache")

    def _set_rect_shapes(self) -> None:
        """Sort images by aspect ratio and give each batch one letterbox shape (h, w), stride multiples."""
        hw = np.array([lb["shape"] for lb in self.labels], np.float64)
        order = (hw[:, 0] / hw[:, 1]).argsort(kind="stable")
        self.labels = [self.labels[i] for i in order]
        self.im_files = [self.im_files[i] for i in order]
        self.label_files = [self.label_files[i] for i in order]
        ar = hw[order, 0] / hw[order, 1]  # h / w, ascending
        self.batch = np.arange(len(ar)) // self.batch_size  # batch index of each image
        starts = np.arange(0, len(ar), self.batch_size)
        mini, maxi = np.minimum.reduceat(ar, starts), np.maximum.reduceat(ar, starts)
        shapes = np.ones((len(starts), 2))
        wide, tall = maxi < 1, mini > 1
        shapes[wide, 0] = maxi[wide]
        shapes[tall, 1] = 1 / mini[tall]
        self.batch_shapes = (np.ceil(shapes * self.imgsz / self.stride + self.pad).astype(int) * self.stride)

    # ----------------------------------------------------------------------------------------- images
    def _init_cache(self, cache) -> str | None:
        """Set up image caching: 'ram' (resized images kept), 'disk' (decoded .npy files) or None."""
        cache = "ram" if cache is True else (cache or None)
        if cache not in (None, "ram", "disk"):
            raise UserError(f"cache must be False, True, 'ram' or 'disk', got {cache!r}")
        if cache == "ram":
            need = sum(lb["shape"][0] * lb["shape"][1] * 3 * (self.imgsz / max(lb["shape"])) ** 2
                       for lb in self.labels)
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 0
            if avail and need > 0.5 * avail:
                LOGGER.warning(f"{self.prefix}WARNING ⚠️ cache='ram' needs {need / 2**30:.1f} GB, only "
                               f"{avail / 2**30:.1f} GB free: not caching images")
                return None
            with ThreadPoolExecutor(NUM_THREADS) as pool:
                for i, (im, _, _) in enumerate(pool.map(self.load_image, range(len(self.labels)))):
                    self.ims[i] = im
            LOGGER.info(f"{self.prefix}Cached {len(self.ims)} images in RAM "
                        f"({sum(im.nbytes for im in self.ims) / 2**20:.0f} MB)")
        elif cache == "disk":
            with ThreadPoolExecutor(NUM_THREADS) as pool:
                ok = all(pool.map(self._write_npy, self.im_files))
            if not ok:
                LOGGER.warning(f"{self.prefix}WARNING ⚠️ cache='disk': image folder not writable, not caching")
                return None
        return cache

    @staticmethod
    def _npy_path(im_file: str) -> Path:
        """Disk cache file of an image: same name, .npy suffix."""
        return Path(im_file).with_suffix(".npy")

    def _write_npy(self, im_file: str) -> bool:
        """Write the decoded image as .npy (atomically) unless a newer one exists; False if not writable."""
        npy = self._npy_path(im_file)
        try:
            if npy.exists() and npy.stat().st_mtime_ns >= Path(im_file).stat().st_mtime_ns:
                return True
            fd, tmp = tempfile.mkstemp(prefix=npy.name + ".", suffix=".tmp", dir=npy.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    np.save(f, imread(im_file), allow_pickle=False)
                os.replace(tmp, npy)
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
        except OSError:
            return False
        return True

    def load_image(self, i: int) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
        """Image i resized so its long side is imgsz -> (img (h, w, 3) BGR, (h0, w0), (h, w))."""
        if self.ims[i] is not None:
            im = self.ims[i]
            return im, self._ori_shape(i), im.shape[:2]
        im = None
        if self.cache == "disk":
            try:
                im = np.load(self._npy_path(self.im_files[i]), allow_pickle=False)
            except (OSError, ValueError):
                im = None
        if im is None:  # at reduced scale when the resize shrinks by >= 2 and fast_decode (sizes from the label cache)
            im, (h0, w0) = read_resized(self.im_files[i], self.imgsz, self._ori_shape(i), self.fast_decode,
                                        self.augment)
        else:
            (h0, w0), im = im.shape[:2], resize_to_fit(im, self.imgsz, augment=self.augment)
        return im, (h0, w0), im.shape[:2]

    def _ori_shape(self, i: int) -> tuple[int, int]:
        """Original (h0, w0) of image i as recorded by the label scan."""
        return tuple(self.labels[i]["shape"])

    def get_image_and_label(self, i: int, memo: dict | None = None) -> dict:
        """Sample i before augmentation: resized image and boxes as xyxy pixels of that image.

        memo: optional {i: load_image(i)} shared by the samples of one batch, so each image is decoded once.
        """
        lb = self.labels[i]
        if memo is None:
            img, (h0, w0), (h, w) = self.load_image(i)
        else:
            if i not in memo:
                memo[i] = self.load_image(i)
            img, (h0, w0), (h, w) = memo[i]
        b = lb["bboxes"]
        xyxy = np.empty_like(b)
        xyxy[:, 0], xyxy[:, 2] = (b[:, 0] - b[:, 2] / 2) * w, (b[:, 0] + b[:, 2] / 2) * w
        xyxy[:, 1], xyxy[:, 3] = (b[:, 1] - b[:, 3] / 2) * h, (b[:, 1] + b[:, 3] / 2) * h
        return {"img": img, "cls": lb["cls"], "bboxes": xyxy, "im_file": lb["im_file"], "ori_shape": (h0, w0),
                "resized_shape": (h, w), "ratio_pad": (h / h0, w / w0), "index": i}

    # ----------------------------------------------------------------------------------------- samples
    def __len__(self) -> int:
        """Number of usable images."""
        return len(self.labels)

    @staticmethod
    def _split_index(index) -> tuple[int | None, int]:
        """i or (epoch, i) -> (epoch or None, i)."""
        if isinstance(index, (tuple, list)):
            return int(index[0]), int(index[1])
        return None, int(index)

    def __getitem__(self, index) -> dict:
        """index: i, or (epoch, i) as the loader's sampler sends it -> the transformed sample.

        Mosaic partners are drawn from the whole dataset.
        """
        epoch, i = self._split_index(index)
        return self._sample(self.epoch if epoch is None else epoch, i, None, None)

    def __getitems__(self, indices: list) -> list[dict]:
        """A whole batch (the DataLoader fetcher calls this): mosaic partners are drawn from the batch's own
        images, and each image is decoded once per batch. Deterministic given the batch composition."""
        keys = [self._split_index(x) for x in indices]
        pool, memo = [i for _, i in keys], {}
        return [self._sample(self.epoch if e is None else e, i, pool, memo) for e, i in keys]

    def _sample(self, epoch: int, i: int, pool: list[int] | None, memo: dict | None) -> dict:
        """Transformed sample i of `epoch`, randomness from (seed, epoch, i) only."""
        rng = np.random.default_rng([self.seed, epoch & _SEED_MASK, i])
        labels = self.get_image_and_label(i, memo)
        if self.rect:
            labels["rect_shape"] = tuple(int(v) for v in self.batch_shapes[self.batch[i]])
        if pool is not None:
            labels["mosaic_pool"], labels["image_memo"] = pool, memo
        labels = self.transforms(labels, rng)
        for k in ("mosaic_pool", "image_memo", "index"):
            labels.pop(k, None)
        rp = labels["ratio_pad"]
        if not isinstance(rp[0], (tuple, list)):  # not letterboxed (mosaic): no padding to undo
            labels["ratio_pad"] = (tuple(rp), (0, 0))
        return labels

    def set_epoch(self, epoch: int) -> None:
        """Epoch used for samples requested by plain index (the loader sends (epoch, i) itself)."""
        self.epoch = int(epoch)

    def close_mosaic(self, hyp=None) -> None:
        """Switch mosaic off (the last epochs train on single letterboxed images, still affine-augmented).

        hyp: accepted for Ultralytics call compatibility and ignored (the dataset keeps its own settings).
        A loader notices the change (state_version) at its next set_epoch and restarts its workers.
        """
        if self.augment and self.hyp.mosaic > 0:
            self.hyp.mosaic = 0.0
            self.transforms = build_transforms(self, self.imgsz, self.hyp, self.augment, self.defer_augment)
            self.state_version += 1

    @staticmethod
    def collate_fn(batch: list[dict]) -> dict:
        """Samples -> batch: img (B, 3, H, W) uint8, cls (N, 1), bboxes (N, 4), batch_idx (N,), lists of the rest."""
        # numpy stacks single-threaded: torch.stack on a fresh large tensor can stall on busy CPUs (OpenMP)
        out = {"img": _stack_images([b["img"] for b in batch]),
               "cls": torch.cat([b["cls"] for b in batch]),
               "bboxes": torch.cat([b["bboxes"] for b in batch]),
               "batch_idx": torch.cat([b["batch_idx"] + i for i, b in enumerate(batch)])}
        for k in ("im_file", "ori_shape", "resized_shape", "ratio_pad"):
            out[k] = [b[k] for b in batch]
        if "aug_params" in batch[0]:  # augment_device: per-image parameters for BatchAugment
            out["aug_params"] = torch.stack([b["aug_params"] for b in batch])
        return out
