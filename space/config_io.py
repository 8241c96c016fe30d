"""Model YAML in and out: safe loading with located syntax errors, row-per-line dumping."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from space.errors import ModelConfigError

HEADER_KEYS = ("input_channel", "depth_multiple", "width_multiple")


def load_model_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a model YAML with ``yaml.safe_load`` (never eval); syntax errors name file and line."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ModelConfigError(f"{path}: cannot read the model config ({e.strerror})") from e
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(e, "problem", None) or str(e)
        raise ModelConfigError(f"{where}: YAML syntax error: {problem}") from e
    if not isinstance(cfg, dict):
        raise ModelConfigError(
            f"{path}: a model config must be a mapping with a 'backbone' list, got "
            f"{type(cfg).__name__}")
    return cfg


def _flow(value: Any) -> str:
    """A YAML flow rendering of one arg list (JSON is valid YAML and quotes strings safely)."""
    return json.dumps(value)


def dump_model_config(cfg: Mapping[str, Any], comments: Sequence[str] | None = None) -> str:
    """Model config -> YAML text with one ``[repeat, Module, [args]]`` row per line.

    Args:
        cfg: a config such as ``model.to_config()`` returns.
        comments: optional trailing comment per backbone row (e.g. ``"3: 24ch /8"``).
    """
    lines = [f"{key}: {_flow(cfg[key])}" for key in HEADER_KEYS if key in cfg]
    lines.append("backbone:")
    for index, (repeat, module, args) in enumerate(cfg["backbone"]):
        row = f"  - [{repeat}, {module}, {_flow(list(args))}]"
        if comments is not None:
            row += f"  # {comments[index]}"
        lines.append(row)
    return "\n".join(lines) + "\n"
