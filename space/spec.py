"""A decoded backbone row as plain data: what decode() returns, instantiate() and the model read.

It sits apart from the builder so that the model (space.model) can name it without importing the
builder, which imports the model.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from space.errors import row_label


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One decoded backbone row: pure data (``dataclasses.asdict`` is JSON-able).

    ``args`` holds every YAML arg by name, defaults filled in and channels already rounded, so
    writing ``[repeat, module, args.values()]`` back at multiples 1.0 rebuilds the same row.
    """

    index: int
    repeat: int
    module: str
    args: dict[str, Any]
    in_chs: int
    out_chs: int
    row: list[Any]
    source: str = "<dict>"

    def positional(self) -> list[Any]:
        """The args in the module's YAML order."""
        return list(self.args.values())

    def label(self) -> str:
        """``file, backbone row N [row]``, the prefix of errors about this row."""
        return row_label(self.source, self.index, self.row)
