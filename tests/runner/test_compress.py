"""runner.compress: pruned and Tucker-decomposed runs cost fewer MACs, train, and load back from
their run folder everywhere; bad input is a one-line error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from runner import compress, evaluate, predict
from runner import train as train_cli
from runner.deploy.compression import CompressionError
from runner.deploy.compression.target import bisect_knob
from runner.deploy.compression.tucker import LowRankLinear, TuckerConv2d, decomposed
from runner.training.rundir import RunDir, load_trained_model
from space import count_cost
from tests.runner.conftest import run_compress, train_tiny_run

# Stem, an inverted residual with SE (a residual add and a gate that pruning must keep coupled),
# a 1x1 conv, a hidden linear layer and the class head.
MODEL_YAML = """\
backbone:
  - [1, Conv, [16, 3, 2]]
  - [1, InvertedResidualv3, [3, 2, 16, 1, 1, 1]]
  - [1, Conv, [32, 1, 1]]
  - [1, GlobalAvgPool, []]
  - [1, Linear, [32]]
  - [1, Linear, [3]]
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """A 2-epoch run of the small model on the synthetic folder, its data folder and its MACs."""
    root = tmp_path_factory.mktemp("compress")
    run = train_tiny_run(root, MODEL_YAML)
    model, _, cfg = load_trained_model(RunDir(run))
    return run, root / "data", count_cost(model, cfg.img_size).macs


@pytest.fixture(scope="module", params=["prune", "tucker"])
def compressed(
    request: pytest.FixtureRequest,
    trained: tuple[Path, Path, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, str, int]:
    """Each method's run of the trained model at half its MACs, fine-tuned one epoch."""
    out = tmp_path_factory.mktemp(request.param) / "run"
    target = trained[2] // 2
    assert run_compress(trained[0], out, request.param, target) == 0
    return out, request.param, target


def test_compressed_run_has_fewer_macs_and_round_trips(
    compressed: tuple[Path, str, int], trained: tuple[Path, Path, int]
) -> None:
    out, method, target = compressed
    for name in (
        "model.yaml",
        "data.yaml",
        "compression.yaml",
        "best.pt",
        "last.pt",
        "metrics.json",
        "curve.png",
    ):
        assert (out / name).is_file(), name
    assert (out / "model.yaml").read_text() == MODEL_YAML, "the original model YAML is kept"
    record = yaml.safe_load((out / "compression.yaml").read_text())
    assert record["method"] == method and record["macs_target"] == target and record["layers"]
    model, classes, cfg = load_trained_model(RunDir(out))
    cost = count_cost(model, cfg.img_size)
    assert cost.macs <= target < trained[2]
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["macs"], metrics["params"]) == (cost.macs, cost.params)
    assert metrics["compression"]["source_macs"] == trained[2]
    weights = torch.load(out / "best.pt", weights_only=True)["model"]
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    source, _, _ = load_trained_model(RunDir(trained[0]))
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in source.parameters())
    if method == "tucker":
        assert any(isinstance(m, TuckerConv2d | LowRankLinear) for m in model.modules())


def test_fine_tuning_distils_from_the_source_unless_told_not_to(
    compressed: tuple[Path, str, int],
    trained: tuple[Path, Path, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out, method, target = compressed
    assert yaml.safe_load((out / "data.yaml").read_text())["TEACHER"] == str(trained[0])
    teachers = []

    def record_fit(
        net: nn.Module, splits: object, cfg: object, options: compress.FitOptions, **kw: object
    ) -> object:
        teachers.append(options.teacher)
        raise KeyboardInterrupt  # enough: what fit was given is what this test is about

    monkeypatch.setattr(compress, "fit", record_fit)
    run_compress(trained[0], tmp_path / "kd", method, target)
    run_compress(trained[0], tmp_path / "labels", method, target, "--teacher", "none")
    assert teachers[0] is not None and teachers[0].model is not None, "the source teaches"
    assert teachers[1] is None, "--teacher none: labels only"
    assert not yaml.safe_load((tmp_path / "labels" / "data.yaml").read_text())["TEACHER"]


def test_compressed_model_trains_a_step(compressed: tuple[Path, str, int]) -> None:
    model, classes, cfg = load_trained_model(RunDir(compressed[0]))
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(4, 3, cfg.img_size, cfg.img_size), torch.tensor([0, 1, 2, 0])
    loss = nn.functional.cross_entropy(model(x).flatten(1), y)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    changed = [not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)]
    assert all(changed), "every parameter of the compressed model gets a gradient"


def test_evaluate_and_predict_take_a_compressed_run(
    compressed: tuple[Path, str, int], trained: tuple[Path, Path, int], tmp_path: Path
) -> None:
    out = compressed[0]
    assert evaluate.main(["--run", str(out), "--cache-dir", str(tmp_path / "cache")]) == 0
    assert json.loads((out / "evaluation.json").read_text())["macs"] <= compressed[2]
    csv = tmp_path / "preds.csv"
    images = trained[1] / "val" / "can"
    assert predict.main(["--run", str(out), "--images", str(images), "--output", str(csv)]) == 0
    assert len(csv.read_text().splitlines()) == 1 + len(list(images.iterdir()))


def test_rerun_resumes_and_a_finished_run_is_kept(
    compressed: tuple[Path, str, int],
    trained: tuple[Path, Path, int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "run"
    shutil.copytree(compressed[0], out)
    source, method, target = trained[0], compressed[1], compressed[2]
    record = (out / "compression.yaml").read_text()
    best = (out / "best.pt").read_bytes()
    capsys.readouterr()
    assert run_compress(source, out, method, target) == 0
    assert "resuming" not in capsys.readouterr().err and (out / "best.pt").read_bytes() == best
    (out / "metrics.json").unlink()  # as if stopped after the last epoch, before the metrics
    assert run_compress(source, out, method, target) == 0
    assert f"resuming {out} after epoch 1" in capsys.readouterr().err
    assert (out / "metrics.json").is_file() and (out / "compression.yaml").read_text() == record


def test_tucker_at_full_rank_is_exact() -> None:
    """Full-rank factors reproduce the layer, so each factor sits in the right layer."""
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 12, 3, stride=2, padding=1, bias=True)
    one = nn.Conv2d(8, 12, 1, bias=False)
    fc = nn.Linear(10, 6)
    x = torch.randn(2, 8, 9, 9)
    cases = [
        (conv, {"in": 8, "out": 12}, x),
        (conv, {"out": 12}, x),
        (one, {"in": 8}, x),
        (fc, {"in": 6}, torch.randn(3, 10)),
    ]
    for layer, ranks, inp in cases:
        new = decomposed(layer, ranks)
        assert torch.allclose(new(inp), layer(inp), atol=1e-4), (layer, ranks)
    low = decomposed(conv, {"in": 2, "out": 3})
    assert not torch.allclose(low(x), conv(x), atol=1e-4), "a low rank approximates, no more"


def test_the_target_search_fits_where_the_strongest_setting_does_not() -> None:
    """Pruning leaves a group whole rather than empty it, so the strongest ratio can count more
    MACs than a milder one: the search still finds the mildest ratio that fits."""

    def macs_at(ratio: float) -> int:
        return 200 if ratio > 0.7 else round(100 - 100 * ratio)  # fits from 0.4 on

    knob = bisect_knob(
        macs_at, 60, shrinks_with_knob=True, low=0.0, high=0.9, what="prune", progress=False
    )
    assert macs_at(knob) <= 60 and 0.39 < knob < 0.41
    with pytest.raises(
        CompressionError,
        match="prune cannot reach 5 MACs: its strongest settings leave at least 40;",
    ):
        bisect_knob(
            macs_at, 5, shrinks_with_knob=True, low=0.0, high=0.9, what="prune", progress=False
        )


def bad(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_bad_input_is_a_one_line_error(
    trained: tuple[Path, Path, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, _, macs = trained
    out = tmp_path / "out"
    assert run_compress(source, out, "svd", macs // 2) == 2
    assert "unknown --method 'svd'" in bad(capsys)
    assert run_compress(source, out, "prun", macs // 2) == 2
    assert "did you mean 'prune'" in bad(capsys)
    assert run_compress(source, out, "prune", macs) == 2
    assert f"--macs-target {macs:,} is not below the {macs:,} MACs of {source}" in bad(capsys)
    for method in ("prune", "tucker"):
        assert run_compress(source, out, method, 10) == 2
        assert f"{method} cannot reach 10 MACs" in bad(capsys)
    empty = tmp_path / "untrained"
    shutil.copytree(source, empty)
    (empty / "best.pt").unlink()
    (empty / "last.pt").unlink()
    assert run_compress(empty, out, "prune", macs // 2) == 2
    assert "holds no checkpoint" in bad(capsys)
    assert run_compress(source, source, "prune", macs // 2) == 2
    assert f"{source} holds another run" in bad(capsys)
    assert run_compress(source, out, "prune", macs // 2, "--teacher", str(tmp_path / "no")) == 2
    assert f"--teacher {tmp_path / 'no'}: no such run folder" in bad(capsys)
    assert not out.exists(), "nothing is written for bad input"


def test_a_compressed_run_is_not_compressed_again_and_a_bad_record_is_named(
    compressed: tuple[Path, str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, method, target = compressed
    assert run_compress(out, tmp_path / "again", method, target // 2) == 2
    assert f"{out} is a compressed run already" in bad(capsys)
    run = tmp_path / "damaged"
    shutil.copytree(out, run)
    record = yaml.safe_load((run / "compression.yaml").read_text())
    record["layers"] = {"rows.9.nothing": record["layers"].popitem()[1]}
    (run / "compression.yaml").write_text(yaml.safe_dump(record))
    assert evaluate.main(["--run", str(run)]) == 2
    assert f"{run / 'compression.yaml'}: 'rows.9.nothing' is no" in bad(capsys)
    if method == "prune":  # a width the ratio does not give
        record = yaml.safe_load((out / "compression.yaml").read_text())
        name, kept = next(iter(record["layers"].items()))
        record["layers"][name] = kept + 1
        (run / "compression.yaml").write_text(yaml.safe_dump(record))
        assert evaluate.main(["--run", str(run)]) == 2
        assert f"{name} has {kept}, recorded {kept + 1}" in bad(capsys)


def test_train_refuses_to_overwrite_a_compressed_run(
    compressed: tuple[Path, str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = compressed[0]
    before = (run / "best.pt").read_bytes()
    args = [
        "--model",
        str(run / "model.yaml"),
        "--data",
        str(run / "data.yaml"),
        "--output",
        str(run),
    ]
    assert train_cli.main(args) == 2
    assert "holds a compressed run (compression.yaml)" in capsys.readouterr().err
    assert (run / "best.pt").read_bytes() == before
