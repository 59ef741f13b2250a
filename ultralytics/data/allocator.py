"""glibc malloc settings for the loader's worker processes: reuse large image buffers instead of mapping new ones.

Every sample allocates a few buffers of one to several MB (the decoded image, the resized one, the mosaic canvas,
the warped and colour-jittered outputs). glibc serves an allocation above its mmap threshold with a fresh mmap and
returns it to the OS on free, so the next sample's buffer starts as untouched pages and each page faults on first
write (costly in virtual machines). The threshold adapts upwards only partly, and freed heap memory beyond the trim
threshold is given back too. Raising both keeps such buffers in the heap, where the next sample reuses them: about
a tenth less CPU per sample on the 1920x1080 loader benchmark (docs/09). Pixels are unchanged.

Only the loader's workers do this (worker_init_fn): they hold no model, and their peak heap is a batch's images.
A user's own MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ environment settings are left as they are.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers (glibc malloc.h)
MMAP_THRESHOLD = 64 << 20  # allocations below this come from the heap
TRIM_THRESHOLD = 128 << 20  # free heap kept for reuse before it is returned to the OS


def keep_image_buffers(libc=None) -> bool:
    """Raise glibc's mmap and trim thresholds in this process -> True when applied; False where the C library has
    no mallopt (macOS, Windows, musl) or the user set either threshold in the environment."""
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return False
    try:
        libc = libc if libc is not None else ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
