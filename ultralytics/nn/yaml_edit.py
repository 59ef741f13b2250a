"""Editing a model YAML's rows without renumbering by hand: insert a module after rows, or replace a row.

    from ultralytics.nn.yaml_edit import insert_rows, replace_row
    d = insert_rows("yolov10n.yaml", module="SE", args=[16], after=[16, 19, 22], save="yolov10n-SE.yaml")
    d = replace_row("yolov10n.yaml", index=10, module="PSALSKA", args=[1024])
    DetectionModel(d)                                      # or YOLO("yolov10n-SE.yaml")

    yolo yaml insert base=yolov10n.yaml module=CBAM after=16,19,22 out=yolov10n-CBAM.yaml
    yolo yaml replace base=yolov10n.yaml index=10 module=PSALSKA args=[1024] out=yolov10n-PSALSKA.yaml

An inserted row `[-1, 1, module, args]` goes right after row r and takes r's place in the data path: every
row that read r (the next row's -1, a Concat's absolute index, the head's inputs) reads the inserted row,
and every index after r moves up by the number of rows inserted before it; the inserted row reads r.
This is exactly how the shipped yolov10*-LSKA.yaml were written by hand. Only the model dict is edited:
no model is built (DetectionModel(d) builds it and reports a row that does not fit).
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from ultralytics.utils import LOGGER, UserError

TOP_KEYS = ("nc", "scales", "scale", "depth_multiple", "width_multiple")  # written first, in this order


def load_model_dict(base: str | Path | dict) -> dict:
    """A copy of a model dict, or the dict of a model YAML (a path or a shipped name such as yolov10n.yaml)."""
    from ultralytics.nn.tasks import yaml_model_load

    if isinstance(base, dict):
        return copy.deepcopy(base)
    return yaml_model_load(base)


def check_module(name: str, where: str) -> str:
    """The registered channel rule of a YAML module name; UserError with the closest names when unknown."""
    from ultralytics.nn.registry import closest_names, lookup
    from ultralytics.nn.tasks import MODULE_TABLE  # noqa: F401 - importing tasks registers the tree's modules

    entry = lookup(name) if isinstance(name, str) else None
    if entry is None:
        close = ", ".join(closest_names(str(name))) or "none"
        raise UserError(f"{where}: unknown module {name!r}; closest known names: {close}")
    return entry[1]


def _rows(d: dict) -> tuple[list, int]:
    src = d.get("yaml_file", "<dict>")
    if not isinstance(d.get("backbone"), list) or not isinstance(d.get("head"), list):
        raise UserError(f"{src}: 'backbone' and 'head' must be lists of [from, repeats, module, args] rows")
    return d["backbone"] + d["head"], len(d["backbone"])


def _check_args(args, where: str) -> list:
    if args is None:
        return []
    if not isinstance(args, (list, tuple)):
        raise UserError(f"{where}: args must be a list, e.g. [16], got {args!r}")
    return list(args)


def insert_rows(base: str | Path | dict, module: str, args: list | None = None, after=(16, 19, 22),
                save: str | Path | None = None) -> dict:
    """The model dict with `[-1, 1, module, args]` inserted after each row in `after`, indices renumbered.

    module must be registered and keep its input channels (rule 'same' or 'plain'); after: row indices of
    the base model, none of them the head (the last row). save: also write the dict as a YAML there, with a
    header comment saying what was inserted where. Returns the new dict (base is not modified).
    """
    d = load_model_dict(base)
    src = d.get("yaml_file", "<dict>")
    rows, n_backbone = _rows(d)
    where = f"insert_rows({Path(str(src)).name}, module={module!r})"
    rule = check_module(module, where)
    if rule not in ("same", "plain"):
        raise UserError(f"{where}: {module} changes the channel count (rule {rule!r}); insert_rows inserts "
                        "channel-preserving modules (rule 'same' or 'plain'); use replace_row for the others")
    args = _check_args(args, where)
    points = _check_points(after, len(rows), where)
    new_pos, reads = {}, {}  # old index -> new index of the row; -> new index of what its readers now read
    shift = 0
    for i in range(len(rows)):
        new_pos[i] = i + shift
        reads[i] = new_pos[i] + (i in points)
        shift += i in points
    backbone, head = [], []
    for i, row in enumerate(rows):
        if not (isinstance(row, (list, tuple)) and len(row) == 4):
            raise UserError(f"{src}, row {i} ({row!r}): a row must be [from, repeats, module, args]")
        f = row[0]
        froms = [_renumber(j, i, new_pos, reads, src) for j in (f if isinstance(f, list) else [f])]
        part = backbone if i < n_backbone else head
        part.append([froms if isinstance(f, list) else froms[0], *copy.deepcopy(list(row[1:]))])
        if i in points:
            part.append([-1, 1, module, copy.deepcopy(args)])
    d["backbone"], d["head"] = backbone, head
    inserted = [reads[p] for p in points]
    note = (f"{module} {args} inserted after rows {_join(points)} of {Path(str(src)).name} (now rows "
            f"{_join(inserted)}); every later 'from' index and the head inputs renumbered by "
            f"ultralytics.nn.yaml_edit.insert_rows.")
    return _finish(d, src, save, note)


def replace_row(base: str | Path | dict, index: int, module: str, args: list | None = None,
                save: str | Path | None = None) -> dict:
    """The model dict with row `index` replaced by `module` with `args` (its 'from' and repeats kept).

    The row count is unchanged, so no index moves. save: also write a YAML with a header comment.
    """
    d = load_model_dict(base)
    src = d.get("yaml_file", "<dict>")
    rows, n_backbone = _rows(d)
    where = f"replace_row({Path(str(src)).name}, index={index!r}, module={module!r})"
    check_module(module, where)
    args = _check_args(args, where)
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(rows) - 1:
        raise UserError(f"{where}: index must be a row of the model other than the head, 0..{len(rows) - 2}")
    part, j = (d["backbone"], index) if index < n_backbone else (d["head"], index - n_backbone)
    old = part[j]
    part[j] = [old[0], old[1], module, args]
    note = (f"row {index}: {old[2]} {old[3]} -> {module} {args}, replaced in {Path(str(src)).name} by "
            f"ultralytics.nn.yaml_edit.replace_row.")
    return _finish(d, src, save, note)


def _check_points(after, n_rows: int, where: str) -> list[int]:
    """`after` as sorted unique row indices, each a row before the head; UserError otherwise."""
    if isinstance(after, int) and not isinstance(after, bool):
        after = [after]
    if isinstance(after, str):
        try:
            after = [int(a) for a in after.split(",") if a.strip()]
        except ValueError:
            raise UserError(f"{where}: after={after!r} must be row indices, e.g. 16,19,22") from None
    if not isinstance(after, (list, tuple)) or not after:
        raise UserError(f"{where}: after must list at least one row index, e.g. [16, 19, 22]")
    for a in after:
        if not isinstance(a, int) or isinstance(a, bool) or not 0 <= a < n_rows:
            raise UserError(f"{where}: after={a!r} is out of range: the model has rows 0..{n_rows - 1}")
        if a == n_rows - 1:
            raise UserError(f"{where}: after={a} is the head (the last row): a module cannot follow the head; "
                            f"insert after the rows the head reads instead")
    if len(set(after)) != len(after):
        raise UserError(f"{where}: after={list(after)} repeats a row")
    return sorted(after)


def _renumber(j, i: int, new_pos: dict, reads: dict, src) -> int:
    """One 'from' entry of old row i in the new numbering (relative entries stay relative)."""
    if not isinstance(j, int) or isinstance(j, bool):
        raise UserError(f"{src}, row {i}: 'from' entry {j!r} is not an integer")
    if j < 0:
        if i + j < 0:
            return j  # the input image (row 0's -1)
        return reads[i + j] - new_pos[i]
    if j not in reads:
        raise UserError(f"{src}, row {i}: 'from' index {j} is not a row of the model")
    return reads[j]


def _join(xs) -> str:
    return ", ".join(str(x) for x in xs)


def _finish(d: dict, src, save, note: str) -> dict:
    """Set the scale from the base name (the new file's name may not carry it); write the YAML if asked."""
    from ultralytics.nn.tasks import guess_scale

    scales = d.get("scales")
    if scales and "scale" not in d:
        s = guess_scale(str(src))
        if s in scales:
            d["scale"] = s
    if save is not None:
        d["yaml_file"] = str(save)
        write_model_yaml(d, save, note)
        LOGGER.info(f"Written {save}: {note}")
    return d


def model_yaml_text(d: dict, note: str = "") -> str:
    """A model dict as YAML in the shipped files' layout: comment header, top keys, one row per line with its index."""
    lines = [f"# {ln}" for ln in note.splitlines()] if note else []
    lines.append("# Rows are [from, repeats, module, args]; row i is model.i.")
    lines.append("")
    for k in [*TOP_KEYS, *(k for k in d if k not in TOP_KEYS)]:
        if k in d and k not in ("backbone", "head", "yaml_file"):
            flow = None if isinstance(d[k], dict) else False  # scales: one flow list per scale
            lines.append(yaml.safe_dump({k: d[k]}, default_flow_style=flow, sort_keys=False).rstrip())
    i = 0
    for part in ("backbone", "head"):
        lines += ["", f"{part}:"]
        for row in d[part]:
            text = yaml.safe_dump(row, default_flow_style=True, width=1000).strip()
            lines.append(f"  - {text:<40}  # {i}")
            i += 1
    return "\n".join(lines) + "\n"


def write_model_yaml(d: dict, path: str | Path, note: str = "") -> Path:
    """Write a model dict as a YAML (temporary name, then renamed into place)."""
    from ultralytics.utils.files import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, model_yaml_text(d, note))


def main(argv: list[str]) -> int:
    """`yolo yaml insert base=... module=... after=16,19,22 [args=[7]] out=...` or `yolo yaml replace base=...
    index=10 module=... [args=[...]] out=...`. Prints the written path; UserError on a bad request."""
    from ultralytics.cfg import parse_key_value_args

    usage = ("usage: yolo yaml insert base=yolov10n.yaml module=CBAM after=16,19,22 [args=[16]] out=FILE.yaml\n"
             "       yolo yaml replace base=yolov10n.yaml index=10 module=PSALSKA [args=[1024]] out=FILE.yaml")
    if not argv or argv[0] not in ("insert", "replace"):
        raise UserError(f"yolo yaml: give 'insert' or 'replace' first\n{usage}")
    kv = parse_key_value_args(list(argv[1:]))
    need = ("base", "module", "out") + (("after",) if argv[0] == "insert" else ("index",))
    missing = [k for k in need if k not in kv]
    allowed = set(need) | {"args"}
    extra = [k for k in kv if k not in allowed]
    if missing or extra:
        what = (f"missing {', '.join(f'{k}=' for k in missing)}" if missing else "") + \
               ("; " if missing and extra else "") + (f"unknown {', '.join(f'{k}=' for k in extra)}" if extra else "")
        raise UserError(f"yolo yaml {argv[0]}: {what}\n{usage}")
    args = kv.get("args")
    if args is not None and not isinstance(args, list):
        args = [args]
    if argv[0] == "insert":
        insert_rows(str(kv["base"]), str(kv["module"]), args, kv["after"], save=str(kv["out"]))
    else:
        replace_row(str(kv["base"]), kv["index"], str(kv["module"]), args, save=str(kv["out"]))
    print(kv["out"])
    return 0


if __name__ == "__main__":  # python -m ultralytics.nn.yaml_edit insert base=... (what `yolo yaml` runs)
    import sys

    try:
        sys.exit(main(sys.argv[1:]))
    except UserError as e:
        sys.exit(f"ERROR: {e}")
