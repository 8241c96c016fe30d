"""The one ONNX export: the graph `runner.export` ships is the graph the latency objective times.

torch.export's exporter (the TorchScript one is deprecated), input S x S fixed and the batch
dynamic, so the same graph serves a batch-1 latency measurement on the robot's CPU and the
batched scoring of a split. `runner.deploy.onnx_model.export_onnx` adds only metadata (classes,
preprocessing) to these bytes before it writes the file.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from typing import Any

import torch
from torch import nn

from space.cost import eval_on_cpu

INPUT, OUTPUT = "images", "logits"
MAX_BATCH = 65536


def onnx_graph(model: nn.Module, img_size: int) -> bytes:
    """`model` (run in eval mode on the CPU; the caller's is left as it was) as a serialized
    ONNX model: input `images` N x C x S x S with N dynamic, output `logits`."""
    x = torch.zeros(2, getattr(model, "input_channel", 3), img_size, img_size)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),  # the exporter prints its stages
        torch.no_grad(),
        eval_on_cpu(model) as net,
    ):
        warnings.simplefilter("ignore")  # notices about the exporter's own internals
        program = torch.onnx.export(
            net,
            (x,),
            dynamo=True,
            external_data=False,
            verbose=False,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_shapes=({0: batch},),
        )
    return program.model_proto.SerializeToString()


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
