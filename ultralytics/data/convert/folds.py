"""k-fold cross-validation splits of a converted dataset: out/folds/<k>/data.yaml over list files, no copies.

`python dataset.py source=... out=... folds=5` writes, beside the usual split:

    out/folds/folds.csv          file, group, fold: the fold each image is in val of
    out/folds/<k>/train.txt      image paths (relative to the list file) of the other folds
    out/folds/<k>/val.txt        image paths of fold k
    out/folds/<k>/data.yaml      path: ../.. (the dataset), train/val: the list files, test: images/test if any

The folds are made over the train and val images (a test split stays held out, the same in every fold); a
split the source fixes (VOC ImageSets, one COCO file per split) is not kept by the folds. They are grouped as
the split is: images with the same content hash form one group, and a tile carries its source's hash, so
duplicates and the tiles of one source always share a fold. They are stratified: groups are placed rarest
class first (ties in an order shuffled with `seed`), each into the fold holding the fewest images of that class,
then the fewest images. Every image is in val exactly once across the folds. `python train.py data=out/folds`
trains them one after another (ultralytics/engine/kfold.py).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import yaml

from ultralytics.utils import UserError

FOLDS_DIR = "folds"
_FOLD_YAML = re.compile(r"^(?:(.*)[\\/])?" + FOLDS_DIR + r"[\\/](\d+)[\\/]data\.ya?ml$")


def check_folds(folds) -> int:
    """0 (no folds) or an int >= 2, else a UserError naming `folds`."""
    if folds in (None, False, "", 0, "0"):
        return 0
    try:
        k = int(folds)
    except (TypeError, ValueError):
        raise UserError(f"folds={folds!r} is not a whole number; use e.g. folds=5 (0: no folds)") from None
    if k != float(folds) or k < 2:
        raise UserError(f"folds={folds!r}: k-fold needs a whole number of at least 2 folds (e.g. folds=5)")
    return k


def assign_folds(keys: list[str], classes: list[set], k: int, seed: int = 0) -> list[int]:
    """Fold of each image (0..k-1). keys: group key per image (content hash); classes: class ids per image.

    Images sharing a key share a fold. Groups are placed rarest class first (the number of groups holding a
    class), ties in seeded random order, each into the fold with the fewest images of its rarest class, then
    the fewest images, then the lowest index; class-less groups last by image count. UserError when there are
    fewer groups than folds.
    """
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    members = list(groups.values())
    if len(members) < k:
        raise UserError(f"folds={k}: only {len(members)} distinct images (identical copies count once) to put "
                        f"into val; use folds={max(2, len(members))} or fewer")
    order = np.random.default_rng(int(seed)).permutation(len(members)).tolist()
    members = [members[j] for j in order]
    gcls = [set().union(*(classes[i] for i in g)) for g in members]
    freq = Counter(c for cs in gcls for c in cs)
    rarest = [min(cs, key=lambda c: (freq[c], str(c))) if cs else None for cs in gcls]
    ranked = sorted(range(len(members)), key=lambda j: freq[rarest[j]] if gcls[j] else math.inf)
    per_class = [Counter() for _ in range(k)]
    n_img = [0] * k
    out = [0] * len(keys)
    for j in ranked:
        r = rarest[j]
        f = min(range(k), key=lambda f: (per_class[f][r] if r is not None else 0, n_img[f], f))
        n_img[f] += len(members[j])
        for c in gcls[j]:
            per_class[f][c] += len(members[j])
        for i in members[j]:
            out[i] = f
    return out


def write_folds(root: Path, entries: list, k: int, seed: int, names: list[str]) -> Path:
    """Write root/folds/ for the written dataset at root -> that folder.

    entries: the writer's written entries (.split, .item.image.name, .digest, .rows of (cls, x1, y1, x2, y2)).
    """
    pool = [e for e in entries if e.split in ("train", "val")]
    fold = assign_folds([e.digest for e in pool], [{r[0] for r in e.rows} for e in pool], k, seed)
    has_test = any(e.split == "test" for e in entries)
    base = root / FOLDS_DIR
    rel = [f"images/{e.split}/{e.item.image.name}" for e in pool]
    for f in range(k):
        d = base / str(f)
        d.mkdir(parents=True)
        for name, want in (("train", False), ("val", True)):
            lines = [f"../../{p}\n" for p, g in zip(rel, fold) if (g == f) == want]
            (d / f"{name}.txt").write_text("".join(lines), encoding="utf-8")
        data = {"path": "../..", "train": f"{FOLDS_DIR}/{f}/train.txt", "val": f"{FOLDS_DIR}/{f}/val.txt",
                **({"test": "images/test"} if has_test else {}), "names": dict(enumerate(names)),
                "fold": f, "folds": k}
        (d / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("file", "group", "fold"))
    w.writerows((p, e.digest, g) for p, e, g in zip(rel, pool, fold))
    (base / "folds.csv").write_text(buf.getvalue(), encoding="utf-8")
    return base


def fold_of(data) -> tuple[str, int] | None:
    """('<dataset>/folds', k) when `data` names a fold's YAML '<dataset>/folds/<k>/data.yaml', else None."""
    m = _FOLD_YAML.match(str(data or ""))
    return (f"{m.group(1)}/{FOLDS_DIR}" if m.group(1) is not None else FOLDS_DIR, int(m.group(2))) if m else None


def fold_yamls(data) -> list[Path] | None:
    """The fold YAMLs [<k>/data.yaml for k = 0..K-1] when `data` is a folds folder (or a dataset holding one).

    None when `data` is not a folder (a data YAML, a built-in name); UserError for a folder that holds no
    folds or has a gap in them.
    """
    p = Path(str(data)) if data is not None else None
    if p is None or not p.is_dir():
        return None
    if (p / FOLDS_DIR).is_dir() and not (p / "0").is_dir():
        p = p / FOLDS_DIR
    ks = sorted(int(c.name) for c in p.iterdir() if c.is_dir() and c.name.isdigit() and (c / "data.yaml").is_file())
    if not ks:
        raise UserError(f"data={data} is a folder without fold YAMLs (<k>/data.yaml); give a data YAML, or the "
                        f"folds folder `python dataset.py ... folds=5` wrote (out/{FOLDS_DIR})")
    if ks != list(range(len(ks))):
        raise UserError(f"data={data}: fold folders {ks} are not 0..{len(ks) - 1}; a fold is missing")
    return [p / str(k) / "data.yaml" for k in ks]
