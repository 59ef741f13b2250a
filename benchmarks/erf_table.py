"""docs/08's ERF table: `python erf.py` with its shipped settings (untrained yolov10n vs yolov10n-LSKA).

    python benchmarks/erf_table.py       # about 3 min on 2 cores; writes benchmarks/results/erf_table.json

Runs erf.py's SETTINGS on the built-in validation images (made first if absent) with torch seeded, and keeps
the area ratios as a markdown table plus the seconds the measurement took.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__" and not __package__:
    sys.path.insert(0, str(ROOT))

from benchmarks._results import save_results  # noqa: E402


def main() -> None:
    import torch

    import erf as erf_script
    from ultralytics.analysis import erf
    from ultralytics.data.builtin import ensure_builtin_dataset

    ensure_builtin_dataset()
    settings = dict(erf_script.SETTINGS, source=str(ROOT / erf_script.SOURCE), plot=False,
                    project=tempfile.mkdtemp(prefix="erf_table_"))
    torch.manual_seed(0)
    out = erf.run(**settings)
    keys = list(dict.fromkeys((r["model"], r["level"]) for r in out["rows"]))
    ts = sorted({r["threshold"] for r in out["rows"]})
    lines = ["| model | level | " + " | ".join(f"r({t:g})" for t in ts) + " |", "|---|---|" + "---:|" * len(ts)]
    for m, lv in keys:
        vals = {r["threshold"]: r["area_ratio"] for r in out["rows"] if (r["model"], r["level"]) == (m, lv)}
        lines.append(f"| {m} | {lv} | " + " | ".join(f"{vals[t]:.4f}" for t in ts) + " |")
    r05 = {r["model"]: r["area_ratio"] for r in out["rows"] if r["level"] == "P5" and r["threshold"] == 0.5}
    base, lska = r05["yolov10n"], r05["yolov10n-LSKA"]
    figures = {"table_md": "\n".join(lines), "seconds": round(out["seconds"]), "images": settings["n"],
               "imgsz": settings["imgsz"], "p5_r05_ratio": round(lska / base, 1)}
    print(figures["table_md"])
    print(f"wrote {save_results('erf_table', figures, {k: str(v) for k, v in settings.items()})}")


if __name__ == "__main__":
    main()
