"""Damaged checkpoints get one-line errors naming them; a training killed mid-save leaves whole
ones."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from runner import evaluate, predict
from runner import train as train_cli
from tests.conftest import REPO
from tests.runner.conftest import train_tiny_run

DAMAGE: dict[str, Callable[[Path], None]] = {
    "empty": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "not a checkpoint": lambda p: p.write_text("epoch,f1\n1,0.5\n"),
    "a dict without weights": lambda p: torch.save({"f1": 0.5}, p),
    "another model": lambda p: torch.save(
        {"model": {"rows.0.conv.weight": torch.zeros(4, 3, 3, 3)}, "classes": ["a", "b", "c"]}, p
    ),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 2-epoch run of the tiny model on the synthetic folder, and that folder."""
    root = tmp_path_factory.mktemp("ckpt")
    return train_tiny_run(root), root / "data"


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_best_checkpoint_is_named_and_sound_last_is_offered(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained[0], run)
    DAMAGE[damage](run / "best.pt")
    before = (run / "last.pt").read_bytes()
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert evaluate.main(["--run", str(run), *cache]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run / 'best.pt'} is damaged or belongs to another model (")
    assert f"{run / 'last.pt'} is sound (2 epochs, val F1 " in err
    assert "pass --checkpoint last" in err and "Traceback" not in err and err.count("\n") == 1
    out = tmp_path / "preds.csv"
    images = ["--images", str(trained[1] / "val" / "can"), "--output", str(out)]
    assert predict.main(["--run", str(run), *images]) == 2
    assert "best.pt is damaged" in capsys.readouterr().err and not out.exists()
    assert evaluate.main(["--run", str(run), "--checkpoint", "last", *cache]) == 0
    assert predict.main(["--run", str(run), "--checkpoint", "last", *images]) == 0
    assert (run / "last.pt").read_bytes() == before, "the sound checkpoint is left as it was"


def test_both_checkpoints_damaged_says_so(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained[0], run)
    DAMAGE["truncated"](run / "best.pt")
    DAMAGE["empty"](run / "last.pt")
    assert evaluate.main(["--run", str(run)]) == 2
    err = capsys.readouterr().err
    assert "best.pt is damaged" in err and f"{run / 'last.pt'} is damaged too" in err


KILL_MID_SAVE = """
import os, signal, sys
import runner.files
from runner import train

real_save, calls = runner.files.torch.save, []

def save_then_die(payload, handle):
    calls.append(1)
    if len(calls) == 3:  # epoch 1 wrote last.pt and best.pt; die inside epoch 2's last.pt
        handle.write(b"PK half a checkpoint")
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    real_save(payload, handle)

runner.files.torch.save = save_then_die
sys.exit(train.main(sys.argv[1:]))
"""


def test_training_killed_mid_save_leaves_whole_checkpoints_and_resumes(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    run, source = tmp_path / "run", trained[0]
    cache = source.parent / "cache"  # decoded already: every save is a checkpoint's
    args = [
        "--model",
        str(source / "model.yaml"),
        "--data",
        str(source / "data.yaml"),
        "--output",
        str(run),
        "--cache-dir",
        str(cache),
    ]
    killed = subprocess.run(
        [sys.executable, "-c", KILL_MID_SAVE, *args], cwd=REPO, capture_output=True, text=True
    )
    assert killed.returncode == -9, killed.stderr
    last = torch.load(run / "last.pt", weights_only=True)
    best = torch.load(run / "best.pt", weights_only=True)
    assert last["epochs_done"] == 1 and best["epoch"] == 1
    assert train_cli.main(args) == 0
    assert torch.load(run / "last.pt", weights_only=True)["epochs_done"] == 2


def test_damaged_last_checkpoint_stops_a_resume_with_what_to_do(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained[0], run)
    (run / "metrics.json").unlink()  # an unfinished run: the next train resumes it
    DAMAGE["truncated"](run / "last.pt")
    args = [
        "--model",
        str(run / "model.yaml"),
        "--data",
        str(run / "data.yaml"),
        "--output",
        str(run),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert train_cli.main(args) == 2
    err = capsys.readouterr().err
    assert f"{run / 'last.pt'} is damaged" in err and f"delete {run / 'last.pt'}" in err
    assert (run / "best.pt").is_file()
