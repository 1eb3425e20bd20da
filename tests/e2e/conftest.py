"""Fixtures the end-to-end tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.mlflow_server import running_mlflow
from tests.fixtures.tiny_llama import write_tiny_llama


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama built here (random weights), the base model of the fine-tuning tests."""
    return write_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` run with the compose file's command (``tests/e2e/mlflow_server.py``)."""
    with running_mlflow(tmp_path_factory.mktemp("mlflow-server")) as url:
        yield url
