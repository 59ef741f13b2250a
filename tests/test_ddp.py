"""DistributedDataParallel on the CPU: torchrun with 2 gloo processes, a tiny model and 16 images.

Each torchrun call is bounded by a timeout, so a hang fails the test instead of stalling the suite.
The bad-input checks run in this process (they fail before anything is joined or written).
A rank that stops through the coordinated stop (an exception on some rank, Ctrl-C) writes an exit record into
$YOLO_DDP_EXIT_RECORDS (utils/dist.write_exit_record); a rank killed by torchrun writes none.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from faults.helpers import read_rows as rows, without_time  # the results.csv readers the fault suite uses
from ultralytics.utils import UserError
from ultralytics.utils.dist import EXIT_RECORDS_ENV

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CHILD = HERE / "ddp_child.py"
TINY_MODEL = HERE / "faults" / "yolov10t-faults.yaml"
TIMEOUT = 240  # seconds for one torchrun call on 2 busy CPU cores
SETTINGS = dict(model=str(TINY_MODEL), imgsz=64, batch=4, workers=0, epochs=2, close_mosaic=1, device="cpu",
                optimizer="SGD", plots=False, seed=0, deterministic=True, warmup_epochs=1, name="exp")


@pytest.fixture(scope="module", autouse=True)
def custom_model(tmp_path_factory):
    """The tiny YOLOv10 with row 10 (PSA) replaced by DDPScale, a module tests/ddp_child.py registers."""
    f = tmp_path_factory.mktemp("model") / "yolov10t-ddpscale.yaml"
    text = TINY_MODEL.read_text()
    assert "[-1, 1, PSA, [1024]]" in text
    f.write_text(text.replace("[-1, 1, PSA, [1024]]", "[-1, 1, DDPScale, []]"))
    SETTINGS["model"] = str(f)
    return f


def env(records: Path | None = None) -> dict:
    """The children's environment; records: the folder for the ranks' exit records."""
    e = dict(os.environ)
    e.update(PYTHONPATH=str(REPO) + os.pathsep + e.get("PYTHONPATH", ""), OMP_NUM_THREADS="1", NO_COLOR="1",
             OMP_WAIT_POLICY="PASSIVE", PYTHONUNBUFFERED="1")
    e.pop(EXIT_RECORDS_ENV, None)
    if records is not None:
        records.mkdir(parents=True, exist_ok=True)
        e[EXIT_RECORDS_ENV] = str(records)
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        e.pop(k, None)
    return e


def run_child(tmp: Path, spec: dict, nproc: int | None = 2,
              records: Path | None = None) -> tuple[subprocess.CompletedProcess, float]:
    """Run tests/ddp_child.py under torchrun (nproc processes) or alone (nproc None); (result, seconds)."""
    f = tmp / f"spec{time.monotonic_ns()}.json"
    f.write_text(json.dumps(spec))
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] if nproc else []
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, *launcher, str(CHILD), str(f)], capture_output=True, text=True,
                       timeout=TIMEOUT, env=env(records), cwd=REPO)
    return r, time.perf_counter() - t0


@pytest.fixture(scope="module")
def ddp_run(tiny_data, tmp_path_factory):
    """One 2-process gloo run of 2 epochs: (run directory, project, per-rank step hashes, stdout, seconds)."""
    tmp = tmp_path_factory.mktemp("ddp")
    spec = {"settings": {**SETTINGS, "data": tiny_data, "project": str(tmp / "runs")}, "out": str(tmp / "out"),
            "mode": "train"}
    r, sec = run_child(tmp, spec)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    hashes = [json.loads((tmp / "out" / f"rank{k}.json").read_text())["hashes"] for k in (0, 1)]
    return tmp / "runs" / "exp", tmp / "runs", hashes, r.stdout + r.stderr, sec


def test_ddp_one_run_dir_one_row_per_epoch(ddp_run):
    run, project, _, out, sec = ddp_run
    assert sorted(p.name for p in project.iterdir()) == ["exp"]  # one run directory, not exp and exp2
    assert [int(r["epoch"]) for r in rows(run)] == [1, 2]
    assert out.count("DDP: world size 2, backend gloo, 2 images per process") == 1  # rank 0 alone prints it
    assert (run / "weights" / "last.pt").is_file() and (run / "weights" / "best.pt").is_file()
    from ultralytics.utils.checkpoint import read_checkpoint

    ckpt = read_checkpoint(run / "weights" / "last.pt")  # the registered module trained in both processes
    assert "model.10.w" in ckpt["model"] and not torch.all(ckpt["model"]["model.10.w"] == 1)
    print(f"2-process gloo run, 2 epochs of 16 images: {sec:.1f} s")


def test_ddp_weights_identical_after_every_step(ddp_run):
    _, _, (h0, h1), _, _ = ddp_run
    assert len(h0) >= 4  # optimizer steps taken (accumulation during warmup makes fewer than batches)
    assert h0 == h1


def test_ddp_gradients_equal_one_process_of_the_global_batch(tiny_data, tmp_path):
    """BN frozen: the first step's gradient of 2 ranks x 2 images equals that of one process of the same 4 images
    (the loss normaliser, the batch's target-score sum, is all-reduced across the ranks)."""
    settings = {**SETTINGS, "data": tiny_data, "epochs": 1, "val": False, "project": str(tmp_path / "runs")}
    r, _ = run_child(tmp_path, {"settings": {**settings, "name": "ddp"}, "out": str(tmp_path / "ddp"),
                                "mode": "grads"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r, _ = run_child(tmp_path, {"settings": {**settings, "name": "whole"}, "out": str(tmp_path / "whole"),
                                "mode": "grads"}, nproc=None)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    g0, g1 = (torch.load(tmp_path / "ddp" / f"grads{k}.pt") for k in (0, 1))
    whole = torch.load(tmp_path / "whole" / "grads-1.pt")
    assert set(g0) == set(whole) and len(g0) > 50
    flat = lambda g: torch.cat([g[k].flatten() for k in sorted(g)])  # noqa: E731
    assert torch.equal(flat(g0), flat(g1))  # all-reduced: the same on both ranks
    rel = (flat(g0) - flat(whole)).norm() / flat(whole).norm()
    print(f"DDP first-step gradient vs one process of the global batch: relative L2 difference {rel:.2e}")
    assert torch.allclose(flat(g0), flat(whole), rtol=1e-4, atol=1e-6)
    assert not torch.allclose(flat(g0), flat(g0) * 1.01, rtol=1e-4, atol=1e-6)  # the tolerance can fail


def exit_records(folder: Path) -> dict[int, dict]:
    """{rank: its exit record} of the ranks that reached the coordinated stop."""
    records = [json.loads(f.read_text()) for f in sorted(folder.glob("*.json"))]
    return {r["rank"]: r for r in records}


def test_ddp_exception_on_one_rank_ends_both(tiny_data, tmp_path):
    """rank 1 raises in its 2nd training batch: at that step's all-reduce both ranks learn it; rank 1 re-raises its
    error, rank 0 raises PeerError naming rank 1; both wrote their exit record there (not killed by torchrun)."""
    spec = {"settings": {**SETTINGS, "data": tiny_data, "project": str(tmp_path / "runs")}, "out": str(tmp_path),
            "mode": "fail", "fail_rank": 1, "fail_batch": 2}
    r, _ = run_child(tmp_path, spec, records=tmp_path / "exit")
    text = r.stdout + r.stderr
    assert r.returncode != 0
    assert "RuntimeError: boom on rank 1 at batch 2" in text
    assert "PeerError: rank 1 raised an error at epoch 1, batch 1 (its traceback is above); rank 0 stopped at the " \
           "same step" in text, text[-3000:]
    where = {"stop": "exception", "raised_by": 1, "epoch": 1, "batch": 1}  # batch index 1 = the 2nd batch
    assert exit_records(tmp_path / "exit") == {0: {"rank": 0, **where, "raised_here": False},
                                               1: {"rank": 1, **where, "raised_here": True}}, text[-3000:]
    assert not (tmp_path / "rank0.json").exists()  # rank 0 did not finish on its own


def test_ddp_ctrl_c_on_rank_0_stops_both_at_the_same_step(tiny_data, tmp_path):
    """One SIGINT to rank 0 in epoch 2: every rank stops at that step (none waits in a collective); last.pt keeps
    epoch 1 and rank 0 says so once."""
    out = tmp_path / "o"
    out.mkdir()
    spec = {"settings": {**SETTINGS, "data": tiny_data, "project": str(tmp_path / "r")}, "out": str(out),
            "mode": "sigint", "fail_batch": 6}
    f = tmp_path / "spec.json"
    f.write_text(json.dumps(spec))
    p = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          str(CHILD), str(f)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=env(tmp_path / "exit"), cwd=REPO)
    try:
        deadline = time.time() + TIMEOUT
        while not (out / "pid").exists() and time.time() < deadline and p.poll() is None:
            time.sleep(0.1)
        assert (out / "pid").exists(), p.communicate()[0][-3000:]
        time.sleep(0.2)
        os.kill(int((out / "pid").read_text()), signal.SIGINT)
        text = p.communicate(timeout=120)[0]
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode != 0
    assert text.count("WARNING: training interrupted (KeyboardInterrupt) in epoch 2/2.") == 1, text[-3000:]
    assert "holds epoch 1, the last finished one" in text
    assert [int(r["epoch"]) for r in rows(tmp_path / "r" / "exp")] == [1]
    rec = exit_records(tmp_path / "exit")  # both ranks stopped through the flag, at the same step of epoch 2
    assert sorted(rec) == [0, 1] and rec[0]["pressed_here"] and not rec[1]["pressed_here"], (rec, text[-3000:])
    assert {(x["stop"], x["epoch"], x["batch"]) for x in rec.values()} == {("interrupt", 2, rec[0]["batch"])}


def test_ddp_nan_loss_on_one_rank_skips_the_step_on_both(tiny_data, tmp_path):
    """A NaN loss on rank 1 alone: both ranks skip that step (no rank waits in an all-reduce), training goes on."""
    spec = {"settings": {**SETTINGS, "data": tiny_data, "epochs": 1, "val": False, "project": str(tmp_path / "r")},
            "out": str(tmp_path), "mode": "nan", "fail_rank": 1, "fail_batch": 2}
    r, _ = run_child(tmp_path, spec)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "WARNING: non-finite loss at epoch 1, batch 1: step skipped (1 in a row)" in r.stdout + r.stderr
    h0, h1 = (json.loads((tmp_path / f"rank{k}.json").read_text())["hashes"] for k in (0, 1))
    assert h0 == h1 and len(h0) >= 2


def test_ddp_resume_continues_the_run(ddp_run, tiny_data, tmp_path):
    """Rank 0 dies right after epoch 1 is written; torchrun resumes from last.pt: the rows equal the whole run's."""
    project = tmp_path / "runs"
    spec = {"settings": {**SETTINGS, "data": tiny_data, "project": str(project)}, "out": str(tmp_path / "a"),
            "mode": "crash_after_epoch", "epoch": 1}
    r, _ = run_child(tmp_path, spec)
    assert r.returncode != 0 and len(rows(project / "exp")) == 1
    last = project / "exp" / "weights" / "last.pt"
    from ultralytics.models.yolo.detect import DetectionTrainer

    with pytest.raises(UserError, match="world size 2; resume it with the same number of processes"):
        DetectionTrainer(overrides={"resume": str(last)})  # one process cannot continue a 2-process run
    spec = {"settings": {"resume": str(last), "project": str(project)}, "out": str(tmp_path / "b"), "mode": "train"}
    r, _ = run_child(tmp_path, spec)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert sorted(p.name for p in project.iterdir()) == ["exp"]
    assert without_time(rows(project / "exp")) == without_time(rows(ddp_run[0]))
    h0 = json.loads((tmp_path / "b" / "rank0.json").read_text())["hashes"]
    assert h0 == ddp_run[2][0][-len(h0):]  # the resumed steps give the very weights of the whole run


# --- bad input: a clear error, nothing written ---------------------------------------------------------------
def torchrun_env(monkeypatch, world=2, rank=0):
    for k, v in dict(WORLD_SIZE=world, RANK=rank, LOCAL_RANK=rank, LOCAL_WORLD_SIZE=world).items():
        monkeypatch.setenv(k, str(v))


def test_batch_must_divide_by_world_size(monkeypatch, tiny_data, tmp_path):
    from ultralytics.models.yolo.detect import DetectionTrainer

    torchrun_env(monkeypatch)
    with pytest.raises(UserError, match=r"batch=5 is the global batch and must divide by the world size 2 .*batch=4"):
        DetectionTrainer(overrides={"data": tiny_data, "batch": 5, "device": "cpu", "project": str(tmp_path / "p")})
    with pytest.raises(UserError, match=r"batch=-1 \(AutoBatch\) is not supported under torchrun"):
        DetectionTrainer(overrides={"data": tiny_data, "batch": -1, "device": "cpu", "project": str(tmp_path / "p")})
    assert not (tmp_path / "p").exists()


def test_torchrun_device_must_be_local_rank(monkeypatch, tiny_data, tmp_path):
    from ultralytics.models.yolo.detect import DetectionTrainer

    torchrun_env(monkeypatch, rank=1)
    with pytest.raises(UserError, match=r"device='0' requested under torchrun but CUDA is not available"):
        DetectionTrainer(overrides={"data": tiny_data, "device": "0", "project": str(tmp_path / "p")})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    with pytest.raises(UserError, match=r"device='2,3' under torchrun: each process uses the GPU LOCAL_RANK .*"
                                        r"device must be '' or 0,1; pick other GPUs with CUDA_VISIBLE_DEVICES"):
        DetectionTrainer(overrides={"data": tiny_data, "device": "2,3", "project": str(tmp_path / "p")})
    with pytest.raises(UserError, match=r"device='0' under torchrun"):
        DetectionTrainer(overrides={"data": tiny_data, "device": "0", "project": str(tmp_path / "p")})
    assert not (tmp_path / "p").exists()


def test_multi_gpu_device_without_cuda_or_enough_gpus(monkeypatch, tiny_data, tmp_path):
    from ultralytics import YOLO

    with pytest.raises(UserError, match=r"device='0,1' requested but CUDA is not available"):
        YOLO(str(TINY_MODEL)).train(data=tiny_data, device="0,1", project=str(tmp_path / "p"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UserError, match=r"device=\[0, 1\] requested but only 1 CUDA device\(s\) are visible"):
        YOLO(str(TINY_MODEL)).train(data=tiny_data, device=[0, 1], project=str(tmp_path / "p"))
    assert not (tmp_path / "p").exists()


def test_device_list_launches_torchrun_on_this_script(monkeypatch, tiny_data, tmp_path):
    """device=2,3 outside torchrun: torchrun runs this script with 2 processes on GPUs 2 and 3, in the run
    directory this process claimed; no other file is written."""
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.utils import dist

    seen = {}

    def fake_run(cmd, env):
        seen.update(cmd=cmd, env=env)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr("ultralytics.engine.trainer.select_device", lambda d, b: torch.device("cuda:2"))
    monkeypatch.setattr(dist.subprocess, "run", fake_run)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    tr = DetectionTrainer(overrides={"data": tiny_data, "device": "2,3", "batch": 8,
                                     "project": str(tmp_path / "p")})
    tr.train()
    cmd, e = seen["cmd"], seen["env"]
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert cmd[5:] == dist.script_command()  # the same script (or module) with the same arguments
    assert e["CUDA_VISIBLE_DEVICES"] == "2,3" and e[dist.LAUNCHED_ENV] == "2,3"
    assert e[dist.SAVE_DIR_ENV] == str(tmp_path / "p" / "exp")
    assert [p.name for p in (tmp_path / "p").iterdir()] == ["exp"] and not any((tmp_path / "p" / "exp").iterdir())
    monkeypatch.setattr(dist.subprocess, "run", lambda cmd, env: subprocess.CompletedProcess(cmd, 1))
    with pytest.raises(RuntimeError, match="DDP training failed: torchrun exited with code 1"):
        DetectionTrainer(overrides={"data": tiny_data, "device": "2,3", "project": str(tmp_path / "p")}).train()


def test_distributed_sampler_slices_the_global_batch():
    from ultralytics.data.build import DistributedEpochSampler, EpochSampler

    for n, b in ((16, 2), (13, 3), (5, 4)):
        whole = EpochSampler(n, seed=7)
        parts = [DistributedEpochSampler(n, b, 2, r, seed=7) for r in (0, 1)]
        for s in (whole, *parts):
            s.set_epoch(3)
        order, ranks = list(whole), [list(p) for p in parts]
        assert len(ranks[0]) == len(ranks[1]) == len(parts[0])  # the same number of batches on every rank
        rebuilt = []
        for k in range(0, len(ranks[0]), b):  # step k: rank 0's batch then rank 1's = the global batch k
            rebuilt += ranks[0][k:k + b] + ranks[1][k:k + b]
        assert rebuilt[:n] == order and set(rebuilt[n:]) <= set(order)  # padding repeats a few images
