"""Shared fixtures: a tiny copy of the built-in dataset, made once per test session."""

from __future__ import annotations

import logging
import os

import pytest
import yaml

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A data YAML over 16 train + 8 val images of the shapes generator (6 classes)."""
    from ultralytics.data import ensure_builtin_dataset
    from ultralytics.data.builtin import CLASSES

    root = tmp_path_factory.mktemp("datasets")
    ds = ensure_builtin_dataset(root=root, name="tiny", n_train=16, n_val=8, seed=1)
    f = root / "tiny.yaml"
    f.write_text(yaml.safe_dump({"path": str(ds), "train": "images/train", "val": "images/val",
                                 "names": dict(enumerate(CLASSES))}))
    return str(f)


@pytest.fixture
def log_messages():
    """The messages logged by the package logger during the test, in order."""
    from ultralytics.utils import LOGGER

    msgs = []

    class Collect(logging.Handler):
        def emit(self, record):
            msgs.append(record.getMessage())

    handler = Collect()
    LOGGER.addHandler(handler)
    yield msgs
    LOGGER.removeHandler(handler)
