"""Compressing a trained model to a MACs target, and rebuilding a compressed one from its record.

Two methods, both from well-kept libraries: structured channel pruning (torch-pruning, prune.py)
and Tucker decomposition of the convolutions (tensorly, tucker.py). Each returns a plain
nn.Module graph that space.count_cost counts like any model, and a Compression record that
restructure() applies to the original model again, so a run folder needs no pickled modules.
"""

from __future__ import annotations

from torch import nn

from runner.deploy.compression.prune import apply_kept_channels, prune_to_macs
from runner.deploy.compression.record import (
    METHODS,
    Compression,
    CompressionError,
    read_record,
    write_record,
)
from runner.deploy.compression.tucker import apply_ranks, tucker_to_macs

__all__ = [
    "METHODS",
    "Compression",
    "CompressionError",
    "compress",
    "read_record",
    "restructure",
    "write_record",
]


def compress(
    model: nn.Module, method: str, img_size: int, macs_target: int, progress: bool = True
) -> tuple[nn.Module, Compression]:
    """A compressed copy of the model with at most macs_target MACs, and its record."""
    search = {"prune": prune_to_macs, "tucker": tucker_to_macs}[method]
    net, knob, layers = search(model, img_size, macs_target, progress)
    return net, Compression(method, macs_target, round(knob, 6), layers)


def restructure(model: nn.Module, record: Compression, img_size: int, where: str) -> nn.Module:
    """The freshly built original model given the record's structure (weights to be loaded)."""
    if record.method == "prune":
        return apply_kept_channels(model, record.knob, record.layers, img_size, where)
    return apply_ranks(model, record.layers, where)
