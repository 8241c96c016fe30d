"""Model YAML in and out: safe loading with located syntax errors, row-per-line dumping."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from litenas.user_input import read_yaml
from space.errors import ModelConfigError

HEADER_KEYS = ("input_channel", "depth_multiple", "width_multiple")


def load_model_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a model YAML (never eval); errors name the file, and the line of a syntax error."""
    return read_yaml(path, ModelConfigError, "model config", "a mapping with a 'backbone' list")


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
