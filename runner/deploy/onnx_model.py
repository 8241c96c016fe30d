"""A trained model as ONNX: export, prediction through ONNX Runtime, int8 quantization.

The robot runs the model with ONNX Runtime on a small CPU, so what we ship is model.onnx (and an
int8 copy) with the preprocessing written into its metadata: float32 N x 3 x S x S, RGB, padded to
a centred square, resized to S, normalised with the ImageNet mean and std. Batch is dynamic.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from runner.data.augment import IMAGENET_MEAN, IMAGENET_STD, normalize
from space.onnx import INPUT, OUTPUT, onnx_graph, onnx_session

ONNX_BATCH = 256  # images per session.run when scoring a split


def export_onnx(model: nn.Module, img_size: int, target: Path, classes: list[str]) -> None:
    """Write `model` as one ONNX file (space.onnx.onnx_graph: the graph the latency objective
    times, input S x S fixed, batch dynamic); the classes and the preprocessing go into its
    metadata so a user of the file needs nothing else."""
    import onnx

    proto = onnx.load_from_string(onnx_graph(model, img_size))
    meta = {
        "classes": json.dumps(classes),
        "img_size": str(img_size),
        "preprocess": f"RGB, centred square pad, resize to {img_size}, x/255, "
        f"(x - {list(IMAGENET_MEAN)}) / {list(IMAGENET_STD)}",
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(target))


def onnx_logits(session: object, images: torch.Tensor) -> torch.Tensor:
    """Logits of uint8 [N, 3, S, S] images through the session, normalised as in training."""
    out = [
        torch.from_numpy(session.run([OUTPUT], {INPUT: normalize(chunk).numpy()})[0])  # type: ignore[attr-defined]
        for chunk in images.split(ONNX_BATCH)
    ]
    return torch.cat(out) if out else torch.empty(0)


FALLBACK_GAIN = 2 / 3  # a layer goes back to float only if that cuts the logit error by a third
MAX_FALLBACK = 3  # layers the search may put back to float beyond the first and the last


def quantize_int8(
    source: Path,
    target: Path,
    calibration: torch.Tensor,
    check: torch.Tensor,
    max_fallback: int = MAX_FALLBACK,
) -> list[str]:
    """Static int8 quantization with ONNX Runtime (QDQ, per-channel int8 weights, uint8
    activations), its ranges calibrated once on `calibration` (uint8 images, a few hundred);
    returns the layers kept in float.

    The first and last layers stay in float (the stem sees raw pixels, the head writes the
    logits; both are a small share of the MACs), and so does any layer whose quantization
    costs most: a greedy search puts back to float, one at a time, the layer that cuts the
    logit error against the float model on `check` (other train images) by a third or more,
    at most `max_fallback` of them and a quarter of the layers. On an 11-layer front model
    (TrashNet) one layer made 90% of the error: with it in float the int8 copy agrees with the
    float one on 97% of val images, against 92%. Ranges are the 99.999th percentile of each
    activation rather than its min/max
    (rare outliers stretch a min/max range: mobilenet_v3_small val F1 0.549 -> 0.565).
    """
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = target.with_name(f".{target.stem}.pre.onnx")
    ranges = target.with_name(f".{target.stem}.ranges.json")
    try:
        quant_pre_process(str(source), str(prepared))
        layers = [
            n.name
            for n in onnx.load(str(prepared)).graph.node
            if n.op_type in ("Conv", "Gemm", "MatMul")
        ]
        reference = onnx_logits(onnx_session(prepared), check)

        def error(in_float: list[str]) -> float:
            _quantize(prepared, target, calibration, ranges, in_float)
            return float((onnx_logits(onnx_session(target), check) - reference).pow(2).mean())

        in_float = float_fallback(layers, error, max_fallback)
        _quantize(prepared, target, calibration, ranges, in_float)
        return in_float
    finally:
        prepared.unlink(missing_ok=True)
        ranges.unlink(missing_ok=True)


def float_fallback(
    layers: list[str], error: Callable[[list[str]], float], max_fallback: int
) -> list[str]:
    """The layers to keep in float: the first and the last, then greedily the one whose
    return to float cuts error() the most, while that cuts it by a third or more (at most
    `max_fallback`, and a quarter of the layers, so that the copy stays int8)."""
    in_float = list(dict.fromkeys(layers[:1] + layers[-1:]))
    current = error(in_float)
    for _ in range(min(max_fallback, len(layers) // 4)):
        candidates = {name: error([*in_float, name]) for name in layers if name not in in_float}
        if not candidates:
            break
        best = min(candidates, key=lambda name: candidates[name])
        if candidates[best] > FALLBACK_GAIN * current:
            break
        in_float.append(best)
        current = candidates[best]
    return in_float


def _quantize(
    prepared: Path, target: Path, calibration: torch.Tensor, ranges: Path, in_float: list[str]
) -> None:
    """One QDQ quantization of `prepared` into `target`; the ranges are calibrated on the first
    call and read from the `ranges` cache after it."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Images(CalibrationDataReader):
        """One image per call: the percentile histograms need batches of one shape."""

        def __init__(self) -> None:
            self.images = iter(calibration.split(1))

        def get_next(self) -> dict[str, np.ndarray] | None:
            image = next(self.images, None)
            return None if image is None else {INPUT: normalize(image).numpy()}

    with contextlib.redirect_stdout(io.StringIO()):  # the calibrator prints its stages
        quantize_static(
            str(prepared),
            str(target),
            None if ranges.is_file() else Images(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            calibrate_method=CalibrationMethod.Percentile,
            nodes_to_exclude=in_float,
            calibration_cache_path=str(ranges),
        )


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count set for a block and restored after (it is process-wide)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
