"""insert_rows / replace_row: the shipped LSKA and PSALSKA YAMLs come out exactly, other points keep the head right."""

from __future__ import annotations

import pytest
import torch
import yaml

from ultralytics.nn.Addmodules import SE
from ultralytics.nn.tasks import DetectionModel, yaml_model_load
from ultralytics.nn.yaml_edit import insert_rows, main, replace_row
from ultralytics.utils import UserError


def keys_and_shapes(m) -> list[tuple[str, tuple]]:
    return [(k, tuple(v.shape)) for k, v in m.state_dict().items()]


def test_lska_yolov10n_acceptance():
    d = insert_rows("yolov10n.yaml", module="LSKA", args=[7], after=[16, 19, 22])
    new = DetectionModel(d, verbose=False)
    shipped = DetectionModel("yolov10n-LSKA.yaml", verbose=False)
    assert keys_and_shapes(new) == keys_and_shapes(shipped)
    assert sum(p.numel() for p in new.parameters()) == 2_869_152


@pytest.mark.parametrize("scale", "nsmblx")
def test_reproduces_shipped_lska_and_psalska_rows(scale):
    """The rows equal the shipped files' at every scale: the same model is built (test_model_scan builds them)."""
    for made, shipped in (
        (insert_rows(f"yolov10{scale}.yaml", "LSKA", [7], after=[16, 19, 22]), f"yolov10{scale}-LSKA.yaml"),
        (replace_row(f"yolov10{scale}.yaml", 10, "PSALSKA", [1024]), f"yolov10{scale}-PSALSKA.yaml"),
    ):
        ref = yaml_model_load(shipped)
        assert made["backbone"] == ref["backbone"] and made["head"] == ref["head"]
        assert made["scales"] == ref["scales"] and made["scale"] == scale


def test_renumbering_by_hand():
    """Insert after 4 and 13 of yolov10n (rows 0..23 -> 0..25): indices worked out by hand."""
    d = insert_rows("yolov10n.yaml", "SE", [], after=[13, 4])
    rows = d["backbone"] + d["head"]
    assert len(d["backbone"]) == 12 and len(rows) == 26
    assert rows[5] == [-1, 1, "SE", []]  # after row 4
    assert rows[15] == [-1, 1, "SE", []]  # after row 13 (now 14)
    assert rows[13][0] == [-1, 7]  # old row 12: Concat [-1, 6], 6 -> 7
    assert rows[17][0] == [-1, 5]  # old row 15: Concat [-1, 4], 4 is read through its SE (row 5)
    assert rows[20][0] == [-1, 15]  # old row 18: Concat [-1, 13], 13 -> its SE (row 15)
    assert rows[23][0] == [-1, 11]  # old row 21: Concat [-1, 10], 10 -> 11
    assert rows[-1][0] == [18, 21, 24]  # the head: 16, 19, 22 -> 18, 21, 24


def test_other_points_keep_the_head_inputs():
    base = DetectionModel("yolov10n.yaml", verbose=False).eval()
    new = DetectionModel(insert_rows("yolov10n.yaml", "SE", [4], after=[2, 9, 13, 21]), verbose=False).eval()
    shapes = []
    for m in (base, new):
        hook = m.model[-1].register_forward_pre_hook(lambda mod, inp: shapes.append([t.shape for t in inp[0]]))
        with torch.no_grad():
            m(torch.zeros(1, 3, 64, 96))
        hook.remove()
    assert shapes[0] == shapes[1] == [(1, 64, 8, 12), (1, 128, 4, 6), (1, 256, 2, 3)]
    assert [type(new.model[i]) for i in (3, 11, 16, 25)] == [SE] * 4


def test_save_writes_a_yaml_that_loads_to_the_same_rows(tmp_path):
    out = tmp_path / "sub" / "yolov10n-SE.yaml"
    d = insert_rows("yolov10n.yaml", "SE", [16], after=[16, 19, 22], save=out)
    text = out.read_text()
    assert text.startswith("# SE [16] inserted after rows 16, 19, 22 of yolov10n.yaml (now rows 17, 21, 25)")
    back = yaml.safe_load(text)
    assert back["backbone"] == d["backbone"] and back["head"] == d["head"] and back["scale"] == "n"
    m = DetectionModel(str(out), verbose=False)
    assert type(m.model[21]) is SE and m.yaml["scale"] == "n"
    assert not list(tmp_path.rglob("*.tmp*"))


def test_base_is_not_modified():
    base = yaml_model_load("yolov10n.yaml")
    rows = [list(r) for r in base["backbone"] + base["head"]]
    insert_rows(base, "SE", [], after=[16])
    replace_row(base, 10, "PSALSKA", [1024])
    assert base["backbone"] + base["head"] == rows


@pytest.mark.parametrize("kwargs,match", [
    (dict(after=[24]), r"after=24 is out of range: the model has rows 0..23"),
    (dict(after=[23]), r"after=23 is the head"),
    (dict(after=[-1]), r"out of range"),
    (dict(after=[16, 16]), r"repeats a row"),
    (dict(module="SEE"), r"unknown module 'SEE'; closest known names: .*SE"),
    (dict(module="Conv"), r"changes the channel count"),
])
def test_insert_errors(kwargs, match):
    with pytest.raises(UserError, match=match):
        insert_rows("yolov10n.yaml", **{"module": "SE", "args": [], "after": [16], **kwargs})


def test_replace_errors():
    with pytest.raises(UserError, match=r"index must be a row .* 0..22"):
        replace_row("yolov10n.yaml", 23, "PSALSKA", [1024])
    with pytest.raises(UserError, match=r"unknown module 'PSALKSA'.*PSALSKA"):
        replace_row("yolov10n.yaml", 10, "PSALKSA", [1024])


def test_cli(tmp_path, capsys):
    out = tmp_path / "yolov10n-CBAM.yaml"
    assert main(["insert", "base=yolov10n.yaml", "module=CBAM", "after=16,19,22", f"out={out}"]) == 0
    d = yaml.safe_load(out.read_text())
    assert d["head"][6] == [-1, 1, "CBAM", []] and d["head"][-1][0] == [17, 21, 25]
    out2 = tmp_path / "p.yaml"
    main(["replace", "base=yolov10n.yaml", "index=10", "module=PSALSKA", "args=[1024]", f"out={out2}"])
    assert yaml.safe_load(out2.read_text())["backbone"][10] == [-1, 1, "PSALSKA", [1024]]
    with pytest.raises(UserError, match="missing after="):
        main(["insert", "base=yolov10n.yaml", "module=CBAM", f"out={out}"])
    with pytest.raises(UserError, match="'insert' or 'replace'"):
        main(["add"])
