"""What users write and how they hear of their mistakes: YAML files, name hints, CLI errors.

Every package reads user YAML and names choices, so this lives below them all: space, runner and
search import it. One reader names file and line the same way for model, data and search-space
YAMLs; one hint says "did you mean"; one error path ends every CLI.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from litenas.errors import UserError

USER_ERROR_EXIT = 2
# Set to 1 to see the traceback of a user error too (as --debug does).
DEBUG_ENV = "LITENAS_DEBUG"


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


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e6`` and ``3e-4`` as floats, as YAML 1.2 does.

    PyYAML follows YAML 1.1, where an exponent float needs a dot (``1.0e6``); users write
    ``INIT_LR: 3e-4`` and would get a string and a type error. A key written twice is refused
    (PyYAML keeps the last one silently, so an edit of the first would do nothing).
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                problem = f"key {key!r} is written twice (the first one would be ignored)"
                raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str) -> Any:
    """YAML text -> Python data, safely (no tags that run code); exponent floats are floats."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def read_yaml(
    path: str | os.PathLike[str], error: type[ValueError], what: str, shape: str = "a mapping"
) -> dict[str, Any]:
    """Parse a YAML mapping with ``parse_yaml`` (never eval); raise `error` naming the file
    (and the line of a syntax error) when it cannot be read, is not text, or is not a mapping."""
    path = Path(path)
    try:
        raw = parse_yaml(path.read_text())
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


def positive_int(text: str) -> int:
    """argparse type of counts that must be >= 1 (--trials, --epochs, --workers, ...)."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type of counts where 0 means off (--heartbeat) or first (--trial)."""
    return _int_at_least(text, 0)


def positive_float(text: str) -> float:
    """argparse type of durations that must be > 0 (--timeout, --trial-seconds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
    return value


def add_debug_option(parser: argparse.ArgumentParser) -> None:
    """--debug, the same on every command: the traceback of a user error too."""
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the traceback of an input error too (or set {DEBUG_ENV}=1)",
    )


def debugging(flag: bool = False) -> bool:
    """Whether a user error keeps its traceback: --debug, or LITENAS_DEBUG set to a non-0 value."""
    return flag or os.environ.get(DEBUG_ENV, "0") not in ("", "0")


def is_user_error(error: BaseException) -> bool:
    """A UserError, or an OSError on a named path (a file or folder the user gave or that the
    run writes: missing, unreadable, disk full); anything else is a bug to show in full."""
    return isinstance(error, UserError) or (
        isinstance(error, OSError) and getattr(error, "filename", None) is not None
    )


def exit_on_user_error(run: Callable[[], int], debug: bool = False) -> int:
    """`run()`'s exit code; a user error becomes one "error: ..." line on stderr and exit code 2
    (with its traceback too under --debug). Any other exception propagates with its traceback."""
    try:
        return run()
    except (UserError, OSError) as e:
        if not is_user_error(e) or debugging(debug):
            raise
        print(f"error: {e}", file=sys.stderr)
        return USER_ERROR_EXIT
