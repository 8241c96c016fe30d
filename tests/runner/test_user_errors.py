"""Bad runner input ends in one `error:` line and exit code 2, checked before anything is written;
an internal bug keeps its traceback."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from filelock import FileLock
from PIL import Image

import runner.data.config
import runner.data.sources
import runner.training.run
from runner import compress, evaluate, predict
from runner import export as export_cli
from runner import train as train_cli
from runner.data.config import DataConfigError
from runner.data.images import decode_images
from runner.data.splits import load_splits
from runner.training.run import LOCK_NAME
from search import replay
from tests.conftest import make_image_folder
from tests.runner.conftest import TINY_MODEL_YAML, train_tiny_run


@pytest.fixture
def data_yaml(tiny_data: Path, tmp_path: Path) -> Path:
    path = tmp_path / "data.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "DATA_PATH": str(tiny_data),
                "IMG_SIZE": 24,
                "BATCH_SIZE": 8,
                "EPOCHS": 1,
                "INIT_LR": 0.05,
            }
        )
    )
    return path


def _model(tmp_path: Path, text: str = TINY_MODEL_YAML, name: str = "model.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _train(model: Path, data: Path, run: Path, *extra: str) -> int:
    args = ["--model", str(model), "--data", str(data), "--output", str(run)]
    return train_cli.main([*args, "--cache-dir", str(run.parent / "cache"), *extra])


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]  # beside progress bars
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("device", ["foo", "cuda", "cuda:7"])
def test_train_on_a_device_this_machine_lacks_is_one_line(
    data_yaml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], device: str
) -> None:
    if device != "foo" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that device")
    run = tmp_path / "runs" / "r"
    assert _train(_model(tmp_path), data_yaml, run, "--device", device) == 2
    line = _one_error(capsys)
    assert f"--device {device}" in line.replace("'", "") and "this machine has: cpu" in line
    assert not run.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["runner.evaluate", "--run", "r"],
        ["runner.predict", "--run", "r", "--images", "i", "--output", "o.csv"],
        ["runner.compress", "--run", "r", "--method", "prune", "--macs-target", "0.5"],
        ["search.replay", "--study-name", "s", "--trial", "0"],
    ],
)
def test_every_command_checks_the_device_first(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    main = {
        "runner.evaluate": evaluate.main,
        "runner.predict": predict.main,
        "runner.compress": compress.main,
        "search.replay": replay.main,
    }[argv[0]]
    assert main([*argv[1:], "--device", "foo"]) == 2
    assert "--device 'foo' is not a device name; this machine has: cpu" in _one_error(capsys)


def test_a_one_channel_model_is_refused_up_front_naming_the_users_file(
    data_yaml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _model(tmp_path, TINY_MODEL_YAML.replace("input_channel: 3", "input_channel: 1"))
    run = tmp_path / "runs" / "r"
    assert _train(model, data_yaml, run) == 2
    line = _one_error(capsys)
    assert line.startswith(f"error: {model}: input_channel is 1") and "RGB" in line
    assert not run.exists()


def test_an_image_size_beyond_memory_is_refused_with_the_figures(
    data_yaml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_yaml.write_text(data_yaml.read_text().replace("IMG_SIZE: 24", "IMG_SIZE: 100000"))
    assert _train(_model(tmp_path), data_yaml, tmp_path / "runs" / "r") == 2
    line = _one_error(capsys)
    assert f"error: {data_yaml}: IMG_SIZE 100000: one training batch" in line
    assert " GB, more than this machine's " in line and "use an IMG_SIZE of at most" in line


def test_a_model_too_large_to_train_is_refused_before_its_weights_exist(
    data_yaml: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner.training.run, "memory_bytes", lambda: 1000)
    model, run = _model(tmp_path), tmp_path / "runs" / "r"
    assert _train(model, data_yaml, run) == 2
    line = _one_error(capsys)
    assert (
        line.startswith(f"error: {model}: the model has ") and "than this machine's 0.0 GB" in line
    )
    assert not run.exists()


def test_a_failed_start_leaves_no_folder_and_a_rerun_names_the_key_that_differs(
    data_yaml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "runs" / "r"
    strided = _model(tmp_path, TINY_MODEL_YAML.replace("[8, 3, 2]", "[8, 3, 1000]"), "bad.yaml")
    assert _train(strided, data_yaml, run) == 2
    line = _one_error(capsys)
    assert line.startswith(f"error: {strided}, backbone row 0") and "stride 1000" in line
    assert not run.exists(), "the fixed command must not find a half-made run"
    good = _model(tmp_path)
    assert _train(good, data_yaml, run) == 0
    capsys.readouterr()
    assert _train(good, data_yaml, run, "--epochs", "2") == 2
    line = _one_error(capsys)
    assert "holds a run of another data config (EPOCHS: 1 in the run, 2 now)" in line
    other = _model(tmp_path, TINY_MODEL_YAML.replace("[8, 3, 2]", "[16, 3, 2]"), "other.yaml")
    assert _train(other, data_yaml, run) == 2
    assert f"another model ({run / 'model.yaml'} differs from {other})" in _one_error(capsys)


def test_a_second_process_on_one_output_is_refused(
    data_yaml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    with FileLock(run / LOCK_NAME):  # as a first runner.train holds it while training
        assert _train(_model(tmp_path), data_yaml, run) == 2
    assert f"{run} is in use by another process training into it" in _one_error(capsys)
    assert not (run / "data.yaml").exists()
    assert _train(_model(tmp_path), data_yaml, run) == 0, "free again once the first one ends"


def test_a_key_written_twice_in_a_data_yaml_is_refused(
    data_yaml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_yaml.write_text(data_yaml.read_text() + "EPOCHS: 30\n")
    assert _train(_model(tmp_path), data_yaml, tmp_path / "runs" / "r") == 2
    line = _one_error(capsys)
    assert line.startswith(f"error: {data_yaml}:") and "key 'EPOCHS' is written twice" in line


@pytest.mark.parametrize("bug", [KeyError("planted"), ValueError("a library's own check")])
def test_an_internal_bug_keeps_its_traceback(
    data_yaml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bug: Exception
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise bug

    monkeypatch.setattr(runner.training.run, "load_splits", broken)
    with pytest.raises(type(bug)):
        _train(_model(tmp_path), data_yaml, tmp_path / "runs" / "r")


def test_debug_shows_a_user_errors_traceback(data_yaml: Path, tmp_path: Path) -> None:
    data_yaml.write_text(data_yaml.read_text() + "EPOCHS: 30\n")
    with pytest.raises(DataConfigError, match="written twice"):
        _train(_model(tmp_path), data_yaml, tmp_path / "runs" / "r", "--debug")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("trained"), epochs=1)


def test_predict_where_no_image_decodes_is_an_error(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.jpg", "b.png"):
        (images / name).write_bytes(b"not an image")
    out = tmp_path / "preds.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = predict.main(["--run", str(trained), "--images", str(images), "--output", str(out)])
    assert code == 2 and not out.exists()
    assert f"error: {images}: none of its 2 images can be decoded" in _one_error(capsys)


def test_a_damaged_checkpoint_never_suggests_loading_untrusted_pickles(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    torch.save({"model": {}, "classes": ["a"], "extra": Path("x")}, run / "best.pt")
    assert evaluate.main(["--run", str(run), "--cache-dir", str(tmp_path / "c")]) == 2
    line = _one_error(capsys)
    assert "best.pt is damaged or belongs to another model (it holds objects other than" in line
    assert "weights_only" not in line


def test_export_of_a_run_whose_data_is_gone_names_its_data_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = train_tiny_run(tmp_path, epochs=1)
    data = yaml.safe_load((run / "data.yaml").read_text())
    (run / "data.yaml").write_text(yaml.safe_dump({**data, "DATASET": "TrashNet"}))
    shutil.rmtree(tmp_path / "data")

    def no_download(*args: object) -> None:
        raise AssertionError("a run's missing data is never downloaded")

    monkeypatch.setattr(runner.data.sources, "fetch_trashnet", no_download)
    assert export_cli.main(["--run", str(run), "--int8"]) == 2
    line = _one_error(capsys)
    assert line.startswith(f"error: {run / 'data.yaml'}: DATA_PATH ") and "is not a folder" in line


def test_an_image_over_pillows_bomb_limit_is_named_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "huge.jpg"
    Image.new("RGB", (40, 40), "red").save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1600 pixels > twice the limit
    with pytest.warns(
        UserWarning,
        match=r"huge\.jpg \(over Pillow's limit of 200 pixels against "
        r"decompression bombs",
    ):
        images, kept = decode_images([path], 16, progress=False)
    assert kept == [] and len(images) == 0


def test_val_lacking_a_class_of_train_is_warned_of(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "data")
    shutil.rmtree(root / "val" / "paper")
    cfg = runner.data.config.DataConfig(data_path=str(root), img_size=16, batch_size=4, epochs=1)
    with pytest.warns(UserWarning, match=r"val has no images of class\(es\) 'paper' of train/"):
        load_splits(cfg, cache_dir=tmp_path / "cache", progress=False)
