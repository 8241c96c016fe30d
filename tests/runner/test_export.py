"""runner.export: the ONNX file predicts as PyTorch does, the int8 copy nearly as well."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest
import torch

from runner import export
from runner.data.augment import normalize
from runner.data.splits import load_splits
from runner.deploy.onnx_model import float_fallback, onnx_logits
from runner.training.rundir import RunDir, load_trained_model
from space.onnx import onnx_session
from tests.runner.conftest import train_tiny_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-epoch run of a small net with an MBConv row and a Linear head."""
    return train_tiny_run(
        tmp_path_factory.mktemp("export"),
        "backbone:\n  - [1, Conv, [8, 3, 2]]\n  - [1, MBConv, [2, 16, 2, 3]]\n"
        "  - [1, GlobalAvgPool, []]\n  - [1, Linear, [3]]\n",
    )


def test_export_matches_pytorch_and_int8_predicts(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert export.main(["--run", str(run), "--int8", "--calibration", "12", *cache]) == 0
    out = capsys.readouterr().out
    assert "pytorch" in out and "onnx int8" in out and "latency" in out
    result = json.loads((run / "export.json").read_text())
    models = result["models"]
    assert models["onnx"]["max_abs_diff"] < 1e-4
    assert models["onnx"]["f1"] == pytest.approx(models["pytorch"]["f1"], abs=0.005)
    assert models["onnx int8"]["calibration_images"] == 12
    assert models["onnx int8"]["check_images"] == 12, "other train images than the calibration's"
    in_float = models["onnx int8"]["layers_in_float"]
    graph = onnx.load(str(run / "model_int8.onnx")).graph
    quantized = {
        n.output[0].removesuffix("_DequantizeLinear_Output")
        for n in graph.node
        if n.op_type == "DequantizeLinear" and "weight" in n.input[0]
    }
    assert in_float and quantized, "some layers stay in float, the others are int8"
    assert all(row["latency_ms"] > 0 for row in models.values())

    proto = onnx.load(str(run / "model.onnx"))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["classes"]) == ["bottle", "can", "paper"] and meta["img_size"] == "24"
    model, classes, cfg = load_trained_model(RunDir(run))
    splits = load_splits(cfg, cache_dir=tmp_path / "cache", progress=False)
    batch = splits.val_x[:5]  # a batch size the export never saw: the batch axis is dynamic
    with torch.no_grad():
        expected = model(normalize(batch))
    assert torch.allclose(
        onnx_logits(onnx_session(run / "model.onnx"), batch), expected, atol=1e-4
    )
    int8 = onnx_logits(onnx_session(run / "model_int8.onnx"), splits.val_x)
    with torch.no_grad():
        full = model(normalize(splits.val_x))
    assert int8.shape == full.shape == (len(splits.val_y), 3)
    # int8 follows the float model: the same top-1 class on nearly every image (a near-tie may
    # flip), and logits within a tenth of their scale (measured: 0.0024 of 0.54)
    assert (int8.argmax(1) == full.argmax(1)).double().mean() >= 0.9
    assert (int8 - full).abs().max() <= 0.1 * full.abs().max()
    assert (run / "model_int8.onnx").stat().st_size < (run / "model.onnx").stat().st_size * 2


def test_export_of_a_run_without_weights_is_one_line(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "best.pt").unlink()
    (run / "last.pt").unlink()
    assert export.main(["--run", str(run)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {run} holds no checkpoint (best.pt or last.pt): train it first\n"
    assert not (run / "model.onnx").exists()


def test_float_fallback_puts_back_the_layer_that_costs_most() -> None:
    """Greedy: the first and last layers are float; then the layer whose return to float cuts
    the error most, while it cuts it by a third; never more than a quarter of the layers."""
    layers = [f"conv{i}" for i in range(12)]
    cost = {"conv4": 8.0, "conv7": 3.0, "conv9": 0.4}  # what each layer's quantization adds

    def error(in_float: list[str]) -> float:
        return 1.0 + sum(v for name, v in cost.items() if name not in in_float)

    assert float_fallback(layers, error, 3) == ["conv0", "conv11", "conv4", "conv7"], (
        "conv9 would cut the error by a quarter only"
    )
    assert float_fallback(layers, error, 1) == ["conv0", "conv11", "conv4"]
    assert float_fallback(layers[:7], error, 3) == ["conv0", "conv6", "conv4"], "7 // 4 = 1"
    assert float_fallback(layers[:3], error, 3) == ["conv0", "conv2"], "a 3-layer net stays int8"
