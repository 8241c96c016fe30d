"""The errors and warnings of model configs (UserError, the base, lives in litenas.errors).

Every message names the file, the row and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litenas.errors import UserError

__all__ = ["HeadRoundingWarning", "ModelConfigError", "UserError", "format_value", "row_label"]


class ModelConfigError(UserError):
    """A model YAML or dict that cannot be built; the message says where and what is right."""


class HeadRoundingWarning(UserWarning):
    """A class head written as a rounded module (Conv) whose class count channel rounding changes.

    The old competition code turned a final ``Conv [9, ...]`` into 16 outputs without a word. Such
    files must still build with the same parameters, so this is a warning, not an error.
    """


def format_value(value: Any) -> str:
    """Render one YAML value the way users write it (``null``, bare names, flow lists)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def row_label(source: str, index: int, row: Sequence[Any] | Any) -> str:
    """``x.yaml, backbone row 4 [1, Conv, [16, 3]]``: the prefix of every row error."""
    return f"{source}, backbone row {index} {format_value(row)}"
