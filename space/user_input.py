"""What users write and how they hear of their mistakes: YAML files, name hints, CLI errors.

Every package reads user YAML and names choices, so this lives in space, the lowest layer: runner
and search import it, and space imports neither. One reader names file and line the same way for
model, data and search-space YAMLs; one hint says "did you mean"; one error path ends every CLI.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

# What a user's input (a flag, a file, a folder) can raise: said as "error: ..." with exit code
# 2. A programming error (TypeError, AttributeError, ...) keeps its traceback.
USER_ERRORS: tuple[type[Exception], ...] = (ValueError, OSError, yaml.YAMLError)
USER_ERROR_EXIT = 2


def did_you_mean(
    value: object,
    choices: Iterable[object],
    *,
    cutoff: float = 0.6,
    template: str = "did you mean {!r}?",
) -> str:
    """`template` filled with the closest of `choices` to `value`, or "" when none is close."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=cutoff)
    return template.format(close[0]) if close else ""


def read_yaml(
    path: str | os.PathLike[str], error: type[ValueError], what: str, shape: str = "a mapping"
) -> dict[str, Any]:
    """Parse a YAML mapping with ``yaml.safe_load`` (never eval); raise `error` naming the file
    (and the line of a syntax error) when it cannot be read, is not text, or is not a mapping."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise error(f"{path}: cannot read the {what} ({e.strerror})") from e
    except UnicodeDecodeError as e:
        raise error(f"{path}: not a text file ({e.reason} at byte {e.start})") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(e, "problem", None) or str(e)
        raise error(f"{where}: invalid YAML: {problem}") from e
    if not isinstance(raw, dict):
        raise error(f"{path}: a {what} must be {shape}, got {type(raw).__name__}")
    return raw


def exit_on_user_error(run: Callable[[], int]) -> int:
    """`run()`'s exit code; a user error becomes "error: ..." on stderr and exit code 2."""
    try:
        return run()
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return USER_ERROR_EXIT
