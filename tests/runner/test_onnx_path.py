"""One ONNX path: the latency objective times the very graph that runner.export ships."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch
import yaml

import space.latency
from runner.deploy.onnx_model import export_onnx
from space import build_model
from space.latency import onnx_latency_ms
from space.onnx import INPUT, onnx_session
from tests.runner.conftest import TINY_MODEL_YAML

MODEL = yaml.safe_load(
    TINY_MODEL_YAML.replace(
        "[1, Conv, [8, 3, 2]]", "[1, Conv, [8, 3, 2]]\n  - [1, MBConv, [2, 8, 1, 3]]"
    )
)


def test_latency_times_the_shipped_graph_and_both_give_the_same_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = build_model(MODEL, num_classes=3, seed=0).train()
    export_onnx(model, 24, tmp_path / "model.onnx", ["a", "b", "c"])
    timed: list[bytes] = []

    def recording_session(graph: bytes, threads: int | None = None) -> object:
        timed.append(graph)
        return onnx_session(graph, threads)

    monkeypatch.setattr(space.latency, "onnx_session", recording_session)
    assert onnx_latency_ms(model, 24, repeats=2, blocks=1) > 0
    assert model.training  # neither path leaves the caller's model in eval mode

    shipped = onnx.load(str(tmp_path / "model.onnx"))
    assert onnx.load_from_string(timed[0]).graph == shipped.graph
    assert {p.key for p in shipped.metadata_props} >= {"classes", "img_size", "preprocess"}
    for batch in (1, 5):  # the latency's batch 1 and a scoring batch, through one dynamic axis
        x = torch.randn(batch, 3, 24, 24).numpy()
        from_timed = onnx_session(timed[0]).run(None, {INPUT: x})[0]
        from_file = onnx_session(tmp_path / "model.onnx").run(None, {INPUT: x})[0]
        assert from_timed.shape == (batch, 3) and (from_timed == from_file).all()
        with torch.no_grad():
            expected = model.eval()(torch.from_numpy(x)).flatten(1)
        model.train()
        assert torch.allclose(torch.from_numpy(from_file), expected, atol=1e-5)
