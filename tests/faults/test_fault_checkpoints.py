"""Hostile and broken checkpoints: refused before anything runs, or a clear error naming the file.

Every hostile payload is live: a plain `pickle.loads` of the same bytes creates a marker file (the control).
Through the project's loaders the marker is never created and the error names the refused global.
"""

from __future__ import annotations

import io
import re
import pickle
import time
import zipfile

import numpy as np
import pytest
import torch

from ultralytics import YOLO
from ultralytics.nn.transfer import transfer_weights
from ultralytics.nn.weights import load_model
from ultralytics.utils import UserError
from ultralytics.utils.checkpoint import ALLOWED_GLOBALS, RestrictedUnpickler, read_checkpoint

from .helpers import Checks, raises
from .pickles import (BUILD, POP, PROTO, STOP, call, dct, glob, lst, memo_get, memo_put, num, pickle_of,
                      pt_archive, raw, storage_tensor, text, tup)


def _torch_saved_evil(marker: str) -> bytes:
    """A real torch.save archive whose pickle calls os.system (the payload nested in _load_from_bytes)."""
    buf = io.BytesIO()
    pt = pickle_of(call(glob("os", "system"), text(f"touch {marker}")))
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pt)
        z.writestr("archive/version", "3\n")
        z.writestr("archive/byteorder", "little")
    return buf.getvalue()


def _via_getattr(first: bytes, obj: bytes, attr: str, *args: bytes) -> bytes:
    """getattr(obj, attr)(*args), with `first` resolved before anything else (memo slot 0)."""
    return (first + memo_put(0) + POP
            + call(call(memo_get(0), obj, text(attr)), *args))


# name -> (first global the unpickler meets, payload(marker) -> ops, live: the control creates the marker)
HOSTILE = {
    "os.system": ("os.system", lambda m: call(glob("os", "system"), text(f"touch {m}")), True),
    "posix.system": ("posix.system", lambda m: call(glob("posix", "system"), text(f"touch {m}")), True),
    "builtins.eval": ("builtins.eval", lambda m: call(glob("builtins", "eval"), text(f"open({m!r}, 'w').close()")),
                      True),
    "builtins.exec": ("builtins.exec", lambda m: call(glob("builtins", "exec"), text(f"open({m!r}, 'w').close()")),
                      True),
    "builtins.open": ("builtins.open", lambda m: call(glob("builtins", "open"), text(m), text("w")), True),
    "subprocess.Popen": ("subprocess.Popen", lambda m: call(glob("subprocess", "Popen"), lst(text("touch"), text(m))),
                         True),
    "subprocess.check_output": ("subprocess.check_output",
                                lambda m: call(glob("subprocess", "check_output"), lst(text("touch"), text(m))), True),
    "builtins.getattr": ("builtins.getattr", lambda m: _via_getattr(
        glob("builtins", "getattr"), call(glob("builtins", "__import__"), text("os")), "system", text(f"touch {m}")),
                         True),
    "builtins.__import__": ("builtins.__import__", lambda m: (
        call(glob("builtins", "__import__"), text("os")) + memo_put(1) + POP
        + call(call(glob("builtins", "getattr"), memo_get(1), text("system")), text(f"touch {m}"))), True),
    "importlib.import_module": ("importlib.import_module", lambda m: (
        call(glob("importlib", "import_module"), text("os")) + memo_put(1) + POP
        + call(call(glob("builtins", "getattr"), memo_get(1), text("system")), text(f"touch {m}"))), True),
    "pathlib.PosixPath (class)": ("pathlib.PosixPath", lambda m: (
        call(glob("pathlib", "PosixPath"), text(m)) + memo_put(1) + POP
        + call(call(glob("builtins", "getattr"), memo_get(1), text("touch")))), True),
    "torch._tensor._rebuild_from_type_v2": ("torch._tensor._rebuild_from_type_v2", lambda m: call(
        glob("torch._tensor", "_rebuild_from_type_v2"), glob("os", "system"), glob("builtins", "int"),
        tup(text(f"touch {m}")), dct()), True),
    "torch.storage._load_from_bytes": ("torch.storage._load_from_bytes", lambda m: call(
        glob("torch.storage", "_load_from_bytes"), raw(_torch_saved_evil(m))), True),
    "collections.Counter (class)": ("collections.Counter", lambda m: call(glob("collections", "Counter")), False),
    "random.Random (class)": ("random.Random", lambda m: call(glob("random", "Random"), num(0)), False),
    "copyreg._reconstructor": ("copyreg._reconstructor", lambda m: call(
        glob("copyreg", "_reconstructor"), glob("collections", "OrderedDict"), glob("builtins", "dict"), dct()),
                               False),
    "torch.load": ("torch.load", lambda m: call(glob("torch", "load"), text(m)), False),
    "numpy.load": ("numpy.load", lambda m: call(glob("numpy", "load"), text(m)), False),
    "numpy.core.multiarray._reconstruct": ("numpy.core.multiarray._reconstruct", lambda m: call(
        glob("numpy.core.multiarray", "_reconstruct"), glob("numpy", "ndarray"), tup(num(0)), text("b")), False),
    "__builtin__.eval (py2 name)": ("__builtin__.eval", lambda m: call(glob("__builtin__", "eval"), text("1")), False),
    "dotted name torch.nn.modules.module.Module.__init__": (
        "torch.nn.modules.module.Module.__init__", lambda m: call(glob("torch.nn.modules.module", "Module.__init__")),
        False),
}


def _marker_appears(marker, wait: float) -> bool:
    end = time.time() + wait
    while time.time() < end and not marker.exists():
        time.sleep(0.02)
    return marker.exists()


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_global_is_refused_before_it_runs(name, tmp_path, faults):
    first, payload, live = HOSTILE[name]
    control, marker = tmp_path / "control", tmp_path / "pwned"
    c = Checks()
    if live:  # the same bytes, loaded without restriction, do run code
        try:
            pickle.loads(pickle_of(payload(str(control))))
        except Exception:
            pass
        c("control: a plain pickle.loads runs the payload", _marker_appears(control, 5.0), name)
    path = pt_archive(tmp_path / "evil.pt", pickle_of(payload(str(marker))))
    c("refused with a UserError naming the global and the file", *raises(
        lambda: read_checkpoint(path), UserError,
        rf"evil\.pt' refused: global '{re.escape(first)}' is not on the checkpoint allow-list"))
    c("payload never ran", not _marker_appears(marker, 0.3 if "subprocess" in name else 0.0))
    # one refusal path (find_class: not allowed -> refuse) for all but the dotted name, which is refused although
    # its module is a stand-in namespace (the name is not an identifier)
    scenario = "dotted name in a stand-in namespace" if "dotted" in name else "global outside the allow-list"
    faults.record("checkpoint", scenario, c)


def test_every_entry_point_refuses(tmp_path, faults):
    """YOLO(path), model.load(path), load_model, transfer_weights and resume all go through the restricted reader."""
    marker = tmp_path / "pwned"
    path = pt_archive(tmp_path / "evil.pt", pickle_of(call(glob("os", "system"), text(f"touch {marker}"))))
    from ultralytics.models.yolo.detect import DetectionTrainer

    model = YOLO("yolov10n.yaml")
    entry_points = {
        "YOLO(path)": lambda: YOLO(str(path)),
        "YOLO.load": lambda: model.load(str(path)),
        "load_model": lambda: load_model(path),
        "transfer_weights": lambda: transfer_weights(model.model, str(path)),
        "resume": lambda: DetectionTrainer(overrides={"resume": str(path)}),
    }
    for what, fn in entry_points.items():  # each entry point is its own code path to the reader: one scenario each
        c = Checks()
        c("refused with a UserError naming the global", *raises(fn, UserError, "refused: global 'os.system'"))
        c("payload never ran", not marker.exists())
        faults.record("checkpoint", f"entry point {what}", c)


def test_ultralytics_standin_cannot_smuggle_code(tmp_path, faults):
    """A REDUCE of a real ultralytics function (it would write a file) only builds an inert stand-in."""
    marker = tmp_path / "pwned"
    ops = call(glob("ultralytics.utils.files", "atomic_write_text"), text(str(marker)), text("pwned"))
    pickle.loads(pickle_of(call(glob("ultralytics.utils.files", "atomic_write_text"), text(str(tmp_path / "c")),
                                text("x"))))
    assert (tmp_path / "c").read_text() == "x"  # control: the unrestricted unpickler calls it
    path = pt_archive(tmp_path / "smuggle.pt", pickle_of(ops))
    ckpt = read_checkpoint(path)
    c = Checks()
    c("loaded as an inert stand-in", ckpt["model"] == {}, ckpt)
    c("YOLO(path) refuses it clearly", *raises(lambda: YOLO(str(path)), UserError, "has no model 'yaml' dict"))
    c("payload never ran", not marker.exists())
    faults.record("checkpoint", "ultralytics.* REDUCE smuggle", c)


def test_standin_setstate_cannot_be_shadowed(tmp_path, faults):
    """BUILD state may not plant '__setstate__' (or any '__*' name) on a stand-in to hijack the next BUILD."""
    ops = (call(glob("ultralytics.nn.tasks", "DetectionModel"))
           + dct(__setstate__=glob("collections", "OrderedDict"), __class__=glob("collections", "OrderedDict"),
                 names=dct(a=num(1))) + BUILD + dct(yaml=dct(nc=num(3))) + BUILD)
    obj = RestrictedUnpickler(io.BytesIO(PROTO + ops + STOP)).load()
    c = Checks()
    c("no dunder planted", "__setstate__" not in vars(obj) and "__class__" not in vars(obj), vars(obj))
    c("still an inert stand-in", type(obj).__name__ == "DetectionModel"
      and repr(obj) == "<inert ultralytics.nn.tasks.DetectionModel>", repr(obj))
    # the second BUILD went through _Inert.__setstate__
    c("state kept as data", obj.names == {"a": 1} and obj.yaml == {"nc": 3}, vars(obj))
    faults.record("checkpoint", "stand-in __setstate__ shadowing", c)


def test_hooks_in_pickled_upstream_model_never_run(tmp_path, faults):
    """An upstream-style pickled model carrying a forward hook that would write a file: the hook never runs."""
    from ultralytics.nn.tasks import DetectionModel
    import ultralytics.nn.tasks as tasks

    marker = tmp_path / "pwned"

    class Hook:
        def __reduce__(self):
            from ultralytics.utils.files import atomic_write_text

            return atomic_write_text, (str(marker), "pwned")

    class YOLOv10DetectionModel(DetectionModel):
        pass

    YOLOv10DetectionModel.__module__ = "ultralytics.nn.tasks"
    YOLOv10DetectionModel.__qualname__ = "YOLOv10DetectionModel"
    tasks.YOLOv10DetectionModel = YOLOv10DetectionModel
    try:
        up = YOLOv10DetectionModel("yolov10n.yaml", nc=2, verbose=False)
        up.model[0].register_forward_hook(Hook())
        torch.save({"model": up, "train_args": {}}, tmp_path / "hooked.pt")
    finally:
        del tasks.YOLOv10DetectionModel
    assert not marker.exists()
    model = YOLO(str(tmp_path / "hooked.pt"))
    with torch.no_grad():
        model.model.eval()(torch.zeros(1, 3, 64, 64))
    c = Checks()
    c("no forward hook loaded", not model.model.model[0]._forward_hooks)
    c("payload never ran", not marker.exists())
    faults.record("checkpoint", "pickled forward hook", c)


def _real_checkpoint(tmp_path) -> bytes:
    return YOLO("yolov10n.yaml").save(tmp_path / "real.pt").read_bytes()


def _broken_files(tmp_path) -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, the reason words the error must contain)."""
    data = _real_checkpoint(tmp_path)
    rng = np.random.default_rng(0)
    corrupt = r"is (not a PyTorch checkpoint|corrupt or truncated)"
    cases = {"zero-byte": (b"", "is empty"), "text file": (b"weights: none\n", "not a PyTorch checkpoint")}
    for i, n in enumerate((1, 100, 4096)):
        cases[f"random {n} bytes"] = (rng.bytes(n), "not a PyTorch checkpoint")
    cases["random bytes with zip magic"] = (b"PK\x03\x04" + rng.bytes(2000), corrupt)
    for f in (0.01, 0.1, 0.5, 0.9, 0.999):
        cases[f"truncated at {f:.1%}"] = (data[: int(len(data) * f)], corrupt)
    cases["truncated by 1 byte"] = (data[:-1], corrupt)
    for name, pkl, reason in (("zip without data.pkl", None, "corrupt or truncated"),
                              ("data.pkl of random bytes", rng.bytes(300), "corrupt or truncated"),
                              ("data.pkl cut short", pickle_of(dct(a=num(1)))[:-4], "corrupt or truncated"),
                              ("pickle of a number", PROTO + num(7) + STOP, "holds no model weights")):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("archive/version", "3\n")
            if pkl is not None:
                z.writestr("archive/data.pkl", pkl)
        cases[name] = (buf.getvalue(), reason)
    # a tensor that claims more than its storage holds, or a storage that claims more than its record
    four = np.arange(4, dtype=np.float32).tobytes()
    for name, t in (("tensor past its storage", storage_tensor((10**6,), (1,))),
                    ("tensor offset past its storage", storage_tensor((4,), (1,), offset=3)),
                    ("negative stride", storage_tensor((4,), (-1,))),
                    ("storage larger than its record", storage_tensor((4,), (1,), numel=10**8))):
        cases[name] = (pt_archive(tmp_path / "t.pt", pickle_of(dct(w=t)), {"0": four}).read_bytes(),
                       "corrupt or truncated")
    for name, model, reason in (("model is a number", num(42), "holds no model weights"),
                                ("stand-in with _parameters a string",
                                 call(glob("ultralytics.nn.tasks", "DetectionModel")) + dct(_parameters=text("x"))
                                 + BUILD, "is malformed"),
                                ("stand-in with a string parameter",
                                 call(glob("torch.nn.modules.conv", "Conv2d")) + dct(_parameters=dct(w=text("x")))
                                 + BUILD, "is malformed")):
        cases[name] = (pt_archive(tmp_path / "t.pt", pickle_of(model)).read_bytes(), reason)
    return cases


def test_broken_checkpoint_files_give_clear_errors(tmp_path, faults):
    for name, (data, reason) in _broken_files(tmp_path).items():
        path = tmp_path / "broken.pt"
        path.write_bytes(data)
        c = Checks()
        for what, load in (("read_checkpoint", read_checkpoint), ("YOLO(path)", lambda p: YOLO(str(p)))):
            c(f"{what}: UserError naming the file and the reason",
              *raises(lambda: load(path), UserError, rf"(?s)^(?=.*checkpoint '{re.escape(str(path))}')(?=.*{reason})"))
        # the sizes of random bytes, and the truncation points, are values of one scenario each
        scenario = re.sub(r"^random \d+ bytes$", "random bytes", re.sub(r"^truncated (at|by) .*$", "truncated", name))
        faults.record("checkpoint", f"broken file: {scenario}", c)


def test_legacy_pickle_polyglot_is_refused(tmp_path, faults):
    """A legacy (non-zip) torch file that ends with a zip directory: torch reads the pickle at the start."""
    marker = tmp_path / "pwned"
    evil = PROTO + call(glob("os", "system"), text(f"touch {marker}")) + STOP
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle_of(dct()))
    path = tmp_path / "poly.pt"
    path.write_bytes(evil + buf.getvalue())
    assert zipfile.is_zipfile(path)
    c = Checks()
    c("refused with a UserError naming the global", *raises(lambda: read_checkpoint(path), UserError,
                                                             r"poly.pt' refused: global 'os.system'"))
    c("payload never ran", not marker.exists())
    faults.record("checkpoint", "legacy-pickle/zip polyglot", c)


def test_yaml_in_checkpoint_names_only_registered_modules(tmp_path, faults):
    """A checkpoint's model YAML is data: a row naming 'os.system' or 'eval' is an unknown module, not a lookup."""
    good = YOLO("yolov10n.yaml").model
    for bad in ("os.system", "eval", "__import__", "nn.functional.relu"):
        y = {**good.yaml, "backbone": [[-1, 1, bad, ["touch x"]], *good.yaml["backbone"][1:]]}
        torch.save({"model": dict(good.state_dict()), "yaml": y, "names": {0: "a"}}, tmp_path / "y.pt")
        c = Checks()
        c("UserError naming the row and the module", *raises(lambda: YOLO(str(tmp_path / "y.pt")), UserError,
                                                               rf"row 0 .*unknown module '{re.escape(bad)}'"))
        faults.record("checkpoint", "checkpoint YAML names an unregistered module", c)


def test_allow_list_is_what_security_md_documents():
    """SECURITY.md lists exactly the globals of ALLOWED_GLOBALS (and the stand-in namespaces)."""
    from .helpers import REPO

    doc = (REPO / "SECURITY.md").read_text()
    for module, name in ALLOWED_GLOBALS:
        assert f"`{module}.{name}`" in doc, f"{module}.{name} is allowed but not documented"
    assert "`ultralytics.*`" in doc and "`torch.nn.modules.*`" in doc


def test_malformed_yaml_in_checkpoint_on_load(tmp_path, faults):
    good = YOLO("yolov10n.yaml").model
    torch.save({"model": dict(good.state_dict()), "yaml": {"backbone": 5, "head": []}}, tmp_path / "y.pt")
    c = Checks()
    c("a UserError, not a crash", *raises(lambda: YOLO("yolov10n.yaml").load(str(tmp_path / "y.pt")), UserError))
    faults.record("checkpoint", "malformed YAML in a checkpoint, on load", c)
