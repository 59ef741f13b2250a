"""Seeded, stratified train/val(/test) split that keeps identical images together.

Images are grouped by content hash (duplicates form one group, so they land on one side). Groups whose
split the source fixes (VOC ImageSets, one COCO JSON per split, train/ val/ folders) keep it. The others
are shuffled with `seed`; then, rarest class first, every class with images in at least 2 groups gets one
of its groups into val when it has none there yet; then val (and test) are filled in shuffled order up to
their share of the images, passing over groups that hold the last train group of a class while others are
left, and the rest is train. With 2 or more free groups and a val share, val gets at least one group
(the smallest, one that keeps every class in train when there is one) even where its share rounds to 0.
Same input + same seed -> same split.
"""

from __future__ import annotations

import numpy as np

from ultralytics.utils import UserError


def check_fractions(split) -> tuple[float, ...]:
    """(train, val) or (train, val, test) fractions summing to 1; UserError otherwise."""
    try:
        fr = tuple(float(f) for f in split)
    except (TypeError, ValueError):
        raise UserError(f"split={split!r}: give fractions like (0.8, 0.2) or (0.7, 0.2, 0.1)") from None
    if len(fr) not in (2, 3) or min(fr) < 0 or abs(sum(fr) - 1) > 1e-6:
        raise UserError(f"split={split!r}: 2 or 3 non-negative fractions (train, val[, test]) summing to 1")
    return fr


def assign_splits(keys: list[str], classes: list[set], fixed: list[str | None], fractions, seed: int = 0) -> list[str]:
    """Split of each image. keys: content hash per image; classes: class names per image; fixed: preset or None."""
    fr = check_fractions(fractions)
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    out: list[str | None] = [None] * len(keys)
    free = []
    for k in sorted(groups, key=lambda g: groups[g][0]):  # source order, deterministic
        members = groups[k]
        preset = next((fixed[i] for i in members if fixed[i]), None)
        if preset:
            for i in members:
                out[i] = preset
        else:
            free.append(members)
    order = np.random.default_rng(int(seed)).permutation(len(free)).tolist()
    free = [free[j] for j in order]
    n_free = sum(len(g) for g in free)
    target = {"val": round(n_free * fr[1]), "test": round(n_free * fr[2]) if len(fr) == 3 else 0}
    side = [None] * len(free)
    taken = {"val": 0, "test": 0}
    gcls = [set().union(*(classes[i] for i in g)) for g in free]
    left: dict = {}  # groups of each class still in train
    for cs in gcls:
        for c in cs:
            left[c] = left.get(c, 0) + 1

    def take(j: int, name: str) -> None:
        side[j] = name
        taken[name] += len(free[j])
        for c in gcls[j]:
            left[c] -= 1

    def keeps_train(j: int) -> bool:  # every class of group j keeps a group in train
        return all(left[c] > 1 for c in gcls[j])

    if target["val"]:
        in_val = set().union(*(classes[i] for i, s in enumerate(out) if s == "val")) if "val" in out else set()
        for c in sorted(left, key=lambda c: (left[c], c)):  # rarest first
            if left[c] < 2 or c in in_val or taken["val"] >= target["val"]:
                continue
            j = next((j for j, cs in enumerate(gcls) if c in cs and side[j] is None and keeps_train(j)), None)
            if j is not None:
                take(j, "val")
                in_val |= gcls[j]
    for strict in (True, False):  # fill val, then test; first without taking a class's last train group
        for name in ("val", "test"):
            for j, g in enumerate(free):
                if side[j] is None and taken[name] + len(g) <= target[name] and (keeps_train(j) or not strict):
                    take(j, name)
    if fr[1] > 0 and taken["val"] == 0 and "val" not in out and len(free) >= 2:  # a small source: val gets one
        j = min((j for j in range(len(free)) if side[j] is None),
                key=lambda j: (not keeps_train(j), len(free[j]), j), default=None)
        if j is not None and sum(side[k] is None for k in range(len(free))) >= 2:
            take(j, "val")
    for j, g in enumerate(free):
        for i in g:
            out[i] = side[j] or "train"
    return out
