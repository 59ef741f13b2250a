"""Shared fixtures: a tiny copy of the built-in dataset, made once per test session."""

from __future__ import annotations

import logging
import os

import pytest
import yaml

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def make_shapes_yaml(tmp_path_factory):
    """make(name, n_train, n_val, seed) -> path of a data YAML over a fresh copy of the shapes generator's images."""
    from ultralytics.data import ensure_builtin_dataset
    from ultralytics.data.builtin import CLASSES

    def make(name: str, n_train: int, n_val: int, seed: int) -> str:
        root = tmp_path_factory.mktemp(f"datasets_{name}")
        ds = ensure_builtin_dataset(root=root, name=name, n_train=n_train, n_val=n_val, seed=seed)
        f = root / f"{name}.yaml"
        f.write_text(yaml.safe_dump({"path": str(ds), "train": "images/train", "val": "images/val",
                                     "names": dict(enumerate(CLASSES))}))
        return str(f)

    return make


@pytest.fixture(scope="session")
def tiny_data(make_shapes_yaml):
    """A data YAML over 16 train + 8 val images of the shapes generator (6 classes)."""
    return make_shapes_yaml("tiny", 16, 8, seed=1)


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
