"""Batch-1 latency on this CPU, measured the way the robot runs a model: ONNX Runtime, one thread.

MACs are what a hook counts; latency is what the robot waits for. Measured in ONNX Runtime (what
`runner.export` ships) rather than PyTorch eager, whose batch-1 time on small nets is mostly
per-module Python dispatch (18.8 ms against 0.9 ms in ONNX Runtime for mobilenet_v3_small at
64 px): that would rank models by how many modules they have. One thread, because the robot's
small CPU has few cores and a search must not measure one trial while another trains. The
smallest of a few block medians after a warm-up: another process on the machine only ever adds
time, and it does so for whole stretches, not single runs, so one block's median can be high
throughout (measured under load 3.7 on 2 cores, mobilenet_v3_small: spread of 10 measurements
91% for one median of 50 runs, 18% for one of 300, and the fastest block's median the least
biased, 0.47-0.58 ms).
"""

from __future__ import annotations

import io
import os
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from space.cost import eval_on_cpu

DEFAULT_WARMUP = 10
DEFAULT_REPEATS = 50
DEFAULT_BLOCKS = 5


def interleaved_ms(
    runs: dict[str, Callable[[], object]], *, rounds: int = 10, block: int = 10,
    warmup_rounds: int = 1,
) -> dict[str, float]:  # fmt: skip
    """Median wall time in ms of each callable, timed in turn: each round runs each callable
    `block` times in a row, so a machine whose speed drifts slows them alike (their ratios hold
    where times measured minutes apart do not) while each still runs with its own data in the
    caches, as a deployed model does (alternating single runs of a small ONNX model with a
    PyTorch one measured the ONNX one 3x slower). `warmup_rounds` are not timed."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(warmup_rounds + rounds):
        for name, run in runs.items():
            for _ in range(block):
                start = time.perf_counter()
                run()
                if i >= warmup_rounds:
                    times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(values) for name, values in times.items()}


def onnx_bytes(model: nn.Module, img_size: int) -> bytes:
    """The model as an in-memory ONNX graph for a (1, C, S, S) input.

    TorchScript's exporter: about 1 s for these nets against 10-40 s for torch.export's (measured
    on 2 cores), which a search trial cannot spend. It is deprecated for files users keep, so
    `runner.export` writes those with torch.export's; the operators of these conv nets are the
    same either way.
    """
    buffer = io.BytesIO()
    x = torch.zeros(1, getattr(model, "input_channel", 3), img_size, img_size)
    with warnings.catch_warnings(), torch.no_grad(), eval_on_cpu(model) as net:
        warnings.simplefilter("ignore")  # the exporter's deprecation notices, on every call
        torch.onnx.export(net, (x,), buffer, dynamo=False, input_names=["images"])
    return buffer.getvalue()


def onnx_session(model: bytes | str | os.PathLike[str], threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session of an ONNX file or in-memory graph; `threads` pins its intra-
    and inter-op threads (1 for latency). Only errors are logged: its warnings are about graph
    rewrites."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    source = model if isinstance(model, bytes) else os.fspath(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def onnx_latency_ms(
    model: nn.Module, img_size: int, *, repeats: int = DEFAULT_REPEATS,
    blocks: int = DEFAULT_BLOCKS,
) -> float:  # fmt: skip
    """Batch-1 latency in ms of `model` in ONNX Runtime on one CPU thread: the smallest median
    of `blocks` blocks of `repeats` runs, after a warm-up."""
    session = onnx_session(onnx_bytes(model, img_size), threads=1)
    channels = getattr(model, "input_channel", 3)
    feed = {"images": torch.zeros(1, channels, img_size, img_size).numpy()}
    for _ in range(DEFAULT_WARMUP):
        session.run(None, feed)
    run = {"model": lambda: session.run(None, feed)}
    blocks_ms = [interleaved_ms(run, rounds=1, block=repeats, warmup_rounds=0)["model"]
                 for _ in range(blocks)]  # fmt: skip
    return min(blocks_ms)
