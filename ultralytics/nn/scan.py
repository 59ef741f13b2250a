"""Build every model YAML at every scale it declares, run it, and record its summary line.

    python -m ultralytics.nn.scan                            print the table for ultralytics/cfg/models
    python -m ultralytics.nn.scan --write tests/data/model_table.csv    regenerate the committed table

Each (YAML, scale) is built, run on a 64x64 zero image in eval mode ((1, k, 6) out: the top k = min(300, anchors):
84 of 84 for three levels, 300 of 340 with P2) and in train mode (both branches, one map per head level: three,
or four in the P2 models), and summarised as the summary line prints it: layers, parameters, GFLOPs
at 640. A YAML that fails is reported with its file and the builder's message (a UserError naming the row).
tests/test_model_scan.py compares the table with the committed one, so an accidental change is seen.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import torch

from ultralytics.utils import UserError

COLUMNS = ("yaml", "scale", "layers", "parameters", "gflops")
SCAN_IMGSZ = 64  # forward passes on a small input: the scan checks that models run, not their speed


def model_yamls(root: str | Path) -> list[Path]:
    """Every *.yaml under root, sorted by path relative to root."""
    root = Path(root)
    return sorted(root.rglob("*.yaml"), key=lambda p: p.relative_to(root).as_posix())


def scan_one(path: Path, scale: str | None, imgsz: int = SCAN_IMGSZ) -> tuple[int, int, float]:
    """(layers, parameters, GFLOPs at 640) of one YAML at one scale, after checking both forward modes run."""
    from ultralytics.nn.tasks import DetectionModel

    m = DetectionModel(str(path), scale=scale, verbose=False)
    x = torch.zeros(1, 3, imgsz, imgsz)
    with torch.no_grad():
        y = m.eval()(x)
        anchors = sum(int(imgsz // s) ** 2 for s in m.stride.tolist())
        want = (1, min(m.model[-1].max_det, anchors), 6)
        if tuple(y.shape) != want:
            raise UserError(f"{path}: eval output has shape {tuple(y.shape)}, expected {want}")
        out = m.train()(x)
        nl = len(m.stride)
        if len(out["one2many"]) != nl or len(out["one2one"]) != nl:
            raise UserError(f"{path}: train output does not have {nl} levels (one per stride) in each branch")
    layers, params, _, gflops = m.info(verbose=False)
    return layers, params, gflops


def scan(root: str | Path, imgsz: int = SCAN_IMGSZ, only: str | None = None) -> tuple[list[dict], list[str]]:
    """(rows of COLUMNS, problems): one row per (YAML, scale) that builds and runs, one problem line per failure.

    only: only these scale letters (e.g. 'ns'); default every scale each YAML declares.
    """
    import yaml

    root = Path(root)
    rows, problems = [], []
    for path in model_yamls(root):
        name = path.relative_to(root).as_posix()
        try:
            declared = list((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("scales") or [None])
        except (yaml.YAMLError, AttributeError) as e:
            problems.append(f"{name}: not a model YAML ({e})")
            continue
        for s in declared:
            if only is not None and s is not None and s not in only:
                continue
            try:
                layers, params, gflops = scan_one(path, s, imgsz)
            except UserError as e:
                problems.append(f"{name} (scale {s}): {e}")
                continue
            rows.append({"yaml": name, "scale": s or "", "layers": layers, "parameters": params,
                         "gflops": round(gflops, 3)})
    return rows, problems


def table_text(rows: list[dict]) -> str:
    """The rows as CSV text (the committed table's format)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def read_table(path: str | Path) -> list[dict]:
    """The committed table as rows with typed numbers."""
    with open(path, newline="", encoding="utf-8") as f:
        return [{"yaml": r["yaml"], "scale": r["scale"], "layers": int(r["layers"]), "parameters": int(r["parameters"]),
                 "gflops": float(r["gflops"])} for r in csv.DictReader(f)]


def main(argv: list[str] | None = None) -> int:
    """Print (or --write) the table; exit status 1 when a YAML fails."""
    from ultralytics.nn.tasks import MODELS_DIR
    from ultralytics.utils.files import atomic_write_text

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=str(MODELS_DIR), help="folder of model YAMLs (default: the shipped ones)")
    p.add_argument("--scales", help="only these scale letters, e.g. ns (default: all)")
    p.add_argument("--write", metavar="CSV", help="write the table there (e.g. tests/data/model_table.csv)")
    args = p.parse_args(argv)
    rows, problems = scan(args.root, only=args.scales)
    text = table_text(rows)
    if args.write:
        atomic_write_text(args.write, text)
        print(f"Written {args.write} ({len(rows)} rows)")
    else:
        print(text, end="")
    for line in problems:
        print(f"FAILED {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
