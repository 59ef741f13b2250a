"""Structured channel pruning of a DetectionModel on torch-pruning's DepGraph: a function from model to model.

    pruned, report = prune_model(model, ratio=0.3, method="l1", ignore=["model.9"])

Every conv group the dependency graph finds (a conv's output channels with everything that must shrink with
them: its BN, the next convs' inputs, residual adds, concats, depthwise convs) loses `ratio` of its channels,
the least important first by `method` (l1: L1 norm of the group's weights, lamp: LAMP scores, bn_scale: |BN
gamma|). What each block does (docs/14-lightweight-models.md):
- C2f / C2fCIB / PSA / PSALSKA: for the trace, cv1 (c1 -> 2c, then chunk/split, whose outputs torch-pruning maps
  by guess) is split into two convs cv1a, cv1b; each half is pruned on its own, then they are merged back
  into one cv1 (same state_dict names) and the block's `c` becomes the first half's size (forward splits
  (c, rest)).
- LSKA / LKA (traced): every depthwise conv shrinks with its input, groups = channels kept.
- PSA's multi-head attention and EMA are held fixed (their reshapes into heads / groups would need the same
  indices in every head): the channels that pass through them are not pruned.
- SE, CBAM, CoordAtt, ECA, SimAM, TripletAttention are leaves that pass their channels through (their first
  layer's inputs and last layer's outputs follow); their hidden width is kept.
- The head's output convs (cv2/cv3 and one2one_cv2/cv3 last convs) and DFL are never pruned.
A group whose ratio would leave no channel keeps one (clipped), and the report lists it.
"""

from __future__ import annotations

import copy
import types

import torch
import torch.nn as nn

from ultralytics.nn.Addmodules import CBAM, ECA, EMA, LKA, LSKA, PSALSKA, SE, CoordAtt, SimAM, TripletAttention
from ultralytics.nn.Addmodules.CBAM import ChannelAttention, SpatialAttention
from ultralytics.nn.Addmodules.TripletAttention import AttentionGate
from ultralytics.nn.modules import C2f, CIB, PSA, SCDown, SPPF, Bottleneck, C2fCIB, Concat, Conv, RepVGGDW, v10Detect
from ultralytics.nn.modules.block import DFL, Attention
from ultralytics.nn.pruned_arch import architecture_changes, record_architecture
from ultralytics.utils import LOGGER, UserError

METHODS = ("l1", "lamp", "bn_scale")
PIP = "pip install torch-pruning>=1.4"
# Blocks the tracer walks through (their parts are torch layers and the blocks below).
TRACED = (Conv, C2f, C2fCIB, Bottleneck, CIB, SPPF, SCDown, PSA, PSALSKA, RepVGGDW, Concat, v10Detect, DFL, LSKA,
          LKA, CBAM, ChannelAttention)
HELD_FIXED = (Attention, EMA)  # channels through them are not pruned
PASS_THROUGH = (SE, CoordAtt, SpatialAttention, ECA, SimAM, TripletAttention, AttentionGate)


def _tp():
    try:
        import torch_pruning
    except ImportError:
        raise UserError(f"pruning needs the optional package torch-pruning: {PIP}") from None
    return torch_pruning


def _pass_through_pruner(tp, hold: bool):
    """A torch-pruning leaf pruner for a module whose output has its input's channels (x -> x * gate(x)).

    prune_in_channels is prune_out_channels, so the graph couples the input with the output. With hold=True the
    module is also an ignored layer: any group through it is left unpruned, so pruning it is an internal error.
    """

    class PassThrough(tp.pruner.BasePruningFunc):
        def prune_out_channels(self, layer, idxs):
            if hold:
                raise RuntimeError(f"{type(layer).__name__} is held fixed and cannot be pruned")
            idxs = sorted(int(i) for i in idxs)
            if isinstance(layer, SE):
                tp.prune_conv_in_channels(layer.fc1, idxs)
                tp.prune_conv_out_channels(layer.fc2, idxs)
            elif isinstance(layer, CoordAtt):
                tp.prune_conv_in_channels(layer.cv1.conv, idxs)
                tp.prune_conv_out_channels(layer.conv_h, idxs)
                tp.prune_conv_out_channels(layer.conv_w, idxs)
            layer._pruned_channels = self.get_out_channels(layer) - len(idxs)
            return layer

        prune_in_channels = prune_out_channels

        def get_out_channels(self, layer):
            return getattr(layer, "_pruned_channels", None) or layer._traced_channels

        get_in_channels = get_out_channels

    return PassThrough()


class _Held(nn.Module):
    """A layer held fixed by `ignore`, wrapped for the trace: one leaf of the graph, in an unprunable group."""

    def __init__(self, inner: nn.Module, where: tuple[str, str]):
        super().__init__()
        self.inner, self.where = inner, where

    def forward(self, *args):
        return self.inner(*args)

    def __getattr__(self, name):  # the row's f, i, type, ... are the wrapped layer's
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["inner"], name)


def _hold(model: nn.Module, module: nn.Module) -> _Held:
    """Put `module` inside a _Held wrapper, in place."""
    name = next(n for n, m in model.named_modules() if m is module)
    parent, _, leaf = name.rpartition(".")
    w = _Held(module, (parent, leaf))
    setattr(model.get_submodule(parent) if parent else model, leaf, w)
    return w


def _unhold(model: nn.Module, w: _Held) -> None:
    parent, leaf = w.where
    setattr(model.get_submodule(parent) if parent else model, leaf, w.inner)


def _leaf_stub(forward):
    """A forward for the graph trace only: the leaf's output values, with a gradient path from its input alone."""

    def stub(x):
        with torch.no_grad():
            out = forward(x)
        return x * 1.0 if out.shape == x.shape else out + x.mean() * 0.0

    return stub


def _split_cv1(block: nn.Module) -> None:
    """Replace block.cv1 (c1 -> 2c) by cv1a and cv1b (c1 -> c each, the halves' weights), for the graph: then
    each half is a plain conv (torch-pruning maps chunk/split outputs by guess) and may keep its own count."""
    c = block.cv1.conv.out_channels // 2
    block._order = list(block._modules)
    for name, sl in (("cv1a", slice(0, c)), ("cv1b", slice(c, 2 * c))):
        half = copy.deepcopy(block.cv1)
        half.conv = _sliced_conv(block.cv1.conv, sl)
        half.bn = _sliced_bn(block.cv1.bn, sl)
        setattr(block, name, half)
    del block.cv1
    block.forward = types.MethodType(_c2f_halves if isinstance(block, C2f) else _psa_halves, block)


def _merge_cv1(block: nn.Module) -> None:
    """Undo _split_cv1 after pruning: one cv1 whose first `c` outputs are cv1a's (state_dict names kept)."""
    a, b = block.cv1a, block.cv1b
    ca = a.conv.out_channels
    conv = nn.Conv2d(a.conv.in_channels, a.conv.out_channels + b.conv.out_channels, a.conv.kernel_size,
                     a.conv.stride, a.conv.padding, a.conv.dilation, 1, False)
    conv.weight = nn.Parameter(torch.cat((a.conv.weight.data, b.conv.weight.data)))
    bn = nn.BatchNorm2d(conv.out_channels, a.bn.eps, a.bn.momentum)
    for k in ("weight", "bias"):
        getattr(bn, k).data = torch.cat((getattr(a.bn, k).data, getattr(b.bn, k).data))
    for k in ("running_mean", "running_var"):
        setattr(bn, k, torch.cat((getattr(a.bn, k), getattr(b.bn, k))))
    bn.num_batches_tracked = a.bn.num_batches_tracked.clone()
    a.conv, a.bn = conv.train(a.conv.training), bn.train(a.bn.training)
    del block.cv1a, block.cv1b, block.forward
    block.cv1, block.c = a, ca
    block._modules = {k: block._modules[k] for k in block._order}  # cv1 back in its place: same state_dict order
    del block._order


def _sliced_conv(conv: nn.Conv2d, sl: slice) -> nn.Conv2d:
    new = nn.Conv2d(conv.in_channels, sl.stop - sl.start, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, 1, False)
    new.weight = nn.Parameter(conv.weight.data[sl].clone())
    return new.train(conv.training)


def _sliced_bn(bn: nn.BatchNorm2d, sl: slice) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(sl.stop - sl.start, bn.eps, bn.momentum)
    new.weight.data, new.bias.data = bn.weight.data[sl].clone(), bn.bias.data[sl].clone()
    new.running_mean, new.running_var = bn.running_mean[sl].clone(), bn.running_var[sl].clone()
    new.num_batches_tracked = bn.num_batches_tracked.clone()
    return new.train(bn.training)


def _c2f_halves(self, x: torch.Tensor) -> torch.Tensor:
    """C2f.forward on the two half convs (same values as cv1 then split)."""
    y = [self.cv1a(x), self.cv1b(x)]
    for m in self.m:
        y.append(m(y[-1]))
    return self.cv2(torch.cat(y, 1))


def _psa_halves(self, x: torch.Tensor) -> torch.Tensor:
    """PSA.forward on the two half convs (same values as cv1 then split)."""
    a, b = self.cv1a(x), self.cv1b(x)
    b = b + self.attn(b)
    b = b + self.ffn(b)
    return self.cv2(torch.cat((a, b), 1))


def _check_ratio(ratio) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
        raise UserError(f"prune ratio={ratio!r} must be a number strictly between 0 and 1 (the fraction of "
                        "prunable channels removed), e.g. ratio=0.3")
    return float(ratio)


def _resolve_ignore(model: nn.Module, ignore) -> list[nn.Module]:
    """Modules named by `ignore`: YAML row indices (8), module names ('model.8.attn') or class names ('EMA')."""
    out = []
    names = dict(model.named_modules())
    for item in ignore or ():
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < len(model.model):
            out.append(model.model[item])
            continue
        key = str(item)
        hits = [m for n, m in names.items() if n == key or n == f"model.{key}"] or \
               [m for m in names.values() if type(m).__name__ == key]
        if not hits:
            raise UserError(f"prune ignore={item!r}: no layer of that index, name or class in the model (rows 0.."
                            f"{len(model.model) - 1}, names like 'model.8.attn', classes like 'EMA')")
        out.extend(hits)
    return out


def _check_traceable(model: nn.Module, ignored: list[nn.Module]) -> None:
    """UserError naming the first module the pruner does not know and that is not held fixed by `ignore`."""
    known = TRACED + HELD_FIXED + PASS_THROUGH + (nn.Sequential, nn.ModuleList)
    held = {id(s) for m in ignored for s in m.modules()}
    for name, m in model.named_modules():
        if not name or id(m) in held:
            continue
        if type(m).__module__.startswith("torch.") or isinstance(m, known):
            continue
        raise UserError(f"prune: layer '{name}' ({type(m).__name__}) is a custom module the pruner cannot trace; "
                        f"hold it fixed with ignore=['{name}'] (its channels are then not pruned)")


def _trace_forward(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Forward for the graph trace: both head branches, the one-to-one one without its detach (so the graph
    sees that its inputs are the neck's outputs)."""
    y, head = [], model.model[-1]
    for m in model.model:
        if m.f != -1:
            x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
        if m is head:
            return head._branch(x, head.cv2, head.cv3) + head._branch(x, head.one2one_cv2, head.one2one_cv3)
        x = m(x)
        y.append(x if m.i in model.save else None)
    raise UserError("prune: the model has no v10Detect head as its last layer")


def _importance(tp, method: str):
    if method == "l1":
        return tp.importance.MagnitudeImportance(p=1)
    if method == "lamp":
        return tp.importance.LAMPImportance(p=2)
    if method == "bn_scale":
        return tp.importance.BNScaleImportance()
    raise UserError(f"prune method={method!r} is not one of {', '.join(METHODS)}")


def count(model: nn.Module, imgsz: int = 640) -> tuple[int, float]:
    """(parameters, GFLOPs at imgsz) as the model summary counts them."""
    from ultralytics.nn.summary import model_info

    _, params, _, gflops = model_info(model, verbose=False, imgsz=imgsz)
    return int(params), float(gflops)


def prune_model(model: nn.Module, ratio: float = 0.3, method: str = "l1", ignore=(), verbose: bool = True,
                imgsz: int = 640) -> tuple[nn.Module, dict]:
    """A pruned copy of `model` (its YAML dict gains 'pruned', the architecture) and a report dict.

    The report: params/gflops before and after, 'clipped' (layers whose ratio was lowered to keep a channel),
    'held' (modules whose channels were not pruned).
    """
    ratio = _check_ratio(ratio)
    if method not in METHODS:
        raise UserError(f"prune method={method!r} is not one of {', '.join(METHODS)}")
    if not isinstance(getattr(model, "model", None), nn.Sequential) or not isinstance(model.model[-1], v10Detect):
        raise UserError(f"prune needs a PyTorch DetectionModel (a .pt checkpoint or a YAML), got "
                        f"{type(model).__name__}; an exported file cannot be pruned")
    if model.is_fused or model.model[-1].cv2 is None:
        raise UserError("prune: the model is fused (BatchNorms folded, one-to-many head dropped); prune the .pt")
    tp = _tp()
    device = next(model.parameters()).device
    model = copy.deepcopy(model).cpu().float()  # traced and pruned on the CPU, returned on the model's device
    ignored_user = _resolve_ignore(model, ignore)
    _check_traceable(model, ignored_user)
    before = count(model, imgsz)
    held_names = {_name(model, m) for m in ignored_user}
    wrappers = [_hold(model, m) for m in ignored_user if not isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    head = model.model[-1]
    ignored = [seq[-1] for branch in (head.cv2, head.cv3, head.one2one_cv2, head.one2one_cv3) for seq in branch]
    ignored += [head.dfl, *wrappers, *(m for m in ignored_user if isinstance(m, (nn.Conv2d, nn.BatchNorm2d)))]
    held = [m for m in model.modules() if isinstance(m, HELD_FIXED)]
    ignored += held
    leaves = [m for m in model.modules() if isinstance(m, HELD_FIXED + PASS_THROUGH)] + wrappers
    hooks = [m.register_forward_hook(lambda mod, i, o: setattr(mod, "_traced_channels", int(o.shape[1])))
             for m in leaves]
    was_training = model.training
    x = torch.zeros(1, 3, 64, 64)
    model.train()
    with torch.no_grad():
        _trace_forward(model, x)
    for h in hooks:
        h.remove()
    pruners = {t: _pass_through_pruner(tp, hold=False) for t in PASS_THROUGH}
    pruners.update({t: _pass_through_pruner(tp, hold=True) for t in (*HELD_FIXED, _Held)})
    split_blocks = [m for m in model.modules() if isinstance(m, (C2f, PSA))]
    for m in split_blocks:
        _split_cv1(m)
    for p in model.parameters():
        p.requires_grad_(True)
    for m in leaves:  # the graph sees a leaf as one op from its input to its output, not its insides
        m.forward = _leaf_stub(m.forward)

    def make(ratio_dict=None):
        return tp.pruner.MetaPruner(
            model, x, importance=_importance(tp, method), pruning_ratio=ratio, pruning_ratio_dict=ratio_dict,
            ignored_layers=ignored, customized_pruners=pruners, root_module_types=[nn.Conv2d],
            forward_fn=_trace_forward)

    try:
        pruner = make()
        ratio_dict, clipped = _clip_groups(pruner, ratio)
        if ratio_dict:  # a second graph with the clipped groups' own ratios
            pruner = make(ratio_dict)
    finally:
        for m in leaves:
            del m.forward
    pruner.step()
    for m in split_blocks:
        _merge_cv1(m)
    for w in wrappers:
        _unhold(model, w)
    for m in model.modules():
        if isinstance(m, RepVGGDW):
            m.dim = m.conv.conv.out_channels
        if hasattr(m, "_traced_channels"):
            del m._traced_channels
        if hasattr(m, "_pruned_channels"):
            del m._pruned_channels
    model.train(was_training)
    _record(model)
    model.to(device)
    after = count(model, imgsz)
    report = {"ratio": ratio, "method": method, "params": (before[0], after[0]), "gflops": (before[1], after[1]),
              "clipped": clipped, "held": sorted(held_names | {_name(model, m) for m in held})}
    if verbose:
        LOGGER.info(summary(report, imgsz))
    return model, report


def _name(model: nn.Module, module: nn.Module) -> str:
    return next(f"{n} ({type(m).__name__})" for n, m in model.named_modules() if m is module)


def _clip_groups(pruner, ratio: float) -> tuple[dict, list[str]]:
    """({root: lower ratio}, names) of the groups whose ratio would keep no channel: they keep one."""
    clipped, ratio_dict = [], {}
    dg = pruner.DG
    for group in dg.get_all_groups(ignored_layers=pruner.ignored_layers, root_module_types=pruner.root_module_types):
        root = group[0].dep.target.module
        n = dg.get_out_channels(root) // pruner._get_channel_groups(group)
        if int(n * (1 - ratio)) >= 1:
            continue
        keep_ratio = 0.0 if n <= 1 else max(0.0, 1 - 1.5 / n)  # int(n * (1 - r)) == 1
        ratio_dict[root] = keep_ratio
        clipped.append(f"{dg._module2name.get(root, type(root).__name__)} ({n} channels: ratio {keep_ratio:.2f})")
    return ratio_dict, clipped


def _record(model: nn.Module) -> None:
    """Store the pruned architecture in model.yaml['pruned'] (the differences from the YAML's build)."""
    from ultralytics.nn.tasks import DetectionModel

    cfg = {k: v for k, v in model.yaml.items() if k != "pruned"}
    fresh = DetectionModel(cfg, verbose=False)
    changes = architecture_changes(record_architecture(model), record_architecture(fresh))
    model.yaml = {**cfg, "pruned": {"nc": cfg["nc"], **changes}}


def summary(report: dict, imgsz: int = 640) -> str:
    """Parameters and GFLOPs before and after, the clipped layers and what was held fixed, as printed lines."""
    (p0, p1), (g0, g1) = report["params"], report["gflops"]
    lines = [f"Pruned {report['ratio']:.0%} of prunable channels ({report['method']}): parameters {p0:,} -> {p1:,} "
             f"({1 - p1 / p0:.1%} fewer), GFLOPs at {imgsz} {g0:.2f} -> {g1:.2f} ({1 - g1 / max(g0, 1e-9):.1%} fewer)"]
    if report["clipped"]:
        lines.append(f"Clipped so as to keep at least one channel: {', '.join(report['clipped'])}")
    if report["held"]:
        lines.append(f"Held fixed (channels through them not pruned): {', '.join(report['held'])}")
    return "\n".join(lines)


