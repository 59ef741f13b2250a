"""`yolo tune key=value ...`: the tuning study of engine/tuner.py from the command line (a module of its own, so that
the tuner never imports the YOLO facade that calls it)."""

from __future__ import annotations

import sys
import time

from ultralytics.utils import LOGGER, colorstr


def main(argv: list[str]) -> object:
    """`yolo tune model=yolov10n-LSKA.yaml data=shapes.yaml epochs=10 iterations=30 [space=space.yaml] ...`:
    the tune arguments (iterations, space, storage, study, prune) and any train settings, as key=value.
    Returns the optuna Study."""
    from ultralytics import YOLO
    from ultralytics.cfg import parse_key_value_args
    from ultralytics.engine.tuner import import_optuna

    kw = parse_key_value_args(argv)
    import_optuna()  # the install message before a model is built
    model = YOLO(kw.pop("model", None) or "yolov10n.yaml")
    t0 = time.time()
    st = model.tune(**kw)
    if st is not None:
        LOGGER.info(f"{colorstr('tune:')} {len(st.trials)} trials in study '{st.study_name}'; this command took "
                    f"{time.time() - t0:.0f}s")
    return st


if __name__ == "__main__":
    main(sys.argv[1:])
