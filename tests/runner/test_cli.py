"""The train, evaluate and predict CLIs end to end on the synthetic folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

import runner.training.rundir
from runner import evaluate, predict
from runner import train as train_cli
from runner.training.rundir import RunDir
from runner.training.state import TrainState
from tests.conftest import make_image_folder


@pytest.fixture
def data_yaml(tiny_data: Path, tmp_path: Path) -> Path:
    path = tmp_path / "tiny_data.yaml"
    cfg = {
        "DATA_PATH": str(tiny_data),
        "IMG_SIZE": 24,
        "BATCH_SIZE": 8,
        "EPOCHS": 3,
        "INIT_LR": 0.05,
        "AUG_TRAIN": "randaugment_train",
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def train(model_yaml: Path, data_yaml: Path, run: Path, *extra: str) -> int:
    args = ["--model", str(model_yaml), "--data", str(data_yaml), "--output", str(run)]
    return train_cli.main([*args, "--cache-dir", str(run.parent / "cache"), *extra])


def test_train_writes_a_complete_run_folder(
    tiny_model_yaml: Path, data_yaml: Path, tmp_path: Path
) -> None:
    run = tmp_path / "runs" / "tiny"
    assert train(tiny_model_yaml, data_yaml, run, "--epochs", "4") == 0
    for name in ("model.yaml", "data.yaml", "best.pt", "last.pt", "metrics.json", "curve.png"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 4 and len(metrics["history"]) == 4
    assert metrics["macs"] > 0 and metrics["f1"] > 0.6
    assert yaml.safe_load((run / "data.yaml").read_text())["EPOCHS"] == 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the model config"),
        (b"\xff\xfe\x00binary", "not a text file"),
        (b"backbone: [[1, Conv, [8, 3]]\n", "invalid YAML"),
    ],
)
def test_train_with_a_bad_model_yaml_names_the_file(
    data_yaml: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes | None,
    message: str,
) -> None:
    model = tmp_path / "model.yaml"
    if content is not None:
        model.write_bytes(content)
    assert train(model, data_yaml, tmp_path / "runs" / "bad") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {model}") and message in err
    assert "Traceback" not in err and not (tmp_path / "runs" / "bad").exists()


def test_interrupted_run_resumes(
    tiny_model_yaml: Path,
    data_yaml: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = tmp_path / "runs" / "tiny"
    real_save = runner.training.rundir.RunDir.save_state

    def save_then_interrupt(self: RunDir, state: TrainState, classes: list[str]) -> None:
        real_save(self, state, classes)
        if state.epochs_done == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(runner.training.rundir.RunDir, "save_state", save_then_interrupt)
    assert train(tiny_model_yaml, data_yaml, run) == 130
    assert "2 epoch(s) saved" in capsys.readouterr().err
    monkeypatch.setattr(runner.training.rundir.RunDir, "save_state", real_save)
    assert train(tiny_model_yaml, data_yaml, run) == 0
    assert "resuming" in capsys.readouterr().err
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_run_folder_of_another_config_is_refused(
    tiny_model_yaml: Path, data_yaml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "runs" / "tiny"
    assert train(tiny_model_yaml, data_yaml, run, "--epochs", "1") == 0
    assert train(tiny_model_yaml, data_yaml, run, "--epochs", "2") == 2
    assert "holds a run of another data config" in capsys.readouterr().err


def test_evaluate_and_predict_use_the_run_folder(
    tiny_model_yaml: Path, data_yaml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "runs" / "tiny"
    assert train(tiny_model_yaml, data_yaml, run, "--epochs", "4") == 0
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert evaluate.main(["--run", str(run), *cache]) == 0
    result = json.loads((run / "evaluation.json").read_text())
    assert result["images"] == 18 and result["f1"] == pytest.approx(
        json.loads((run / "metrics.json").read_text())["best_f1"]
    )
    assert "competition score" in capsys.readouterr().out
    other = make_image_folder(tmp_path / "other", splits=("val",), seed=5)
    assert evaluate.main(["--run", str(run), "--data-path", str(other), *cache]) == 0
    test_dir = make_image_folder(
        tmp_path / "t", classes=("NoLabel",), splits=("test",), per_class={"test": 4}
    )
    out = tmp_path / "preds.csv"
    images = test_dir / "test" / "NoLabel"
    assert predict.main(["--run", str(run), "--images", str(images), "--output", str(out)]) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["file", "class"] and len(rows) == 5
    assert {r[1] for r in rows[1:]} <= {"bottle", "can", "paper"}


def test_cli_errors_are_messages_not_tracebacks(
    tmp_path: Path, tiny_model_yaml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("DATA_PATH: nowhere\n")
    assert train(tiny_model_yaml, bad, tmp_path / "r") == 2
    assert "bad.yaml: DATA_PATH 'nowhere' is not a folder" in capsys.readouterr().err
    assert evaluate.main(["--run", str(tmp_path / "missing")]) == 2
    assert "is not a run folder" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "value"), [("--epochs", "0"), ("--threads", "-1")])
def test_train_refuses_counts_below_one(
    tiny_model_yaml: Path,
    data_yaml: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    value: str,
) -> None:
    with pytest.raises(SystemExit) as info:
        train(tiny_model_yaml, data_yaml, tmp_path / "r", flag, value)
    assert info.value.code == 2 and f"argument {flag}: must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
