"""A parent process that imports torch and the project once, then forks one training child per request.

A fresh Python process spends ~3 s importing torch (and torch._dynamo, which the optimizer pulls in); the
fault matrix runs ~30 trainings, so its children are forked from this pre-imported parent instead. Each child
is a real, separate process (it can be SIGKILLed, it dies by SIGINT as CPython does on an uncaught
KeyboardInterrupt) and applies its fault patches to its own memory only.

Protocol: one JSON line per request on stdin, {"spec", "log", "rc", "cwd"}; the reply is the child's pid on a line
of stdout. When the child ends, its exit status (negative: killed by that signal) is written to `rc`.
The parent is single-threaded, so forking is safe; it exits when stdin closes and its children are done.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import traceback


def _run_child(cmd: dict) -> None:
    """In the forked child: output to the log file, run the training, exit like CPython would."""
    code = 1
    try:
        fd = os.open(cmd["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        sys.stdin = open(os.devnull)
        os.chdir(cmd["cwd"])
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import child_train

        try:
            child_train.main(cmd["spec"])
            code = 0
        except KeyboardInterrupt:  # CPython: print the traceback, then die by SIGINT (status 130 in a shell)
            traceback.print_exc()
            sys.stdout.flush()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if not isinstance(e.code, int) and e.code is not None:
                print(e.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - report anything, like an uncaught exception would
            traceback.print_exc()
            code = 1
    finally:
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except Exception:  # noqa: BLE001
                pass
        os._exit(code)


def _reap(children: dict) -> None:
    """Write the exit status of every finished child to its rc file (atomically)."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        rc_file = children.pop(pid, None)
        if rc_file:
            tmp = rc_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(str(os.waitstatus_to_exitcode(status)))
            os.replace(tmp, rc_file)


def serve() -> None:
    import torch

    torch.set_num_threads(1)
    import torch._dynamo  # noqa: F401 - what torch.optim imports on first use
    import child_train  # noqa: F401
    from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: F401
    from ultralytics.utils.metrics import DetMetrics  # noqa: F401

    children: dict[int, str] = {}
    print("ready", flush=True)
    stdin = sys.stdin.buffer
    buf, open_ = b"", True
    while open_ or children:
        if open_:
            r, _, _ = select.select([stdin], [], [], 0.05)
            if r:
                chunk = os.read(stdin.fileno(), 65536)
                open_ = bool(chunk)
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    cmd = json.loads(line)
                    pid = os.fork()
                    if pid == 0:
                        _run_child(cmd)
                    children[pid] = cmd["rc"]
                    sys.stdout.write(f"{pid}\n")
                    sys.stdout.flush()
        else:
            select.select([], [], [], 0.05)
        _reap(children)


if __name__ == "__main__":
    serve()
