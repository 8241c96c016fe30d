"""The project's error model: what a user can fix, as opposed to a bug."""

from __future__ import annotations


class UserError(ValueError):
    """Something the user can fix: a bad file, value, flag, run folder or unreachable storage.

    The CLIs print it as one ``error: ...`` line (exit code 2); any other exception is a bug and
    keeps its traceback. Every package's own error for bad input derives from it. It is a
    ValueError so that library callers catching ValueError keep working.
    """
