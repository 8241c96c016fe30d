"""The project's error model, and the errors and warnings of model configs.

Every message names the file, the row and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class UserError(ValueError):
    """Something the user can fix: a bad file, value, flag, run folder or unreachable storage.

    The CLIs print it as one ``error: ...`` line (exit code 2); any other exception is a bug and
    keeps its traceback. Every package's own error for bad input derives from it. It is a
    ValueError so that library callers catching ValueError keep working.
    """


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
