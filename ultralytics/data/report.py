"""report.html of a dataset: what is in it before hours of training go into it (one self-contained page).

Per class: images and instances per split (bar charts and a table); box width/height in pixels at the
training imgsz (each image letterboxed so its long side is imgsz); the share of boxes in COCO's small
(< 32^2 px), medium (< 96^2) and large ranges at that size; a heat map of box centres; images per
instance count; the duplicate-image and problem tables. Plots are matplotlib PNGs embedded as base64.
`check_dataset(data.yaml)` builds the same page for an existing YOLO dataset (`python dataset.py data=...`).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
from collections import Counter
from pathlib import Path

import numpy as np

from ultralytics.utils import LOGGER, UserError
from ultralytics.utils.files import atomic_write_text

SMALL, MEDIUM = 32**2, 96**2  # COCO area ranges (pixels)
MAX_PROBLEM_ROWS = 2000  # the page lists this many problem rows; problems.csv has them all


def box_stats(entries: list[dict], nc: int, imgsz: int) -> dict:
    """Counts and arrays the page shows. entries: {'split', 'w', 'h', 'rows': [(cls, x1, y1, x2, y2) px]}."""
    splits = sorted({e["split"] for e in entries} | {"train", "val"}, key=lambda s: ("train", "val", "test").index(s)
                    if s in ("train", "val", "test") else 9)
    images = {s: np.zeros(nc, int) for s in splits}
    instances = {s: np.zeros(nc, int) for s in splits}
    wh, centres, per_image = [], [], []
    for e in entries:
        cls = [int(r[0]) for r in e["rows"]]
        per_image.append(len(cls))
        for c, n in Counter(cls).items():
            images[e["split"]][c] += 1
            instances[e["split"]][c] += n
        gain = imgsz / max(e["w"], e["h"])
        for _, x1, y1, x2, y2 in e["rows"]:
            wh.append(((x2 - x1) * gain, (y2 - y1) * gain))
            centres.append(((x1 + x2) / 2 / e["w"], (y1 + y2) / 2 / e["h"]))
    wh = np.asarray(wh, float).reshape(-1, 2)
    area = wh[:, 0] * wh[:, 1]
    n = max(len(area), 1)
    sizes = {"small": float((area < SMALL).sum() / n), "medium": float(((area >= SMALL) & (area < MEDIUM)).sum() / n),
             "large": float((area >= MEDIUM).sum() / n)}
    return {"splits": splits, "images": images, "instances": instances, "wh": wh,
            "centres": np.asarray(centres, float).reshape(-1, 2), "per_image": np.asarray(per_image, int),
            "sizes": sizes, "n_images": {s: sum(e["split"] == s for e in entries) for s in splits},
            "backgrounds": sum(not e["rows"] for e in entries)}


def _png(fig) -> str:
    """An <img> tag with the figure as an embedded PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode("ascii")}">'


def plots(st: dict, names: list[str], imgsz: int) -> list[str]:
    """The page's plots as <img> tags: per-class bars, w/h scatter, centre heat map, instances per image."""
    from matplotlib.figure import Figure

    x, out = np.arange(len(names)), []
    fig = Figure(figsize=(max(6.0, 0.5 * len(names) + 3), 6.4))
    axs = fig.subplots(2, 1, sharex=True)
    width = 0.8 / len(st["splits"])
    for ax, key in zip(axs, ("images", "instances")):
        for k, s in enumerate(st["splits"]):
            ax.bar(x + (k - (len(st["splits"]) - 1) / 2) * width, st[key][s], width, label=s)
        ax.set_ylabel(key)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axs[1].set_xticks(x, names, rotation=45 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center")
    axs[0].set_title("per class and split")
    out.append(_png(fig))
    fig = Figure(figsize=(13, 4.2))
    a1, a2, a3 = fig.subplots(1, 3)
    a1.scatter(st["wh"][:, 0], st["wh"][:, 1], s=4, alpha=0.4)
    for r in (32, 96):
        t = np.linspace(r * r / imgsz, imgsz, 100)
        a1.plot(t, r * r / t, "--", lw=0.8, color="grey")
    a1.set(xlim=(0, imgsz), ylim=(0, imgsz), xlabel=f"box width (px at imgsz {imgsz})", ylabel="box height (px)",
           title="box sizes (dashed: 32², 96² px area)")
    a2.hist2d(st["centres"][:, 0], st["centres"][:, 1], bins=24, range=[[0, 1], [0, 1]], cmap="viridis")
    a2.set(xlabel="x centre", ylabel="y centre", title="box centres")
    a2.invert_yaxis()
    pi = st["per_image"]
    a3.hist(pi, bins=np.arange(pi.max() + 2 if len(pi) else 2) - 0.5)
    a3.set(xlabel="instances in the image", ylabel="images", title="images per instance count")
    out.append(_png(fig))
    return out


def _table(headers: list[str], rows: list[list], tid: str) -> str:
    """A <table id=tid> of escaped cells."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table id="{tid}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render(names: list[str], entries: list[dict], problems: list, duplicates: list[list[str]], counts: dict,
           imgsz: int, title: str = "dataset") -> str:
    """The whole page as a string."""
    st = box_stats(entries, len(names), imgsz)
    sp = st["splits"]
    cls_rows = [[i, n] + [int(st["images"][s][i]) for s in sp] + [int(st["instances"][s][i]) for s in sp]
                for i, n in enumerate(names)]
    n_inst = int(sum(v.sum() for v in st["instances"].values()))
    summary = [["images", sum(st["n_images"].values())], *[[f"images {s}", st["n_images"][s]] for s in sp],
               ["instances", n_inst], ["classes", len(names)], ["background images", st["backgrounds"]],
               ["problems", len(problems)], ["duplicate groups", len(duplicates)],
               *[[k, v] for k, v in sorted(dict(counts).items())]]
    sizes = [[k, f"{100 * v:.1f}%"] for k, v in st["sizes"].items()]
    kinds = Counter(p[1] for p in problems)
    pngs = plots(st, names, imgsz)
    parts = [f"<h1>Dataset report: {html.escape(title)}</h1>",
             _table(["", "value"], summary, "summary"),
             "<h2>Per class</h2>",
             _table(["id", "class"] + [f"images {s}" for s in sp] + [f"instances {s}" for s in sp], cls_rows,
                    "per-class"),
             pngs[0],
             f"<h2>Box sizes at imgsz {imgsz}</h2>",
             "<p>Share of boxes in COCO's size ranges after resizing each image to a long side of "
             f"{imgsz} px. Many small boxes: a larger imgsz or a P2 head may matter.</p>",
             _table(["range", "share"], sizes, "sizes"),
             pngs[1],
             f"<h2>Duplicate images ({len(duplicates)} groups)</h2>",
             _table(["group", "files"], [[k + 1, " | ".join(g)] for k, g in enumerate(duplicates)], "duplicates"),
             f"<h2>Problems ({len(problems)})</h2>",
             _table(["problem", "count"], sorted(kinds.items()), "problem-kinds"),
             _table(["file", "problem", "detail"], [list(p) for p in problems[:MAX_PROBLEM_ROWS]], "problems")]
    css = ("body{font:14px sans-serif;margin:24px;max-width:1400px}table{border-collapse:collapse;margin:6px 0}"
           "td,th{border:1px solid #ccc;padding:2px 8px}th{background:#eef}img{max-width:100%}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{css}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def write_report(path, names, entries, problems, duplicates, counts, imgsz: int = 640, title: str = "dataset") -> Path:
    """Write report.html (atomically) -> its path."""
    atomic_write_text(path, render(names, entries, problems, duplicates, counts, imgsz, title))
    return Path(path)


def scan_split(img_path, names: dict, split: str) -> tuple[list[dict], list[tuple[str, str, str]], dict]:
    """Entries, problem rows and {hash: [files]} of one split of an existing YOLO dataset."""
    from ultralytics.data.labels import verify_image_label
    from ultralytics.data.utils import get_img_files, img2label_paths

    entries, problems, hashes = [], [], {}
    ims = get_img_files(img_path)
    for im, lb in zip(ims, img2label_paths(ims)):
        r = verify_image_label(im, lb, len(names))
        if not r["ok"]:
            problems.append((im, f"{r['reason']}_image", r["detail"]))
            continue
        problems += [(lb, f"label_{reason}", f"row {row}") for row, reason in r["dropped"]]
        h, w = r["shape"]
        xywh = np.asarray(r["bboxes"], float).reshape(-1, 4) * [w, h, w, h]
        rows = [(int(c), x - bw / 2, y - bh / 2, x + bw / 2, y + bh / 2) for c, (x, y, bw, bh) in zip(r["cls"], xywh)]
        entries.append({"split": split, "w": w, "h": h, "rows": rows, "file": im})
        hashes.setdefault(hashlib.blake2b(Path(im).read_bytes(), digest_size=16).hexdigest(), []).append(im)
    return entries, problems, hashes


def check_dataset(data, imgsz: int = 640, strict: bool = False) -> Path:
    """Check an existing YOLO dataset and write report.html beside its data.yaml -> the report path."""
    from ultralytics.data.utils import SPLITS, check_det_dataset

    d = check_det_dataset(data)
    names = [d["names"][i] for i in range(d["nc"])]
    entries, problems, hashes = [], [], {}
    for s in SPLITS:
        if d.get(s):
            e, p, h = scan_split(d[s], d["names"], s)
            entries, problems = entries + e, problems + p
            for k, v in h.items():
                hashes.setdefault(k, []).extend(v)
    dups = [v for v in hashes.values() if len(v) > 1]
    problems += [(f, "duplicate_image", f"same content as {g[0]}") for g in dups for f in g[1:]]
    base = Path(d["yaml_file"]).parent if d.get("yaml_file") else Path(d["path"])
    conv = base / "problems.csv"  # rows a conversion recorded (dropped boxes are no longer in the labels)
    if conv.is_file():
        with open(conv, newline="", encoding="utf-8") as f:
            problems += [tuple(r) for r in list(csv.reader(f))[1:] if len(r) == 3 and tuple(r) not in problems]
    path = write_report(base / "report.html", names, entries, problems, dups, {}, imgsz, title=str(data))
    LOGGER.info(f"{data}: {len(entries)} images, {sum(len(e['rows']) for e in entries)} instances, {len(names)} "
                f"classes, {sum(not e['rows'] for e in entries)} background images, {len(problems)} problems; "
                f"report {path}")
    if strict and problems:
        raise UserError(f"strict=True: {len(problems)} problems in {data}; see {path}")
    return path
