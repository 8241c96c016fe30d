"""runner.compress on a model of every block family of the registry, laid out as the search lays
out a trial (stem Conv, the stage's rows, 1x1 Conv head, pooling, class layer): each prunes to
60% of its MACs, loads back from its run folder, evaluates, and exports to ONNX with the same F1;
and Tucker does the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from runner import evaluate, export
from runner import train as train_cli
from runner.data.augment import normalize
from runner.deploy.onnx_model import onnx_logits
from runner.training.rundir import RunDir, load_trained_model
from space import count_cost
from space.latency import onnx_session
from space.registry import MODULES
from tests.conftest import make_image_folder
from tests.runner.conftest import run_compress

# One stage per block family, with the strides and channel changes that make its pruning hard:
# a block that changes width and one that keeps it (residual), SE where the block has it.
STAGES = {
    "Conv": ["[1, Conv, [24, 3, 2]]", "[1, Conv, [32, 3, 1, null, 4]]"],  # and a grouped conv
    "DWConv": ["[1, DWConv, [24, 3, 2]]", "[2, DWConv, [24, 5, 1]]"],  # groups gcd(16, 24), dw
    "Bottleneck": ["[2, Bottleneck, [16, 1, 2]]"],  # a grouped 3x3 and a residual
    "InvertedResidualv2": ["[2, InvertedResidualv2, [24, 4, 2]]"],
    "InvertedResidualv3": ["[2, InvertedResidualv3, [5, 3, 24, 1, 1, 2]]"],
    "MBConv": ["[2, MBConv, [4, 24, 2, 3]]"],
    "ShuffleNetV2": ["[2, ShuffleNetV2, [2]]", "[1, ShuffleNetV2, [1]]"],
    "GhostBottleneck": [
        "[2, GhostBottleneck, [3, 3, 24, 1, 2]]",
        "[1, GhostBottleneck, [5, 2, 24, 0, 1]]",
    ],
    "Fire": ["[1, Fire, [8, 16, 16]]", "[1, Fire, [8, 24, 8]]"],
}
# Rows that hold no weights to compress, or are a Conv by another name.
NOT_BLOCKS = {"FixedConv", "Linear", "MaxPool", "AvgPool", "GlobalAvgPool", "Flatten", "Dropout"}
SHARE = 0.6


def model_yaml(block: str) -> str:
    rows = [
        "[1, Conv, [16, 3, 2, null, 1, Hardswish]]",
        *STAGES[block],
        "[1, Conv, [64, 1, 1, null, 1, ReLU]]",
        "[1, GlobalAvgPool, []]",
        "[1, Linear, [3]]",
    ]
    return "backbone:\n" + "".join(f"  - {row}\n" for row in rows)


def test_every_block_of_the_registry_is_compressed_here() -> None:
    assert set(MODULES) - NOT_BLOCKS == set(STAGES)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-epoch recipe at 32 px over a synthetic 3-class folder, shared by every block."""
    root = tmp_path_factory.mktemp("blocks")
    folder = make_image_folder(root / "data")
    path = root / "data.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "DATA_PATH": str(folder),
                "IMG_SIZE": 32,
                "BATCH_SIZE": 12,
                "EPOCHS": 1,
                "INIT_LR": 0.05,
            }
        )
    )
    return path


@pytest.fixture(scope="module", params=sorted(STAGES))
def source(request: pytest.FixtureRequest, data: Path) -> tuple[str, Path, int]:
    """Each block's model trained one epoch: its block, run folder and MACs."""
    root = data.parent / request.param
    root.mkdir()
    (root / "model.yaml").write_text(model_yaml(request.param))
    run = root / "run"
    assert (
        train_cli.main(
            [
                "--model",
                str(root / "model.yaml"),
                "--data",
                str(data),
                "--output",
                str(run),
                "--cache-dir",
                str(data.parent / "cache"),
            ]
        )
        == 0
    )
    model, _, cfg = load_trained_model(RunDir(run))
    return request.param, run, count_cost(model, cfg.img_size).macs


@pytest.mark.parametrize("method", ["prune", "tucker"])
def test_a_model_of_each_block_compresses_reloads_evaluates_and_exports(
    source: tuple[str, Path, int], method: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run, macs = source
    target = int(macs * SHARE)
    out = run.with_name(f"{method}")
    cache = ["--cache-dir", str(run.parent.parent / "cache")]
    code = run_compress(run, out, method, target, cache=run.parent.parent / "cache")
    assert code == 0, capsys.readouterr().err
    model, _, cfg = load_trained_model(RunDir(out))
    cost = count_cost(model, cfg.img_size)
    assert cost.macs <= target, "the record rebuilds the compressed structure"
    assert cost.macs >= SHARE * macs * 0.5, "no more compression than the target needs"
    weights = torch.load(out / "best.pt", weights_only=True)["model"]
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert evaluate.main(["--run", str(out), *cache]) == 0
    assert json.loads((out / "evaluation.json").read_text())["macs"] == cost.macs
    assert export.main(["--run", str(out), *cache]) == 0, "ONNX F1 matches PyTorch's"
    images = torch.randint(0, 256, (4, 3, cfg.img_size, cfg.img_size), dtype=torch.uint8)
    with torch.no_grad():
        expected = model.eval()(normalize(images))
    got = onnx_logits(onnx_session(out / "model.onnx"), images)
    assert torch.allclose(got, expected, atol=1e-4), "the exported file is the compressed model"
