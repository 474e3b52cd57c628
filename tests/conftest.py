"""Shared test helpers: where the real datasets live and how their absence is handled."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.servers"]  # real influxd / mosquitto fixtures

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT.parent / "shared"
DATASETS_DIR = SHARED_DIR / "datasets"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_dataset(name: str) -> Path:
    """Path of ../shared/datasets/NAME; skip outside CI when absent, fail under CI=true."""
    path = DATASETS_DIR / name
    if path.is_dir():
        return path
    message = f"dataset {name!r} not found at ../shared/datasets/{name} (it sits beside the repo)"
    if IN_CI:
        pytest.fail(message + "; CI=true requires it")
    pytest.skip(message)


def require_server(name: str, reason: str) -> None:
    """A server the suite needs could not be started: a failure under CI, a skip elsewhere."""
    message = f"{name} unavailable: {reason}"
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing server is a failure)")
    pytest.skip(message)
