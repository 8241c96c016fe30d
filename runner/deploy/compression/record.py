"""compression.yaml: how a compressed run's structure differs from its model.yaml, as plain data.

A pruned or decomposed model is no model YAML any more. The run folder keeps the original
model.yaml and this record (per-layer kept channels or Tucker ranks), so loading rebuilds the
original, applies the record and then loads the weights: no pickled modules, weights_only loads.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from litenas.user_input import read_yaml
from space.errors import UserError

METHODS = ("prune", "tucker")


class CompressionError(UserError):
    """A compression request or compression.yaml that cannot be used; says what would be."""


@dataclasses.dataclass(frozen=True)
class Compression:
    """One compression of a trained run.

    layers: for prune, module name -> output channels kept; for tucker, module name -> ranks
    per channel mode ({"in": r} or {"in": r, "out": r}). knob is what was searched to meet the
    target: the per-layer pruning ratio (replayed to rebuild a pruned model, whose layers then
    must have the recorded widths), or the common rank fraction.
    """

    method: str
    macs_target: int
    knob: float
    layers: dict[str, Any]
    source: str = ""
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)  # scores, costs: not structure

    def same_request(self, other: Compression) -> bool:
        """True when other asks for the very compression this one is (for resuming a run)."""
        return (self.method, self.macs_target, self.source) == (
            other.method,
            other.macs_target,
            other.source,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def write_record(record: Compression, path: Path) -> None:
    """compression.yaml: the request and notes first, then one line per layer in model order."""
    fields = record.to_dict()
    layers = {"layers": fields.pop("layers")}
    head = yaml.safe_dump(fields, sort_keys=False)
    path.write_text(head + yaml.safe_dump(layers, sort_keys=False, default_flow_style=None))


def read_record(path: Path) -> Compression:
    """The record at path; CompressionError naming the file when it is not one."""
    raw = read_yaml(path, error=CompressionError, what="compression record", shape="a mapping")
    missing = [
        f.name
        for f in dataclasses.fields(Compression)
        if f.name not in raw
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise CompressionError(
            f"{path}: no {', '.join(missing)}; a compression record has "
            "method, macs_target, knob and layers"
        )
    if raw["method"] not in METHODS:
        raise CompressionError(
            f"{path}: method must be one of {list(METHODS)}, got {raw['method']!r}"
        )
    if not isinstance(raw["layers"], dict):
        raise CompressionError(f"{path}: layers must map module names to shapes")
    known = {f.name for f in dataclasses.fields(Compression)}
    return Compression(**{k: v for k, v in raw.items() if k in known})
