"""Fixtures the end-to-end tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.tiny_llama import write_tiny_llama


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama built here (random weights), the base model of the fine-tuning tests."""
    return write_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
