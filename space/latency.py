"""Batch-1 latency on this CPU, measured the way the robot runs a model: ONNX Runtime, one thread.

MACs are what a hook counts; latency is what the robot waits for. Measured in ONNX Runtime, on
the very graph `runner.export` ships (space.onnx.onnx_graph), rather than in PyTorch eager, whose
batch-1 time on small nets is mostly per-module Python dispatch: that would rank models by how
many modules they have. One thread, because the robot's small CPU has few cores and a search
must not measure one trial while another trains. The smallest of a few block medians after a
warm-up: another process on the machine only ever adds time, and it does so for whole
stretches, not single runs, so one block's median can be high throughout (bench/latency.py
measures the spread; its figures are in docs/results/latency.md).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from space.onnx import INPUT, onnx_graph, onnx_session

DEFAULT_WARMUP = 10
DEFAULT_REPEATS = 50
DEFAULT_BLOCKS = 5


def interleaved_ms(
    runs: dict[str, Callable[[], object]],
    *,
    rounds: int = 10,
    block: int = 10,
    warmup_rounds: int = 1,
) -> dict[str, float]:
    """Median wall time in ms of each callable, timed in turn: each round runs each callable
    `block` times in a row, so a machine whose speed drifts slows them alike (their ratios hold
    where times measured minutes apart do not) while each still runs with its own data in the
    caches, as a deployed model does (alternating single runs of a small ONNX model with a
    PyTorch one measured the ONNX one several times slower). `warmup_rounds` are not timed."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(warmup_rounds + rounds):
        for name, run in runs.items():
            for _ in range(block):
                start = time.perf_counter()
                run()
                if i >= warmup_rounds:
                    times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(values) for name, values in times.items()}


def onnx_latency_ms(
    model: nn.Module,
    img_size: int,
    *,
    repeats: int = DEFAULT_REPEATS,
    blocks: int = DEFAULT_BLOCKS,
) -> float:
    """Batch-1 latency in ms of `model` in ONNX Runtime on one CPU thread: the smallest median
    of `blocks` blocks of `repeats` runs, after a warm-up."""
    session = onnx_session(onnx_graph(model, img_size), threads=1)
    channels = getattr(model, "input_channel", 3)
    feed = {INPUT: torch.zeros(1, channels, img_size, img_size).numpy()}
    for _ in range(DEFAULT_WARMUP):
        session.run(None, feed)
    run = {"model": lambda: session.run(None, feed)}
    blocks_ms = [
        interleaved_ms(run, rounds=1, block=repeats, warmup_rounds=0)["model"]
        for _ in range(blocks)
    ]
    return min(blocks_ms)
