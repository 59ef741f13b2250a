"""Shared helpers for the benchmarks: device choice, timing, memory high-water marks, isolated runs, tables.

CPU peak memory is the growth of the process's resident set (Linux VmHWM) over what it held before the
measured code ran. Each configuration runs in a fresh child process (`run_isolated`), so allocator caches
and arenas left by an earlier configuration cannot hide or inflate the next one's peak.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from ultralytics.utils import UserError

WORKER_FLAG = "--worker"  # argv marker: the child runs one configuration and prints one JSON line
RESULT_PREFIX = "RESULT "  # prefix of the child's JSON line on stdout, so stray prints are ignored


def add_device_args(parser) -> None:
    """Add the --device and --threads options every benchmark shares to an argparse parser."""
    parser.add_argument("--device", default="cpu",
                        help="'cpu' (default), or 'cuda' / '0' / 'cuda:1' for a CUDA device when present")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads in each measured process (default: torch's own choice)")
    parser.add_argument("--stat", choices=tuple(STATS), default="min",
                        help="how the timed passes are reduced (default min: least disturbed by other load)")


def select_device(spec: str) -> torch.device:
    """torch.device for a --device value: 'cpu', 'cuda', 'cuda:N' or a bare index 'N'."""
    s = str(spec).strip().lower()
    if s in ("", "cpu"):
        return torch.device("cpu")
    if s.isdigit():
        s = f"cuda:{s}"
    if not s.startswith("cuda"):
        raise UserError(f"--device {spec!r}: use 'cpu', 'cuda', 'cuda:N' or a GPU index like '0'")
    if not torch.cuda.is_available():
        raise UserError(f"--device {spec!r}: CUDA is not available on this machine (torch {torch.__version__}); "
                        f"use --device cpu")
    dev = torch.device(s)
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserError(f"--device {spec!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    return dev


def synchronize(device: torch.device | None) -> None:
    """Wait for queued CUDA work on `device`; a no-op on CPU."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


STATS = {"min": min, "median": statistics.median, "mean": statistics.fmean}  # --stat choices for time_fn


def time_fn(fn: Callable[[], object], warmup: int = 1, iters: int = 5, device: torch.device | None = None,
            stat: str = "median") -> float:
    """Wall time of fn() in milliseconds: `stat` (min, median, mean) of `iters` timed calls after `warmup` untimed.

    On CUDA the device is synchronised before the clock starts and after each call.
    """
    if iters < 1:
        raise UserError(f"time_fn: iters must be >= 1, got {iters}")
    if stat not in STATS:
        raise UserError(f"time_fn: stat must be one of {list(STATS)}, got {stat!r}")
    for _ in range(max(warmup, 0)):
        fn()
    synchronize(device)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return STATS[stat](times)


def _proc_status_kb(key: str) -> int | None:
    """A 'VmXXX: N kB' field of /proc/self/status in kB, or None where there is no procfs."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (VmHWM after any reset, else ru_maxrss)."""
    hwm = _proc_status_kb("VmHWM")
    if hwm is not None:
        return hwm / 1024
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 / (1024 if sys.platform == "darwin" else 1)  # macOS reports bytes, Linux kB


def current_rss_mb() -> float:
    """Resident set size of this process now, in MiB (falls back to the peak where procfs is absent)."""
    rss = _proc_status_kb("VmRSS")
    return rss / 1024 if rss is not None else peak_rss_mb()


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark to the current RSS (Linux clear_refs '5'); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class MemoryProbe:
    """Measure the peak memory growth of a block: `with MemoryProbe(device) as m: ...; m.peak_mb, m.base_mb`.

    CPU: base = RSS on entry, peak = high-water RSS minus base (exact where the high-water mark can be reset,
    otherwise ru_maxrss, which also holds peaks from before entry). CUDA: torch.cuda.max_memory_allocated
    minus memory_allocated on entry; `total_mb` is the absolute CUDA peak.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.base_mb = self.peak_mb = self.total_mb = 0.0
        self.exact = True

    def __enter__(self) -> "MemoryProbe":
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base_mb = torch.cuda.memory_allocated(self.device) / 2**20
        else:
            self.exact = reset_peak_rss()
            self.base_mb = current_rss_mb() if self.exact else peak_rss_mb()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.total_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.total_mb = peak_rss_mb()
        self.peak_mb = max(self.total_mb - self.base_mb, 0.0)


def run_isolated(script: str | Path, config: dict, timeout: float = 900) -> dict:
    """Run `python script --worker '<json config>'` in a fresh process; return the dict it prints.

    The child must print one line `RESULT {json}` (see `emit_result`); anything else it prints is ignored.
    A failing child raises RuntimeError carrying its stderr tail.
    """
    cmd = [sys.executable, str(script), WORKER_FLAG, json.dumps(config)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-2000:]
        raise RuntimeError(f"benchmark worker failed for {config} (exit {proc.returncode}):\n{tail}")
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def worker_config(argv: Sequence[str]) -> dict | None:
    """The JSON config if argv is a worker call (`--worker '<json>'`), else None."""
    if len(argv) >= 2 and argv[0] == WORKER_FLAG:
        return json.loads(argv[1])
    return None


def script_main(script: str, measure: Callable[[dict], dict], main: Callable[[], None]) -> None:
    """A benchmark's entry point: `--worker <json>` measures one configuration in this process and emits
    the result; otherwise run main(), turning a bad option (UserError) into one line without a traceback."""
    worker = worker_config(sys.argv[1:])
    if worker is not None:
        emit_result(measure(worker))
        return
    try:
        main()
    except UserError as e:
        sys.exit(f"{Path(script).name}: error: {e}")


def emit_result(result: dict) -> None:
    """Print the worker's result line for `run_isolated` to read."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def setup_threads(threads: int | None) -> None:
    """Apply --threads (torch.set_num_threads) in the measuring process, when given."""
    if threads is not None:
        if threads < 1:
            raise UserError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; numbers right-aligned, everything else left-aligned."""
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], (int, float)) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(vals: Sequence[str]) -> str:
        return "| " + " | ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(vals, widths, numeric)) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if n else ("-" * (w + 2)) for w, n in zip(widths, numeric)) + "|"
    return "\n".join([line(list(headers)), sep] + [line(r) for r in cells])


def _fmt(v: object) -> str:
    """Table cell text: ints with thousands separators, floats to 3 significant digits (at least 1 decimal)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if v == 0:
        return "0.0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    digits = max(1, 2 - int(f"{abs(v):e}".split("e")[1]))
    return f"{v:.{digits}f}"


def device_banner(device: torch.device, threads: int | None) -> str:
    """One line naming the device, torch version and thread count, for a table header."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        import platform

        name = platform.processor() or platform.machine()
    n = threads if threads is not None else torch.get_num_threads()
    load = f", load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores" if hasattr(os, "getloadavg") else ""
    return f"device {device} ({name}), torch {torch.__version__}, {n} torch thread(s){load}"
