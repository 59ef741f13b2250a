"""Model building from YAML (parse_model) and the DetectionModel.

Adding a module takes the blog's four steps: (1) a file in nn/Addmodules, (2) its import in
nn/Addmodules/__init__.py, (3) its import here, (4) one line in MODULE_TABLE below naming its
channel rule. A module from outside the tree needs only `register_module(MyBlock, 'same')`.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import re
from pathlib import Path

import torch
import torch.nn as nn
import yaml

from ultralytics.nn.Addmodules import LSKA, PSALSKA  # step 3: import the added modules
from ultralytics.nn.Addmodules import CBAM, ECA, EMA, LKA, SE, CoordAtt, SimAM, TripletAttention  # baselines
from ultralytics.nn.modules import (C2f, CIB, PSA, SCDown, SPPF, Bottleneck, C2fCIB, Concat, Conv, RepVGGDW,
                                    v10Detect)
from ultralytics.nn.registry import closest_names, lookup, register_module
from ultralytics.utils import LOGGER, ROOT, UserError

# Step 4: the channel rule of every YAML name (see nn/registry.py for what each rule does).
MODULE_TABLE = {
    Conv: "conv", SCDown: "conv", SPPF: "conv", PSA: "conv", Bottleneck: "conv", CIB: "conv",
    C2f: "repeat", C2fCIB: "repeat",
    RepVGGDW: "same",
    Concat: "concat",
    v10Detect: "head",
    # Large Separable Kernel Attention (the blog's module): attention with parameters keeps the channels.
    LSKA: "same",
    PSALSKA: "conv",
    # Attention baselines (docs/11-attention-baselines.md): each keeps its input channels.
    SE: "same", CBAM: "same", ECA: "same", CoordAtt: "same", SimAM: "same", EMA: "same", LKA: "same",
    TripletAttention: "same",
}
for _cls, _rule in MODULE_TABLE.items():
    register_module(_cls, _rule)

MODELS_DIR = ROOT / "cfg" / "models"


def yaml_model_load(path: str | Path) -> dict:
    """Read a model YAML (a path, or a bare name found under cfg/models) into a dict with 'yaml_file'."""
    file = resolve_model_yaml(path)
    try:
        d = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise UserError(f"model YAML {file} is not valid YAML: {e}") from None
    if not isinstance(d, dict) or "backbone" not in d or "head" not in d:
        raise UserError(f"model YAML {file} must be a mapping with 'backbone' and 'head' lists")
    d["yaml_file"] = str(file)
    return d


def resolve_model_yaml(path: str | Path) -> Path:
    """A model YAML path: as given if it exists, else searched by name under cfg/models (recursively)."""
    p = Path(path)
    if p.is_file():
        return p
    matches = sorted(MODELS_DIR.rglob(p.name))
    if matches:
        return matches[0]
    known = sorted(f.name for f in MODELS_DIR.rglob("*.yaml"))
    close = ", ".join(__import__("difflib").get_close_matches(p.name, known, n=3, cutoff=0.5)) or "none"
    raise UserError(f"model YAML '{path}' not found (looked at {p.resolve()} and under {MODELS_DIR}); "
                    f"closest shipped names: {close}")


def guess_scale(yaml_file: str | Path) -> str | None:
    """The scale letter in a file name: 'yolov10s-LSKA.yaml' -> 's'; None if there is none."""
    m = re.search(r"yolov\d+([nsmblx])(?![a-z])", Path(yaml_file).stem)
    return m.group(1) if m else None


def _scaled(c2: int, width: float, max_channels: int) -> int:
    """Output channels after width scaling: ceil(min(c2, max_channels) * width / 8) * 8."""
    return int(-(-min(c2, max_channels) * width // 8) * 8)


def parse_model(d: dict, ch: int, verbose: bool = True) -> tuple[nn.Sequential, list[int]]:
    """Build the layers of a model dict; returns (nn.Sequential whose item i is row i, saved indices)."""
    src = d.get("yaml_file", "<dict>")
    nc = d["nc"]
    depth, width, max_channels = 1.0, 1.0, float("inf")
    scales = d.get("scales")
    if scales:
        scale = d.get("scale")
        if scale not in scales:
            raise UserError(f"{src}: scale {scale!r} is not one of the file's scales {list(scales)}")
        values = scales[scale]
        if not (isinstance(values, list) and len(values) == 3 and all(_positive(v) for v in values)):
            raise UserError(f"{src}: scale '{scale}' must be [depth, width, max_channels] (3 positive numbers), "
                            f"got {values!r}")
        depth, width, max_channels = values
    else:
        depth, width = d.get("depth_multiple", 1.0), d.get("width_multiple", 1.0)
    if verbose:
        LOGGER.info(f"\n{'':>3}{'from':>20}{'n':>3}{'params':>10}  {'module':<45}{'arguments':<30}")
    chs = [ch]
    layers, save = [], []
    for part in ("backbone", "head"):
        if not isinstance(d.get(part), list):
            raise UserError(f"{src}: '{part}' must be a list of [from, repeats, module, args] rows, "
                            f"got {type(d.get(part)).__name__}")
    rows = d["backbone"] + d["head"]
    if not rows:
        raise UserError(f"{src}: the model has no rows (empty 'backbone' and 'head')")
    for i, row in enumerate(rows):
        where = f"{src}, row {i} ({row!r})"
        if not (isinstance(row, (list, tuple)) and len(row) == 4):
            raise UserError(f"{where}: a row must be [from, repeats, module, args]")
        f, n, name, args = row
        entry = lookup(name) if isinstance(name, str) else None
        if entry is None:
            close = ", ".join(closest_names(str(name))) or "none"
            raise UserError(f"{where}: unknown module '{name}'; closest known names: {close}")
        cls, rule = entry
        if args is not None and not isinstance(args, list):
            raise UserError(f"{where}: args must be a list, e.g. [{args!r}]")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise UserError(f"{where}: repeats must be an integer >= 1, got {n!r}")
        froms = f if isinstance(f, list) else [f]
        idxs = []
        for j in froms:
            idx = j + i if isinstance(j, int) and j < 0 else j
            if not isinstance(j, int) or not (0 <= idx < i or (i == 0 and j == -1)):
                raise UserError(f"{where}: 'from' index {j!r} is out of range or refers forward "
                                f"(row {i} may read rows 0..{i - 1}, i.e. -1..-{i})" if i else
                                f"{where}: the first row must read the input image (from -1)")
            idxs.append(idx)
        c_in = [chs[idx + 1] for idx in idxs]
        args = [nc if a == "nc" else None if a == "None" else a for a in (args or [])]
        n = max(round(n * depth), 1) if n > 1 else n
        c1 = c_in[0]
        if rule in ("conv", "repeat"):
            if not args or not (args[0] == nc or (isinstance(args[0], int) and not isinstance(args[0], bool)
                                                  and args[0] > 0)):
                raise UserError(f"{where}: {name} needs its output channels (a positive integer) as the first "
                                f"argument, got {args[0] if args else 'nothing'!r}")
            c2 = _scaled(args[0], width, max_channels) if args[0] != nc else args[0]
            args = [c1, c2, *args[1:]]
            if rule == "repeat":
                args.insert(2, n)
                n = 1
        elif rule == "same":
            c2, args = c1, [c1, *args]
        elif rule == "concat":
            c2 = sum(c_in)
        elif rule == "head":
            args = [*args, c_in]
            c2 = c1
        else:
            c2 = c1
        try:
            m = nn.Sequential(*(cls(*args) for _ in range(n))) if n > 1 else cls(*args)
        except (TypeError, ValueError, AssertionError, RuntimeError) as e:
            sig = _signature(cls)
            raise UserError(f"{where}: cannot build {name}{sig} with args {args}: {e}") from None
        m.i, m.f, m.type = i, f, name
        m.np = sum(p.numel() for p in m.parameters())
        if verbose:
            LOGGER.info(f"{i:>3}{str(f):>20}{n:>3}{m.np:10.0f}  {name:<45}{str(args):<30}")
        save.extend(idx for j, idx in zip(froms, idxs) if j != -1)
        layers.append(m)
        chs.append(c2)
    if not isinstance(layers[-1], v10Detect):
        raise UserError(f"{src}: the last row must be the detection head (v10Detect), got {rows[-1][2]}")
    return nn.Sequential(*layers), sorted(set(save))


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def _signature(cls: type) -> str:
    with contextlib.suppress(TypeError, ValueError):
        sig = str(inspect.signature(cls.__init__)).replace("'", "")  # postponed annotations print quoted
        return sig.replace("(self, ", "(").replace("(self)", "()")
    return "(...)"


def initialize_weights(model: nn.Module) -> None:
    """BatchNorm eps 1e-3 and momentum 0.03 (the YOLO recipe); activations in place."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps, m.momentum = 1e-3, 0.03
        elif isinstance(m, (nn.SiLU, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardswish)):
            m.inplace = True


class DetectionModel(nn.Module):
    """A YOLOv10 detector built from a model YAML. `model` is an nn.Sequential: item i is YAML row i.

    forward(x: (B, 3, H, W)) -> training: {'one2many': [...], 'one2one': [...]} raw maps;
    eval: (B, 300, 6) x1, y1, x2, y2 (input pixels), score, class from the one-to-one branch.
    """

    def __init__(self, cfg: str | Path | dict = "yolov10n.yaml", ch: int = 3, nc: int | None = None,
                 scale: str | None = None, verbose: bool = True):
        super().__init__()
        self.yaml = copy.deepcopy(cfg) if isinstance(cfg, dict) else yaml_model_load(cfg)
        src = self.yaml.get("yaml_file", "<dict>")
        if nc is not None and nc != self.yaml.get("nc"):
            if verbose:
                LOGGER.info(f"Overriding {Path(src).name} nc={self.yaml.get('nc')} with nc={nc}")
            self.yaml["nc"] = nc
        if not isinstance(self.yaml.get("nc"), int) or self.yaml["nc"] < 1:
            raise UserError(f"{src}: 'nc' must be a positive integer, got {self.yaml.get('nc')!r}")
        scales = self.yaml.get("scales")
        if scales:
            scale = scale or self.yaml.get("scale") or guess_scale(src)
            if scale is None:
                scale = next(iter(scales))
                LOGGER.warning(f"WARNING: no scale in the name {Path(src).name}; using scale '{scale}'")
            self.yaml["scale"] = scale
        pruned = self.yaml.get("pruned")  # a pruned model: the YAML's layers with the stored channel counts
        nc_built = pruned.get("nc", self.yaml["nc"]) if isinstance(pruned, dict) else self.yaml["nc"]
        self.model, self.save = parse_model({**copy.deepcopy(self.yaml), "nc": nc_built}, ch, verbose)
        if pruned:
            from ultralytics.nn.pruned_arch import apply_architecture, set_head_classes

            apply_architecture(self, pruned, src)
            if nc_built != self.yaml["nc"]:  # pruned for nc_built classes, trained on another class count
                set_head_classes(self.model[-1], self.yaml["nc"])
            for m in self.model:
                m.np = sum(p.numel() for p in m.parameters())
        self.names = {i: str(i) for i in range(self.yaml["nc"])}
        self.has_weights = False  # True once trained or loaded weights are in it (training starts from them)
        head = self.model[-1]
        head.stride = self._compute_strides(ch)
        self.stride = head.stride
        head.bias_init()
        initialize_weights(self)
        if verbose:
            self.info()

    def _compute_strides(self, ch: int, s: int = 256) -> torch.Tensor:
        """Strides from one forward pass of a blank image; BN statistics are reset afterwards.

        A row that cannot run (a concat of maps of different sizes, a zero stride, ...) is named.
        """
        y, x = [], torch.zeros(1, ch, s, s)
        with torch.no_grad():
            for m in self.model:
                if m.f != -1:
                    x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
                try:
                    x = m(x)
                except (RuntimeError, ValueError, TypeError, IndexError) as e:
                    src = self.yaml.get("yaml_file", "<dict>")
                    shapes = [tuple(t.shape) for t in x] if isinstance(x, list) else tuple(x.shape)
                    raise UserError(f"{src}, row {m.i} ({m.type}, from {m.f}): fails on input {shapes} when "
                                    f"run on a {s}x{s} image: {str(e).splitlines()[0]}") from None
                y.append(x if m.i in self.save else None)
        outs = x["one2many"]
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
        return torch.tensor([s / o.shape[-2] for o in outs])

    @property
    def nc(self) -> int:
        return self.model[-1].nc

    def forward(self, x: torch.Tensor, raw: bool = False):
        """raw=True (eval mode): (detections, raw maps of both branches), for validation losses."""
        return self._predict_once(x, raw)

    def _predict_once(self, x: torch.Tensor, raw: bool = False):
        y: list = []
        head = self.model[-1]
        for m in self.model:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            x = m(x, raw=True) if raw and m is head else m(x)
            y.append(x if m.i in self.save else None)
        return x

    def info(self, detailed: bool = False, verbose: bool = True, imgsz: int = 640):
        """Print and return (layers, parameters, gradients, GFLOPs) as the upstream summary line does."""
        from ultralytics.nn.summary import model_info

        return model_info(self, detailed=detailed, verbose=verbose, imgsz=imgsz)

    def fuse(self, verbose: bool = True) -> "DetectionModel":
        """Fold BNs into convs, merge RepVGGDW branches, drop the one-to-many head (inference only)."""
        for m in self.modules():
            if isinstance(m, Conv) and hasattr(m, "bn"):
                m.fuse()
            elif isinstance(m, (RepVGGDW, v10Detect)) and hasattr(m, "fuse"):
                if not isinstance(m, RepVGGDW) or hasattr(m, "conv1"):
                    m.fuse()
        if verbose:
            self.info()
        return self

    @property
    def is_fused(self) -> bool:
        return not any(isinstance(m, nn.BatchNorm2d) for m in self.modules())

    def load(self, weights, verbose: bool = True) -> int:
        """Copy every tensor whose name and shape match from a checkpoint path, dict or state_dict."""
        from ultralytics.nn.transfer import transfer_weights

        return transfer_weights(self, weights, verbose=verbose)
