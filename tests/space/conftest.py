"""Helpers for the model-space tests: write a model config to a YAML file under tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[Any, str], Path]:
    """Return ``write(cfg_or_text, name) -> path``; text is written verbatim, dicts as YAML."""

    def write(content: Any, name: str = "model.yaml") -> Path:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
        return path

    return write
