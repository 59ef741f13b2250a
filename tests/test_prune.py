"""Structured pruning (nn/prune.py): parameter counts, shapes for every block, checkpoints, bad input."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

pytest.importorskip("torch_pruning")

from ultralytics import YOLO  # noqa: E402
from ultralytics.nn.prune import _merge_cv1, _split_cv1, prune_model  # noqa: E402
from ultralytics.nn.registry import register_module  # noqa: E402
from ultralytics.nn.tasks import DetectionModel  # noqa: E402
from ultralytics.nn.yaml_edit import insert_rows, load_model_dict  # noqa: E402
from ultralytics.utils import UserError  # noqa: E402
from ultralytics.utils.checkpoint import read_checkpoint  # noqa: E402

X = torch.zeros(1, 3, 64, 64)


def build(yaml="yolov10n.yaml", nc=6, inserts=()) -> DetectionModel:
    d = load_model_dict(yaml)
    for module, args, after in inserts:
        d = insert_rows(d, module=module, args=args, after=after)
    d["nc"] = nc
    return DetectionModel(d, verbose=False)


def layer_params(m: nn.Module) -> int:
    """Parameters of one layer from its channel counts alone (what the counts imply)."""
    if isinstance(m, (nn.Conv2d, nn.Conv1d)):
        k = 1
        for s in m.kernel_size:
            k *= s
        return m.out_channels * (m.in_channels // m.groups) * k + (m.out_channels if m.bias is not None else 0)
    if isinstance(m, nn.BatchNorm2d):
        return 2 * m.num_features
    if isinstance(m, nn.GroupNorm):
        return 2 * m.num_channels
    return 0


def implied(model: nn.Module) -> dict[str, int]:
    return {n: layer_params(m) for n, m in model.named_modules() if layer_params(m)}


def check_consistent(model: nn.Module) -> None:
    """Depthwise convs keep groups == channels; C2f / PSA halves fit the convs that read them."""
    for n, m in model.named_modules():
        if isinstance(m, nn.Conv2d) and m.groups > 1:
            assert m.groups == m.in_channels == m.out_channels, n
        if hasattr(m, "cv1") and hasattr(m, "c") and hasattr(m.cv1, "conv"):
            second = m.cv1.conv.out_channels - m.c
            assert 0 < m.c and 0 < second, n
            if hasattr(m, "m") and len(m.m):
                first = m.m[0].cv1 if isinstance(m.m[0].cv1, nn.Module) and hasattr(m.m[0].cv1, "conv") else \
                    m.m[0].cv1[0]
                assert first.conv.in_channels == second, n


def test_parameters_fall_as_the_channel_counts_imply():
    model = build()
    before = implied(model)
    pruned, report = prune_model(model, 0.3, verbose=False, imgsz=64)
    after = implied(pruned)
    assert set(after) == set(before)  # same layers, same names
    n_before = sum(p.numel() for p in model.parameters())
    n_after = sum(p.numel() for p in pruned.parameters())
    assert n_before - n_after == sum(before[k] - after[k] for k in before)  # every parameter lost is in a count
    assert report["params"] == (n_before, n_after)
    assert 0.40 < 1 - n_after / n_before < 0.60  # 30% of channels in and out: about 1 - 0.7**2 = 51% of weights
    # the first conv (16 channels) keeps int(16 * 0.7) = 11; its BN and the next conv's input follow
    assert pruned.model[0].conv.out_channels == 11 and pruned.model[0].bn.num_features == 11
    assert pruned.model[1].conv.in_channels == 11
    head, head0 = pruned.model[-1], model.model[-1]
    for branch in ("cv2", "cv3", "one2one_cv2", "one2one_cv3"):  # output layers never pruned
        for seq, seq0 in zip(getattr(head, branch), getattr(head0, branch)):
            assert seq[-1].weight.shape[0] == seq0[-1].weight.shape[0]
    assert torch.equal(head.dfl.conv.weight, head0.dfl.conv.weight)
    assert model.model[0].conv.out_channels == 16  # the input model is left as it was
    check_consistent(pruned)


@pytest.mark.parametrize("method", ["l1", "bn_scale"])
def test_the_least_important_channels_go(method):
    model = build()
    with torch.no_grad():  # channels 0..4 of the first conv carry nothing: every method must drop them
        model.model[0].bn.weight[:5] = 0.0
        if method == "l1":
            model.model[0].conv.weight[:5] = 0.0
            model.model[0].bn.bias[:5] = 0.0
            model.model[1].conv.weight[:, :5] = 0.0
    kept = model.model[0].conv.weight[5:].clone()
    pruned, _ = prune_model(model, 0.3, method=method, verbose=False, imgsz=64)
    assert torch.equal(pruned.model[0].conv.weight, kept)


@pytest.mark.parametrize("yaml", ["yolov10n.yaml", "yolov10n-LSKA.yaml", "yolov10n-PSALSKA.yaml"])
def test_every_shipped_yaml_prunes_and_keeps_its_output_shapes(yaml):
    model = build(yaml)
    pruned, report = prune_model(model, 0.3, verbose=False, imgsz=64)
    check_consistent(pruned)
    model.train(), pruned.train()
    ref, out = model(X), pruned(X)
    assert [t.shape for t in out["one2many"]] == [t.shape for t in ref["one2many"]]
    assert [t.shape for t in out["one2one"]] == [t.shape for t in ref["one2one"]]
    assert pruned.eval()(X).shape == model.eval()(X).shape == (1, 84, 6)
    assert report["params"][1] < 0.6 * report["params"][0]
    assert report["held"] == ([] if "PSALSKA" in yaml else ["model.10.attn (Attention)"])  # PSA's MHSA
    if "PSALSKA" in yaml:  # PSA whose attention is LSKA: its second half is pruned too
        psa = pruned.model[10]
        assert psa.cv1.conv.out_channels - psa.c < model.model[10].c


ATTENTION_SETS = [
    [("SE", [], [16]), ("CBAM", [], [20]), ("ECA", [], [24])],
    [("CoordAtt", [], [16]), ("SimAM", [], [20]), ("EMA", [], [24])],
    [("LKA", [], [16]), ("TripletAttention", [], [20]), ("LSKA", [11], [24])],
    [("LSKA", [23], [16]), ("LSKA", [35], [20]), ("LSKA", [41], [24])],
    [("LSKA", [53], [16]), ("LSKA", [7], [20])],
]


@pytest.mark.parametrize("inserts", ATTENTION_SETS, ids=lambda s: "-".join(f"{m}{a}" for m, a, _ in s))
def test_attention_baselines_and_lska_kernels_prune(inserts):
    model = build(inserts=inserts)
    pruned, report = prune_model(model, 0.3, verbose=False, imgsz=64)
    check_consistent(pruned)
    pruned.train()
    assert [t.shape[1] for t in pruned(X)["one2one"]] == [64 + 6] * 3
    assert report["params"][1] < 0.7 * report["params"][0]
    for name, m in pruned.named_modules():
        if type(m).__name__ == "EMA":  # held fixed: its groups need the same indices in every group
            assert f"{name} (EMA)" in report["held"]
            assert [p.shape for p in m.parameters()] == [p.shape for p in model.get_submodule(name).parameters()]
        if type(m).__name__ == "LSKA":  # pruned with its input, all four 1-D depthwise convs alike
            c = m.conv1.out_channels
            assert c < model.get_submodule(name).conv1.out_channels
            assert {m.conv0h.groups, m.conv0v.groups, m.conv_spatial_h.groups, m.conv_spatial_v.groups} == {c}


def test_split_then_merge_is_the_identity():
    model = build().eval()
    block = model.model[2]  # a C2f
    names = [k for k, _ in block.state_dict().items()]
    ref = block(torch.randn(1, 32, 16, 16, generator=torch.Generator().manual_seed(0)))
    _split_cv1(block)
    assert not hasattr(block, "cv1") and block.cv1a.conv.out_channels == block.cv1b.conv.out_channels == 16
    _merge_cv1(block)
    out = block(torch.randn(1, 32, 16, 16, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(out, ref) and list(block.state_dict()) == names


def test_pruned_checkpoint_reloads_trains_and_resumes_with_the_same_shape(tiny_data, tmp_path, monkeypatch):
    from ultralytics.engine import results_log

    model = YOLO("yolov10n.yaml")
    report = model.prune(ratio=0.3, verbose=False)
    n = report["params"][1]
    path = model.save(tmp_path / "pruned.pt")
    loaded = YOLO(str(path))
    assert sum(p.numel() for p in loaded.model.parameters()) == n
    shapes = {k: v.shape for k, v in loaded.model.state_dict().items()}
    original = results_log.ResultsLog.append

    def crash_after_first(self, row):
        original(self, row)
        if row["epoch"] == 1:
            raise KeyboardInterrupt  # the run dies after epoch 1: resume must rebuild the pruned shape

    monkeypatch.setattr(results_log.ResultsLog, "append", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        loaded.train(data=tiny_data, project=str(tmp_path), name="ft", imgsz=64, batch=4, workers=0, epochs=2,
                     device="cpu", plots=False, val=True, warmup_epochs=0, close_mosaic=0)
    monkeypatch.setattr(results_log.ResultsLog, "append", original)
    YOLO(str(tmp_path / "ft" / "weights" / "last.pt")).train(resume=True)
    assert read_checkpoint(tmp_path / "ft" / "weights" / "last.pt")["epoch"] == 1  # the resumed epoch 2 is saved
    for f in ("last.pt", "best.pt"):
        again = YOLO(str(tmp_path / "ft" / "weights" / f))
        assert {k: v.shape for k, v in again.model.state_dict().items() if "cv3" not in k or ".2." not in k} == \
            {k: v for k, v in shapes.items() if "cv3" not in k or ".2." not in k}  # class convs follow the data
        assert again.model.yaml["pruned"] == loaded.model.yaml["pruned"]


@pytest.mark.parametrize("ratio", [0, 1, -0.1, 1.5, "0.3", True, None])
def test_ratio_outside_0_1_is_refused(ratio):
    with pytest.raises(UserError, match="strictly between 0 and 1"):
        prune_model(build(), ratio, verbose=False)


def test_bad_method_and_ignore_are_named():
    with pytest.raises(UserError, match="method='l2' is not one of l1, lamp, bn_scale"):
        prune_model(build(), 0.3, method="l2", verbose=False)
    with pytest.raises(UserError, match="ignore='model.99'"):
        prune_model(build(), 0.3, ignore=["model.99"], verbose=False)


def test_ratio_that_empties_a_layer_is_clipped(log_messages):
    model = build()
    pruned, report = prune_model(model, 0.95, imgsz=64)
    assert pruned.model[0].conv.out_channels == 1  # int(16 * 0.05) = 0 -> clipped to keep one channel
    assert any(c.startswith("model.0.conv (16 channels") for c in report["clipped"])
    assert any("Clipped so as to keep at least one channel" in m and "model.0.conv" in m for m in log_messages)
    pruned.train()
    assert all(t.shape[1] == 70 for t in pruned(X)["one2one"])


class PruneOpaque(nn.Module):
    """A custom block the pruner does not know (its channels are reshaped in ways it cannot see)."""

    def __init__(self, c1: int):
        super().__init__()
        self.w = nn.Conv2d(c1, c1, 1)

    def forward(self, x):
        return self.w(x)


def test_custom_module_is_named_and_can_be_held_fixed():
    register_module(PruneOpaque, "same")
    model = build(inserts=[("PruneOpaque", [], [16])])
    with pytest.raises(UserError, match=r"'model.17' \(PruneOpaque\).*ignore=\['model.17'\]"):
        prune_model(model, 0.3, verbose=False)
    pruned, report = prune_model(model, 0.3, ignore=[17], verbose=False, imgsz=64)
    assert pruned.model[17].w.weight.shape == model.model[17].w.weight.shape
    assert "model.17 (PruneOpaque)" in report["held"]


def test_exported_or_fused_model_is_refused(tmp_path):
    with pytest.raises(UserError, match="exported file cannot be pruned"):
        prune_model(nn.Conv2d(3, 3, 1), 0.3)
    fused = copy.deepcopy(build()).eval().fuse(verbose=False)
    with pytest.raises(UserError, match="fused"):
        prune_model(fused, 0.3)


def test_pruned_model_exports_with_its_shape(tmp_path):
    model = YOLO("yolov10n.yaml")
    model.prune(ratio=0.3, verbose=False)
    loaded = YOLO(str(model.save(tmp_path / "pruned.pt")))
    f = loaded.export(format="torchscript", imgsz=64)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    ts = torch.jit.load(f)
    fused = copy.deepcopy(loaded.model).eval().fuse(verbose=False)
    shapes = {k.removeprefix("model."): v.shape for k, v in ts.state_dict().items()
              if k.startswith("model.") and not k.endswith(".stride")}
    assert shapes == {k: v.shape for k, v in fused.state_dict().items()}  # the pruned shape, exported
    ref, out = fused(x), ts(x)
    assert ref.shape == (1, 84, 6) and out.shape == (1, 300, 6)  # the exported graph pads to max_det rows
    # an untrained head scores many anchors alike, so rows may come in another order: compare sorted scores
    assert torch.allclose(out[0, :84, 4].sort().values, ref[0, :, 4].sort().values, atol=1e-5)


def test_lamp_prunes_the_same_counts_and_compare_sees_the_pruned_architecture():
    from ultralytics.compare.profile import arch_signature

    model = build()
    l1, _ = prune_model(model, 0.3, method="l1", verbose=False, imgsz=64)
    lamp, _ = prune_model(model, 0.3, method="lamp", verbose=False, imgsz=64)
    assert implied(lamp) == implied(l1)  # local pruning: the counts follow the ratio, the method picks which
    assert arch_signature(lamp.yaml) != arch_signature(model.yaml)  # compare's cost cache keeps them apart
    rebuilt = DetectionModel(copy.deepcopy(lamp.yaml), verbose=False)  # what compare builds from the checkpoint
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(p.numel() for p in lamp.parameters())


@pytest.mark.parametrize("ignore", [[8], ["SCDown"]], ids=["row-8-C2f", "class-SCDown"])
def test_ignored_blocks_keep_every_weight_shape(ignore):
    model = build()
    pruned, report = prune_model(model, 0.3, ignore=ignore, verbose=False, imgsz=64)
    rows = [8] if ignore == [8] else [i for i, m in enumerate(model.model) if type(m).__name__ == "SCDown"]
    assert len(rows) == (1 if ignore == [8] else 3)
    for i in rows:  # held fixed: not one channel less, in or out (SCDown changes the count: 64 -> 128 ...)
        assert [p.shape for p in pruned.model[i].parameters()] == [p.shape for p in model.model[i].parameters()]
        assert f"model.{i} ({type(model.model[i]).__name__})" in report["held"]
    if ignore == [8]:  # what row 8 reads keeps its channels: row 7's output
        assert pruned.model[7].cv2.conv.out_channels == model.model[7].cv2.conv.out_channels
    pruned.train()
    assert [t.shape[1] for t in pruned(X)["one2one"]] == [70] * 3
    assert report["params"][1] < 0.75 * report["params"][0]  # the rest is pruned
