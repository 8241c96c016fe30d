"""Running the architecture CLI as real worker processes on the synthetic folder."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.study import make_storage


def cli_args(data_yaml: Path, space: Path, storage: str, trials: int, epochs: int) -> list[str]:
    """A brief random-sampler architecture study with 1 s heartbeats (a dead worker's trial is
    retried 2 s after its last heartbeat)."""
    return [
        "--data", str(data_yaml), "--space", str(space), "--study-name", "s", "--storage", storage,
        "--trials", str(trials), "--epochs", str(epochs), "--no-early-stop",
        "--sampler", "random", "--heartbeat", "1",
    ]  # fmt: skip


def start(args: Sequence[str], cwd: Path) -> subprocess.Popen[str]:
    """`python -m search.architecture ARGS` in the background, output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "search.architecture", *args], cwd=cwd, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def trials(storage: str) -> list[FrozenTrial]:
    """The trials of study "s" in a storage URL or journal file, as stored now."""
    return optuna.load_study(study_name="s", storage=make_storage(storage, None)).get_trials()


def wait_for(
    storage: str, proc: subprocess.Popen[str], found: Callable[[FrozenTrial], bool],
    timeout: float = 120.0,
) -> FrozenTrial:  # fmt: skip
    """The first trial for which `found` holds, polling while the worker runs."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"worker exited early ({proc.returncode}): {proc.stdout.read()}")
        try:
            hits = [t for t in trials(storage) if found(t)]
        except KeyError:  # the study is not created yet
            hits = []
        if hits:
            return hits[0]
        time.sleep(0.05)
    raise AssertionError("timed out waiting for a trial")


def running_with_epochs(epochs: int) -> Callable[[FrozenTrial], bool]:
    """A RUNNING trial that has finished at least `epochs` epochs."""
    return lambda t: (
        t.state == TrialState.RUNNING and len(t.user_attrs.get("f1_history", [])) >= epochs
    )


def finish(proc: subprocess.Popen[str], timeout: float = 300.0) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out
