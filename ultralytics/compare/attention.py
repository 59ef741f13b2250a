"""compare.py --attention: LSKA against other attention modules at the same insertion points, in one command.

    python compare.py --attention LSKA SE CBAM ECA CoordAtt SimAM EMA --after 16,19,22 --seeds 0 1 2 \
        data=shapes.yaml epochs=30 imgsz=320

For each module, `insert_rows(base, module, [], after)` writes <project>/yamls/<base>-<module>.yaml (project
default runs/train); the plain base model and every such YAML are trained with the same settings and seeds
(the --train ablation: finished runs are skipped, interrupted ones resumed) and compared as usual (mean ±
std over seeds, Welch test against the plain model). Then the cost table: parameters and GFLOPs of the
inference graph (fused, one-to-one head, as benchmark.py reports them), CPU latency at batch 1 (benchmark.py's
median), each with its change against the plain model; written to <out>/attention_cost.csv and .md.
Without --after the modules go where the shipped LSKA YAML of the base's scale puts LSKA (16, 19, 22).
"""

from __future__ import annotations

import math
from pathlib import Path

from ultralytics.utils import LOGGER, UserError

COST_COLUMNS = ("model", "module", "params", "d_params", "gflops", "d_gflops", "cpu_ms", "d_cpu_ms", "d_cpu_pct")


def lska_points(base: str) -> list[int]:
    """The base rows the shipped yolov10<scale>-LSKA.yaml puts LSKA after (old numbering): [16, 19, 22]."""
    from ultralytics.nn.tasks import guess_scale, yaml_model_load

    d = yaml_model_load(f"yolov10{guess_scale(base) or 'n'}-LSKA.yaml")
    rows = d["backbone"] + d["head"]
    new = [i for i, r in enumerate(rows) if r[2] == "LSKA"]
    return [i - k - 1 for k, i in enumerate(new)]  # each LSKA row follows its point; k earlier LSKA rows moved it


def parse_after(text: str | None, base: str) -> list[int]:
    """--after '16,19,22' -> [16, 19, 22]; None -> the LSKA YAML's points."""
    if text is None:
        return lska_points(base)
    try:
        points = [int(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        raise UserError(f"--after {text!r} must be row indices separated by commas, e.g. 16,19,22") from None
    if not points:
        raise UserError("--after needs at least one row index, e.g. 16,19,22")
    return points


def build_yamls(base: str, modules: list[str], after: list[int], folder: Path) -> list[str]:
    """Write <folder>/<base stem>-<module>.yaml for each module (insert_rows); return their paths."""
    from ultralytics.nn.yaml_edit import insert_rows

    if len(set(modules)) != len(modules):
        raise UserError(f"--attention {' '.join(modules)} lists a module twice")
    stem = Path(base).stem
    paths = []
    for m in modules:
        path = folder / f"{stem}-{m}.yaml"
        insert_rows(base, m, [], after, save=path)
        paths.append(str(path))
    return paths


def cost_rows(models: list[str], modules: list[str], imgsz: int, timed_runs: int | None) -> list[dict]:
    """One row per model (the plain base first): inference-graph params and GFLOPs, CPU ms at batch 1, deltas."""
    import torch

    from ultralytics.analysis.benchmark import benchmark_args, benchmark_one

    over = {"imgsz": imgsz, "batch": 1, "device": "cpu", "half": False}
    if timed_runs is not None:
        over.update(timed_runs=timed_runs, warmup_runs=min(timed_runs, 10))
    args = benchmark_args(over)
    rows = []
    for model, module in zip(models, ["(none)", *modules]):
        r = benchmark_one(model, args, torch.device("cpu"))
        rows.append({"model": Path(model).stem, "module": module, "params": int(r["params"]),
                     "gflops": float(r["gflops"]), "cpu_ms": float(r["ms_median"])})
    base = rows[0]
    for r in rows:
        r["d_params"] = r["params"] - base["params"]
        r["d_gflops"] = r["gflops"] - base["gflops"]
        r["d_cpu_ms"] = r["cpu_ms"] - base["cpu_ms"]
        r["d_cpu_pct"] = 100 * r["d_cpu_ms"] / base["cpu_ms"] if base["cpu_ms"] > 0 else math.nan
    return [{k: r[k] for k in COST_COLUMNS} for r in rows]


def cost_markdown(rows: list[dict], imgsz: int) -> str:
    """The cost table as Markdown (printed, and attention_cost.md)."""
    from ultralytics.compare.report import fmt_int, fmt_num, markdown_table

    headers = ["model", "module", "params", "Δ params", "GFLOPs", "Δ GFLOPs", "CPU ms", "Δ CPU ms"]
    cells = [[r["model"], r["module"], fmt_int(r["params"]), fmt_int(r["d_params"], sign=True),
              fmt_num(r["gflops"], 2), fmt_num(r["d_gflops"], 2, sign=True), fmt_num(r["cpu_ms"], 1),
              f"{fmt_num(r['d_cpu_ms'], 1, sign=True)} ({fmt_num(r['d_cpu_pct'], 1, sign=True)}%)"]
             for r in rows]
    note = (f"Inference graph (fused, one-to-one head) at {imgsz}x{imgsz}, as benchmark.py reports it; CPU ms: "
            f"median forward pass at batch 1 on this machine (time on an idle machine); Δ: minus the plain model.")
    return markdown_table(headers, cells, right=set(range(2, 8))) + "\n\n" + note + "\n"


def run_attention(modules: list[str], after: str | None, base: str, seeds: list[int], settings: dict,
                  out: str | Path, cost_imgsz: int = 640, timed_runs: int | None = None) -> tuple[list[str], str]:
    """Write the YAMLs, train what is missing, write the cost table; return (run directories, baseline group)."""
    from ultralytics.compare.ablation import check_request, run_ablation
    from ultralytics.compare.report import rows_to_csv
    from ultralytics.utils.files import atomic_write_text

    if not modules:
        raise UserError("--attention needs at least one module name, e.g. --attention LSKA SE CBAM")
    check_request([base], seeds, settings)  # settings, seeds and the base, before any file is written
    points = parse_after(after, base)
    folder = Path(settings.get("project") or "runs/train") / "yamls"
    models = [base, *build_yamls(base, modules, points, folder)]
    LOGGER.info(f"Attention comparison: {', '.join(modules)} after rows {', '.join(map(str, points))} of {base} "
                f"(YAMLs in {folder})")
    runs = [str(p) for p in run_ablation(models, seeds, settings)]
    rows = cost_rows(models, modules, cost_imgsz, timed_runs)
    out = Path(out)
    md = cost_markdown(rows, cost_imgsz)
    atomic_write_text(out / "attention_cost.csv", rows_to_csv(rows))
    atomic_write_text(out / "attention_cost.md", "# Cost of each attention module\n\n" + md)
    LOGGER.info(f"\nCost of each module\n\n{md}")
    return runs, Path(base).stem
