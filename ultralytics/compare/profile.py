"""What a run cost: model parameters and GFLOPs (rebuilt from the checkpoint's YAML) and train image count.

Both are cached per comparison (a Profiler object), so ten runs of one architecture build it once.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ultralytics.compare.runs import Run
from ultralytics.utils import UserError

FLOPS_IMGSZ = 640  # GFLOPs are counted at 640x640, as the model summary line prints them


@dataclass(frozen=True)
class ModelCost:
    """Parameters and GFLOPs (at FLOPS_IMGSZ) of one architecture; source says where the YAML came from."""

    params: int
    gflops: float
    source: str  # 'checkpoint' (the YAML saved in best.pt/last.pt) or 'yaml' (args.yaml 'model' rebuilt)


def arch_signature(cfg: dict) -> str:
    """A short hash of what defines the architecture: rows, class count and the scale's multipliers.

    cfg: a model YAML dict. The YAML's file path is left out, so the same YAML moved or renamed matches.
    """
    scales, scale = cfg.get("scales") or {}, cfg.get("scale")
    key = {"backbone": cfg.get("backbone"), "head": cfg.get("head"), "nc": cfg.get("nc"),
           "mult": scales.get(scale) if scales else [cfg.get("depth_multiple", 1.0), cfg.get("width_multiple", 1.0)]}
    if cfg.get("pruned"):  # a pruned model (nn/pruned_arch.py): its channel counts are part of the architecture
        key["pruned"] = cfg["pruned"]
    return hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:10]


class Profiler:
    """Per-comparison caches: model YAML per run, cost per architecture, train image count per dataset."""

    def __init__(self):
        self._costs: dict[str, ModelCost] = {}
        self._images: dict[tuple, int | None] = {}
        self._yamls: dict[Path, tuple[dict | None, str]] = {}

    # --- the model ------------------------------------------------------------------------------
    def model_yaml(self, run: Run) -> tuple[dict | None, str]:
        """(model YAML dict as trained, source) of a run, or (None, why) when it cannot be known."""
        if run.path in self._yamls:
            return self._yamls[run.path]
        out: tuple[dict | None, str] = (None, "no weights and no model YAML")
        if run.weights is not None:
            from ultralytics.utils.checkpoint import read_checkpoint

            try:
                cfg = read_checkpoint(run.weights).get("yaml")
                if isinstance(cfg, dict):
                    out = (cfg, "checkpoint")
            except UserError as e:
                run.notes.append(f"weights unreadable: {e}")
        if out[0] is None and run.model_file.endswith((".yaml", ".yml")):
            out = self._yaml_from_args(run)
        self._yamls[run.path] = out
        return out

    def _yaml_from_args(self, run: Run) -> tuple[dict | None, str]:
        """The run's model YAML rebuilt from args.yaml 'model' with the dataset's class count."""
        from ultralytics.nn.tasks import guess_scale, yaml_model_load

        try:
            cfg = yaml_model_load(run.model_file)
        except UserError as e:
            return None, str(e)
        data = self.dataset(run)
        if data is not None:
            cfg["nc"] = 1 if run.args.get("single_cls") else data["nc"]
        else:
            run.notes.append(f"no weights and data not found: params/GFLOPs are for the YAML's nc={cfg.get('nc')}")
        if cfg.get("scales") and not cfg.get("scale"):
            cfg["scale"] = guess_scale(cfg["yaml_file"]) or next(iter(cfg["scales"]))
        return cfg, "yaml"

    def cost(self, run: Run) -> ModelCost | None:
        """Parameters and GFLOPs of the run's model (None when its YAML is unknown or fails to build)."""
        cfg, source = self.model_yaml(run)
        if cfg is None:
            return None
        sig = arch_signature(cfg)
        if sig not in self._costs:
            from ultralytics.nn.tasks import DetectionModel

            try:
                model = DetectionModel(copy.deepcopy(cfg), verbose=False)
            except UserError as e:
                run.notes.append(f"model not rebuilt: {e}")
                return None
            _, params, _, gflops = model.info(verbose=False, imgsz=FLOPS_IMGSZ)
            self._costs[sig] = ModelCost(int(params), float(gflops), source)
        return self._costs[sig]

    # --- the data -------------------------------------------------------------------------------
    def dataset(self, run: Run) -> dict | None:
        """The run's checked data dict (check_det_dataset of args 'data'), or None when it is not found."""
        from ultralytics.data import check_det_dataset

        data = run.args.get("data")
        if not data:
            return None
        try:
            return check_det_dataset(data)
        except UserError:
            return None

    def train_images(self, run: Run) -> int | None:
        """Images one training epoch saw: kept images of the train split (label cache when current) x fraction."""
        fraction = run.args.get("fraction") or 1.0
        key = (str(run.args.get("data")), float(fraction))
        if key not in self._images:
            self._images[key] = self._count(run, fraction)
        if self._images[key] is None and run.epochs_done:
            run.notes.append(f"images/s unknown: the train images of data '{run.args.get('data')}' were not found")
        return self._images[key]

    def _count(self, run: Run, fraction: float) -> int | None:
        from ultralytics.data.cache import files_hash, load_cache
        from ultralytics.data.utils import get_img_files, img2label_paths

        data = self.dataset(run)
        if data is None or not data.get("train"):
            return None
        try:
            im_files = get_img_files(data["train"])
        except UserError:
            return None
        label_files = img2label_paths(im_files)
        n = len(im_files)
        train = data["train"]
        cache = (Path(train).with_suffix(".cache") if isinstance(train, str) and train.lower().endswith(".txt")
                 else Path(label_files[0]).parent.with_suffix(".cache"))
        nc = 1 if run.args.get("single_cls") else data["nc"]  # the trainer builds single_cls datasets with nc=1
        hit = load_cache(cache, files_hash(im_files + label_files, extra=f"nc={nc}"))
        if hit is not None:
            n = len(hit[0])  # images whose labels passed the checks: what training used
        return max(1, round(n * fraction)) if n else 0
