"""Tests for utils/torch_utils.py (devices, seeds, EMA, optimizer groups, schedules) and utils/files.py."""

from __future__ import annotations

import errno
import math
import multiprocessing as mp
import os
import random
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from ultralytics.utils import UserError
from ultralytics.utils import files as files_mod
from ultralytics.utils.files import (FileWriteError, atomic_torch_save, atomic_write_bytes, atomic_write_text,
                                     check_writable, file_size, increment_path)
from ultralytics.utils.torch_utils import (EarlyStopping, ModelEMA, amp_allowed, autocast, build_optimizer,
                                           de_parallel, get_num_gradients, get_num_params, init_seeds, is_parallel,
                                           lr_lambda, make_grad_scaler, one_cycle, select_device, time_sync,
                                           torch_distributed_zero_first)


def small_model() -> nn.Sequential:
    """conv(no bias) -> BN -> conv(bias) -> pool -> flatten -> Linear: 3 weights, 1 norm weight, 3 biases."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))


# ----------------------------------------------------------------------------------------------- devices
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
def test_select_device_cpu_only(log_messages):
    assert select_device("") == torch.device("cpu") and select_device(None) == torch.device("cpu")
    assert select_device("cpu") == torch.device("cpu") and select_device("CPU", verbose=False).type == "cpu"
    assert any(f"torch-{torch.__version__}" in m and "CPU" in m for m in log_messages)
    for dev in ("0", 0, "cuda:0", "0,1", [0, 1]):
        with pytest.raises(UserError) as e:
            select_device(dev, verbose=False)
        assert f"device={dev!r} requested but CUDA is not available" in str(e.value)
        assert "torch.cuda.is_available() is False" in str(e.value) and "device='cpu'" in str(e.value)
    with pytest.raises(UserError, match="device='gpu0' not understood"):
        select_device("gpu0")
    assert select_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_select_device_cuda():
    assert select_device("") == torch.device("cuda:0") and select_device(0) == torch.device("cuda:0")
    with pytest.raises(UserError, match="CUDA device"):
        select_device(str(torch.cuda.device_count()))


def test_amp_and_grad_scaler_cpu_noop():
    assert not amp_allowed("cpu") and amp_allowed("cuda:0") and amp_allowed(torch.device("cuda", 1))
    scaler = make_grad_scaler(True, "cpu")
    assert not scaler.is_enabled()
    w = torch.ones(2, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.5)
    loss = (w * 3).sum()
    assert scaler.scale(loss) is loss  # no scaling on CPU
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    assert torch.allclose(w, torch.full((2,), 1 - 0.5 * 3))
    with autocast(True, "cpu"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


# ----------------------------------------------------------------------------------------------- optimizer
def test_build_optimizer_groups_exact(log_messages):
    model = small_model()
    frozen = nn.Linear(2, 2)
    frozen.requires_grad_(False)
    model.append(frozen)  # skipped: requires_grad False
    opt = build_optimizer(model, "SGD", lr=0.02, momentum=0.8, decay=5e-4)
    g0, g1, g2 = opt.param_groups
    assert [g["name"] for g in opt.param_groups] == ["decay", "norm", "bias"]
    ids = lambda g: {id(p) for p in g["params"]}  # noqa: E731
    assert ids(g0) == {id(model[0].weight), id(model[2].weight), id(model[5].weight)}
    assert ids(g1) == {id(model[1].weight)}
    assert ids(g2) == {id(model[1].bias), id(model[2].bias), id(model[5].bias)}
    assert [sum(p.numel() for p in g["params"]) for g in opt.param_groups] == [3 * 8 * 9 + 8 * 4 + 4 * 2, 8, 8 + 4 + 2]
    assert (g0["weight_decay"], g1["weight_decay"], g2["weight_decay"]) == (5e-4, 0.0, 0.0)
    assert isinstance(opt, torch.optim.SGD) and g0["nesterov"] and g0["momentum"] == 0.8 and g0["lr"] == 0.02
    assert any("3 weight(decay=0.0005), 1 norm weight(decay=0.0), 3 bias(decay=0.0)" in m for m in log_messages)


def test_build_optimizer_norm_kinds_and_shared_params():
    lin = nn.Linear(4, 4)
    model = nn.Sequential(lin, nn.LayerNorm(4), nn.GroupNorm(2, 4), lin)  # lin shared: counted once
    opt = build_optimizer(model, "AdamW", lr=1e-3, momentum=0.9, decay=0.01)
    assert [len(g["params"]) for g in opt.param_groups] == [1, 2, 3]


def test_build_optimizer_auto_rule_and_names():
    sgd = build_optimizer(small_model(), "auto", lr=0.5, momentum=0.5, iterations=20000, nc=80)
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["lr"] == 0.01
    assert sgd.param_groups[0]["momentum"] == 0.9 and sgd.param_groups[0]["nesterov"]
    adamw = build_optimizer(small_model(), "auto", iterations=10000, nc=2)  # not > 10000 -> AdamW
    assert isinstance(adamw, torch.optim.AdamW)
    assert adamw.param_groups[0]["lr"] == round(0.002 * 5 / 6, 6) == 0.001667
    assert adamw.param_groups[0]["betas"] == (0.9, 0.999)
    kinds = {"sgd": torch.optim.SGD, "Adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
             "NAdam": torch.optim.NAdam, "RAdam": torch.optim.RAdam, "rmsprop": torch.optim.RMSprop}
    for name, cls in kinds.items():
        assert type(build_optimizer(small_model(), name)) is cls
    with pytest.raises(UserError, match="optimizer='Lion' is not supported; choose one of SGD, Adam, AdamW"):
        build_optimizer(small_model(), "Lion")
    frozen = small_model().requires_grad_(False)
    with pytest.raises(UserError, match="no trainable parameters"):
        build_optimizer(frozen, "SGD")


def test_lr_lambdas():
    cos = one_cycle(1.0, 0.01, 100)
    assert cos(0) == pytest.approx(1.0) and cos(100) == pytest.approx(0.01) and cos(50) == pytest.approx(0.505)
    assert cos(25) == pytest.approx(1 + (0.01 - 1) * (1 - math.cos(math.pi / 4)) / 2)
    lin = lr_lambda(False, 0.1, 10)
    assert [round(lin(x), 6) for x in (0, 5, 10, 12)] == [1.0, 0.55, 0.1, 0.1]
    assert lr_lambda(True, 0.01, 100)(50) == pytest.approx(0.505)


# ----------------------------------------------------------------------------------------------- EMA
def test_model_ema_hand_formula_and_state():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    w0 = model[0].weight.detach().clone()
    ema = ModelEMA(nn.DataParallel(model), decay=0.9, tau=2.0)  # wrapped model: de_parallel is used
    assert not ema.ema.training and not any(p.requires_grad for p in ema.ema.parameters())
    with torch.no_grad():
        model[0].weight.add_(1.0)
    w1 = model[0].weight.detach().clone()
    ema.update(nn.DataParallel(model))
    with torch.no_grad():
        model[0].weight.mul_(2.0)
    w2 = model[0].weight.detach().clone()
    ema.update(model)
    d1, d2 = 0.9 * (1 - math.exp(-1 / 2.0)), 0.9 * (1 - math.exp(-2 / 2.0))
    expected = d2 * (d1 * w0 + (1 - d1) * w1) + (1 - d2) * w2
    assert ema.updates == 2 and torch.allclose(ema.ema[0].weight, expected, atol=1e-6)
    assert ema.decay_at(2) == pytest.approx(d2)
    assert ema.ema[1].num_batches_tracked.item() == 0  # integer buffers are not averaged
    state = ema.state_dict()
    other = ModelEMA(model)
    other.load_state_dict(state)
    assert other.updates == 2 and torch.equal(other.ema[0].weight, ema.ema[0].weight)
    ema.update(model)
    assert not torch.equal(state["ema"]["0.weight"], ema.ema[0].weight)  # state_dict() is a snapshot
    model.names = {0: "a"}
    ema.update_attr(model, include=("names",))
    assert ema.ema.names == {0: "a"}


def test_parallel_helpers_and_counts():
    m = small_model()
    dp = nn.DataParallel(m)
    assert is_parallel(dp) and not is_parallel(m) and de_parallel(dp) is m and de_parallel(m) is m
    n = 3 * 8 * 9 + 8 + 8 + 8 * 4 + 4 + 4 * 2 + 2
    assert get_num_params(m) == n
    m[0].requires_grad_(False)
    assert get_num_gradients(m) == n - 3 * 8 * 9
    t0 = time_sync()
    assert time_sync() >= t0
    with torch_distributed_zero_first(-1):
        pass


def test_init_seeds_reproducible():
    def draw():
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    init_seeds(123)
    a = draw()
    init_seeds(123)
    assert draw() == a
    init_seeds(124)
    assert draw() != a
    old = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
           torch.backends.cudnn.benchmark, os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    try:
        init_seeds(0, deterministic=False)
        assert torch.are_deterministic_algorithms_enabled() == old[0]  # False changes no flags
        init_seeds(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] in (":4096:8", old[3])
    finally:
        torch.use_deterministic_algorithms(old[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = old[1], old[2]
        if old[3] is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)


def test_early_stopping(log_messages):
    es = EarlyStopping(patience=3)
    fits = [0.1, 0.3, 0.2, 0.25, 0.31]  # epoch 3 waited 2 epochs since best (epoch 1), then improves at 4
    assert [es(e, f) for e, f in enumerate(fits)] == [False] * 5
    assert (es.best_epoch, es.best_fitness) == (4, 0.31) and not es.possible_stop
    assert [es(e, 0.0) for e in (5, 6, 7)] == [False, False, True] and es.possible_stop
    assert any("stopping at epoch 7" in m and "last 3 epochs" in m and "epoch 4" in m for m in log_messages)
    never = EarlyStopping(patience=0)
    assert not any(never(e, 0.5 if e == 0 else 0.0) for e in range(200))
    restored = EarlyStopping(3)
    restored.load_state_dict(es.state_dict())
    assert (restored.best_epoch, restored.best_fitness) == (4, 0.31) and restored(9, None) is False


# ----------------------------------------------------------------------------------------------- files
def test_increment_path_sequence(tmp_path):
    base = tmp_path / "runs" / "exp"
    got = [increment_path(base) for _ in range(3)]
    assert got == [base, tmp_path / "runs" / "exp2", tmp_path / "runs" / "exp3"] and all(p.is_dir() for p in got)
    assert increment_path(base, exist_ok=True) == base
    assert increment_path(tmp_path / "runs" / "r", sep="-") == tmp_path / "runs" / "r"
    assert increment_path(tmp_path / "runs" / "r", sep="-") == tmp_path / "runs" / "r-2"
    assert increment_path(base, mkdir=False) == tmp_path / "runs" / "exp4"
    assert not (tmp_path / "runs" / "exp4").exists()
    f = tmp_path / "a.txt"
    f.write_text("x")
    assert increment_path(f) == tmp_path / "a2.txt"


def _claim(path: str, barrier, queue) -> None:
    """Process worker: wait for all, then claim a run directory."""
    barrier.wait()
    queue.put(str(increment_path(path)))


def test_increment_path_race_processes_and_threads(tmp_path):
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(8), ctx.Queue()
    procs = [ctx.Process(target=_claim, args=(str(tmp_path / "p" / "exp"), barrier, queue)) for _ in range(8)]
    for p in procs:
        p.start()
    got = sorted(queue.get(timeout=30) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    names = ["exp"] + [f"exp{i}" for i in range(2, 9)]
    assert sorted(Path(g).name for g in got) == sorted(names) and len(set(got)) == 8

    results, tbarrier = [], threading.Barrier(8)

    def claim_thread():
        tbarrier.wait()
        results.append(increment_path(tmp_path / "t" / "exp"))

    threads = [threading.Thread(target=claim_thread) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(p.name for p in results) == sorted(names)


def test_atomic_writes_roundtrip_and_modes(tmp_path):
    p = atomic_write_text(tmp_path / "sub" / "a.txt", "héllo")
    assert p.read_text(encoding="utf-8") == "héllo" and (p.stat().st_mode & 0o777) == 0o666 & ~_umask()
    os.chmod(p, 0o600)
    atomic_write_bytes(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01" and (p.stat().st_mode & 0o777) == 0o600  # mode of the old file kept
    ck = atomic_torch_save({"w": torch.arange(4.0), "epoch": 3}, tmp_path / "w" / "last.pt")
    loaded = torch.load(ck, weights_only=True)
    assert loaded["epoch"] == 3 and torch.equal(loaded["w"], torch.arange(4.0))
    assert sorted(x.name for x in (tmp_path / "w").iterdir()) == ["last.pt"]  # no temp files left


def _umask() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    return 0o022


def _assert_failed_save_keeps_old(target: Path) -> None:
    with pytest.raises(FileWriteError) as e:
        atomic_torch_save({"w": torch.zeros(1000)}, target)
    assert str(target) in str(e.value) and isinstance(e.value, UserError) and isinstance(e.value, OSError)
    assert torch.load(target, weights_only=True) == {"v": 1}
    assert sorted(x.name for x in target.parent.iterdir()) == [target.name]


def test_atomic_torch_save_read_only_dir(tmp_path):
    """A real read-only directory. Root ignores directory permissions, so as root the save runs in a forked
    child that has become the unprivileged user 'nobody' (uid 65534) before it tries to write."""
    root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(dir="/tmp")) if root else tmp_path  # pytest's tmp dirs are private to root
    target = base / "ro" / "last.pt"
    atomic_torch_save({"v": 1}, target)
    os.chmod(base, 0o755)
    os.chmod(target.parent, 0o555)
    try:
        if not root:
            _assert_failed_save_keeps_old(target)
            return
        pid = os.fork()
        if pid == 0:  # the child: drop root, try the save, report through the exit code
            code = 3
            try:
                os.setgid(65534)
                os.setuid(65534)
                atomic_torch_save({"w": torch.zeros(1000)}, target)
                code = 1  # written: the directory was not read-only for this user
            except FileWriteError as e:
                code = 0 if str(target) in str(e) and "Permission denied" in str(e) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0  # a FileWriteError naming the file, as for any user
        assert torch.load(target, weights_only=True) == {"v": 1}
        assert sorted(x.name for x in target.parent.iterdir()) == [target.name]  # no temp file left
    finally:
        os.chmod(target.parent, 0o755)
        if root:
            shutil.rmtree(base, ignore_errors=True)


def test_atomic_torch_save_failures_simulated(tmp_path, monkeypatch):
    target = tmp_path / "w" / "last.pt"
    atomic_torch_save({"v": 1}, target)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:  # fails at the final rename
        m.setattr(files_mod.os, "replace", no_space)
        _assert_failed_save_keeps_old(target)

    def half_write(obj, f):  # fails mid-write after some bytes hit the temp file
        f.write(b"partial")
        no_space()

    with monkeypatch.context() as m:
        m.setattr(torch, "save", half_write)
        _assert_failed_save_keeps_old(target)
        with pytest.raises(FileWriteError, match=r"ENOSPC"):
            atomic_torch_save({"v": 2}, target)

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    with monkeypatch.context() as m:  # read-only dir: creating the temp file fails
        m.setattr(files_mod.tempfile, "mkstemp", denied)
        with pytest.raises(FileWriteError, match=r"could not write '.*last.pt': Permission denied"):
            atomic_torch_save({"v": 3}, target)
    assert torch.load(target, weights_only=True) == {"v": 1}


def test_file_size_and_check_writable(tmp_path, monkeypatch):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.bin").write_bytes(b"\0" * (1 << 20))
    (tmp_path / "d" / "b.bin").write_bytes(b"\0" * (1 << 19))
    assert file_size(tmp_path / "d" / "a.bin") == 1.0 and file_size(tmp_path / "d") == 1.5
    assert file_size(tmp_path / "missing") == 0.0
    assert check_writable(tmp_path / "new" / "dir") == tmp_path / "new" / "dir"
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(files_mod.tempfile, "TemporaryFile", denied)
    with pytest.raises(FileWriteError, match=r"could not write '.*new.dir': Permission denied"):
        check_writable(tmp_path / "new" / "dir")
