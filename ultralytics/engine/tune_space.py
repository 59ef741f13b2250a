"""The hyperparameter search space of `tune`: Ultralytics' tuner space by default, a dict or YAML to override it.

A space maps a setting of cfg/default.yaml to
  (low, high)        a range: floats sampled uniformly (log scale for lr0 and weight_decay), ints as ints
                     (when the setting is an int setting and both bounds are ints);
  (low, high, gain)  a range as Ultralytics writes it; the gain (0 < gain <= 1, the size of its mutations) has no
                     counterpart in Optuna's sampler and is ignored;
  [low, high], [low, high, gain]   the same ranges written as lists (what a YAML space gives: YAML has no tuples);
  {low: , high: }    a range as a mapping (gain: optional);
  [a, b, ...]        choices, for a list of non-numbers or of other than 2 or 3 numbers (optimizer: [SGD, AdamW]);
  {choices: [...]}   choices, of any values (numbers too: {choices: [16, 32]}).
Every bound and choice is checked against the setting's valid values (type, range, choices in cfg/default.yaml)
before a trial runs: a value outside them is a UserError naming the entry.
"""

from __future__ import annotations

from pathlib import Path

from ultralytics.utils import LOGGER, UserError

# Ultralytics' tuner space with its ranges (weight_decay's low is 1e-6 instead of 0: a log scale cannot reach 0)
DEFAULT_SPACE = {
    "lr0": (1e-5, 1e-1), "lrf": (0.0001, 0.1), "momentum": (0.7, 0.98), "weight_decay": (1e-6, 0.001),
    "warmup_epochs": (0.0, 5.0), "warmup_momentum": (0.0, 0.95), "box": (1.0, 20.0), "cls": (0.2, 4.0),
    "dfl": (0.4, 6.0), "hsv_h": (0.0, 0.1), "hsv_s": (0.0, 0.9), "hsv_v": (0.0, 0.9), "degrees": (0.0, 45.0),
    "translate": (0.0, 0.9), "scale": (0.0, 0.95), "shear": (0.0, 10.0), "perspective": (0.0, 0.001),
    "flipud": (0.0, 1.0), "fliplr": (0.0, 1.0), "bgr": (0.0, 1.0), "mosaic": (0.0, 1.0), "mixup": (0.0, 1.0),
    "copy_paste": (0.0, 1.0),
}
LOG_SCALE = ("lr0", "weight_decay")


def inert_settings() -> dict[str, str]:
    """{name: why} of the default space's entries that would change nothing in this tree (a trial spent on them
    is wasted): settings it does not have, and augmentations it does not implement."""
    from ultralytics.cfg import load_cfg_schema
    from ultralytics.data.dataset import UNIMPLEMENTED_HYP

    schema = load_cfg_schema()
    out = {k: "not a setting of this tree" for k in DEFAULT_SPACE if k not in schema}
    out.update({k: "not implemented by this tree's dataloader" for k in UNIMPLEMENTED_HYP})
    return out


def load_space(space: dict | str | Path | None) -> dict:
    """The checked space as {name: optuna distribution}, in the given order."""
    where = "the default space"
    if space is None:
        skipped = inert_settings()
        LOGGER.info(f"tune: default space (Ultralytics' tuner) without {', '.join(skipped)}: they would change "
                    "nothing here")
        space = {k: v for k, v in DEFAULT_SPACE.items() if k not in skipped}
    elif isinstance(space, (str, Path)):
        from ultralytics.cfg import cfg2dict

        where = f"space file '{space}'"
        space = cfg2dict(space)
    elif isinstance(space, dict):
        where = "the space dict"
    else:
        raise UserError(f"space must be a dict {{name: (low, high) or [choices]}} or a YAML path, got "
                        f"{type(space).__name__}")
    if not space:
        raise UserError(f"{where} is empty: give at least one setting to tune, e.g. {{'lr0': (1e-4, 1e-2)}}")
    return {str(k): _distribution(str(k), v, where) for k, v in space.items()}


def _distribution(name: str, spec, where: str):
    """One entry -> FloatDistribution / IntDistribution / CategoricalDistribution; UserError naming it."""
    import optuna.distributions as od

    from ultralytics.cfg import get_cfg, load_cfg_schema

    schema = load_cfg_schema()
    if name not in schema:
        try:
            get_cfg(overrides={name: None})  # the UserError naming the closest settings
        except UserError as e:
            raise UserError(f"{where}: {e}") from None
    inert = inert_settings()
    if name in inert:
        raise UserError(f"'{name}' in {where}: it is {inert[name]}, so tuning it would change nothing")
    spec = _canonical(name, spec, where)  # a tuple (low, high) or a list of choices
    for value in spec:
        try:
            get_cfg(overrides={name: value})
        except UserError as e:
            raise UserError(f"'{name}' in {where}: {e}") from None
    if isinstance(spec, list):
        return od.CategoricalDistribution(spec)
    low, high = spec
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec) or low > high:
        raise UserError(f"'{name}' in {where}: (low, high) must be two numbers with low <= high, got {spec!r}")
    if "float" not in schema[name].types and all(isinstance(v, int) for v in spec):
        return od.IntDistribution(low, high)
    log = name in LOG_SCALE
    if log and low <= 0:
        raise UserError(f"'{name}' in {where} is sampled on a log scale, so its low must be > 0 (e.g. 1e-6), "
                        f"got {low}")
    return od.FloatDistribution(float(low), float(high), log=log)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _canonical(name: str, spec, where: str):
    """Any accepted form -> (low, high) (a range; a gain checked and dropped) or [choices]; UserError otherwise."""
    form = "(low, high), (low, high, gain), [choices], {low: , high: } or {choices: [...]}"
    if isinstance(spec, dict):
        if set(spec) == {"choices"}:
            if not isinstance(spec["choices"], (list, tuple)):
                raise UserError(f"'{name}' in {where}: choices must be a list, got {spec['choices']!r}")
            spec = list(spec["choices"])
        elif set(spec) in ({"low", "high"}, {"low", "high", "gain"}):
            spec = (spec["low"], spec["high"], *([spec["gain"]] if "gain" in spec else []))
        else:
            raise UserError(f"'{name}' in {where} must be {form}; the mapping has keys {sorted(spec)}")
    elif isinstance(spec, list) and len(spec) in (2, 3) and all(_number(v) for v in spec):
        spec = tuple(spec)  # a range written in YAML: [low, high] or [low, high, gain]
    if isinstance(spec, list):
        if not spec:
            raise UserError(f"'{name}' in {where}: the list of choices is empty")
        return spec
    if not (isinstance(spec, tuple) and len(spec) in (2, 3)):
        raise UserError(f"'{name}' in {where} must be {form}; got {spec!r}")
    if not all(_number(v) for v in spec) or spec[0] > spec[1]:
        raise UserError(f"'{name}' in {where}: (low, high) must be two numbers with low <= high, got {spec!r}")
    if len(spec) == 3 and not 0 < spec[2] <= 1:
        raise UserError(f"'{name}' in {where}: {list(spec)} reads as (low, high, gain) and a gain is in (0, 1]; "
                        f"for three choices write {{choices: {list(spec)}}}")
    return spec[:2]
