"""Search fixtures: a data YAML over the synthetic folder, splits, a fast stand-in for fit, and
the architecture CLI run as real worker processes."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import yaml
from optuna.trial import FrozenTrial, TrialState

from runner.data.config import DataConfig
from runner.data.splits import Splits
from runner.data.splits_cache import SplitsCache
from runner.training.loop import FitOptions
from runner.training.state import EpochStats, FitResult
from search.study import make_storage
from space.search_bounds import ArchitectureBounds, load_architecture_bounds

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def search_data_yaml(tiny_data: Path, tmp_path: Path) -> Path:
    """A data YAML for brief trials on the synthetic folder."""
    path = tmp_path / "data.yaml"
    path.write_text(
        f"DATA_PATH: {tiny_data}\nIMG_SIZE: 32\nBATCH_SIZE: 8\nEPOCHS: 2\nINIT_LR: 0.05\n"
        "AUG_TRAIN: simple_augment_train\nFP16: false\n"
    )
    return path


@pytest.fixture
def small_space(tmp_path: Path) -> Path:
    """The shipped architecture space cut to one or two narrow stages: quick to build and train."""
    space = yaml.safe_load((REPO / "configs" / "search" / "architecture.yaml").read_text())
    space.update(
        num_stages=[1, 2],
        repeats=[1, 1],
        head={"type_choices": ["FixedConv", "Linear"], "channels": [16, 32]},
    )
    space["stages"] = [{"channels": [8, 16]}, {"channels": [8, 16]}]
    space["img_size_choices"] = [32]
    path = tmp_path / "small_space.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


@pytest.fixture
def arch_bounds() -> ArchitectureBounds:
    """The shipped architecture space at one input size (the data config's): the tests using it
    are about the study, not the choice of size."""
    shipped = load_architecture_bounds(REPO / "configs" / "search" / "architecture.yaml")
    return dataclasses.replace(shipped, img_sizes=())


@pytest.fixture
def fake_splits() -> Splits:
    """Three classes of blank images: enough for building and costing, never trained on."""
    x, y = torch.zeros(6, 3, 32, 32, dtype=torch.uint8), torch.tensor([0, 1, 2, 0, 1, 2])
    return Splits(x, y, x, y, ["a", "b", "c"])


@pytest.fixture
def fake_data(fake_cfg: DataConfig, fake_splits: Splits) -> SplitsCache:
    """A splits cache already holding the fake splits at the fake config's IMG_SIZE."""
    return SplitsCache(fake_cfg, splits={fake_cfg.img_size: fake_splits})


@pytest.fixture
def fake_cfg(tmp_path: Path) -> DataConfig:
    return DataConfig(data_path=str(tmp_path), img_size=32, epochs=3, seed=5)


class FakeFit:
    """Replaces runner.training.loop.fit: F1 rises by 0.1 per epoch (times `pace(call)`); records
    its calls; may raise."""

    def __init__(
        self,
        fail_on: Callable[[int], BaseException | None] = lambda call: None,
        pace: Callable[[int], float] = lambda call: 1.0,
    ) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_on, self.pace = fail_on, pace

    def __call__(
        self,
        model: torch.nn.Module,
        splits: Splits,
        cfg: DataConfig,
        options: FitOptions,
        **kw: Any,
    ) -> FitResult:
        self.calls.append({**kw, "options": options, "splits_size": splits.train_x.shape[-1]})
        error = self.fail_on(len(self.calls))
        if error is not None:
            raise error
        history, step = [], 0.1 * self.pace(len(self.calls))
        for epoch in range(1, (options.epochs or cfg.epochs) + 1):
            history.append(EpochStats(epoch, 1.0 / epoch, step * epoch, step * epoch, 0.01))
            kw["on_epoch"](history[-1])
        f1 = history[-1].f1
        return FitResult(f1, {c: f1 for c in splits.classes}, f1, len(history), 0.5, history)


@pytest.fixture
def fake_fit(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeFit]:
    """Install a FakeFit where the search calls fit; returns a factory taking fail_on, pace."""

    def install(
        fail_on: Callable[[int], BaseException | None] = lambda call: None,
        pace: Callable[[int], float] = lambda call: 1.0,
    ) -> FakeFit:
        fake = FakeFit(fail_on, pace)
        monkeypatch.setattr("search.objectives._trial.fit", fake)
        return fake

    return install


class WorkerCLI:
    """`python -m search.architecture` of this checkout as a background worker process on study
    "s", and the storage read back while it runs."""

    @staticmethod
    def args(data_yaml: Path, space: Path, storage: str, trials: int, epochs: int) -> list[str]:
        """A brief random-sampler study with 1 s heartbeats (a dead worker's trial is retried
        2 s after its last heartbeat)."""
        return [
            "--data",
            str(data_yaml),
            "--space",
            str(space),
            "--study-name",
            "s",
            "--storage",
            storage,
            "--trials",
            str(trials),
            "--epochs",
            str(epochs),
            "--no-early-stop",
            "--sampler",
            "random",
            "--heartbeat",
            "1",
            "--bands",
            "none",
        ]

    @staticmethod
    def start(args: Sequence[str], cwd: Path) -> subprocess.Popen[str]:
        """The CLI in the background, output captured; PYTHONPATH makes the worker run the code
        under test even from `cwd` (the installed package may be another checkout)."""
        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        env = dict(os.environ, PYTHONPATH=path)
        return subprocess.Popen(
            [sys.executable, "-m", "search.architecture", *args],
            cwd=cwd,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )

    @staticmethod
    def trials(storage: str) -> list[FrozenTrial]:
        """The trials of study "s" in a storage URL or journal file, as stored now."""
        return optuna.load_study(study_name="s", storage=make_storage(storage, None)).get_trials()

    def wait_for(
        self,
        storage: str,
        proc: subprocess.Popen[str],
        found: Callable[[FrozenTrial], bool],
        timeout: float = 120.0,
    ) -> FrozenTrial:
        """The first trial for which `found` holds, polling while the worker runs."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if proc.poll() is not None:
                output = proc.stdout.read() if proc.stdout else ""
                raise AssertionError(f"worker exited early ({proc.returncode}): {output}")
            try:
                hits = [t for t in self.trials(storage) if found(t)]
            except KeyError:  # the study is not created yet
                hits = []
            if hits:
                return hits[0]
            time.sleep(0.05)
        raise AssertionError("timed out waiting for a trial")

    @staticmethod
    def running_with_epochs(epochs: int) -> Callable[[FrozenTrial], bool]:
        """A RUNNING trial that has finished at least `epochs` epochs."""
        return lambda t: (
            t.state == TrialState.RUNNING and len(t.user_attrs.get("f1_history", [])) >= epochs
        )

    @staticmethod
    def finish(proc: subprocess.Popen[str], timeout: float = 300.0) -> tuple[int, str]:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out

    @staticmethod
    def assert_both_drew_their_own(done: Sequence[FrozenTrial]) -> None:
        """Both workers ran trials, and each drew its own sequence of candidates: seeded apart,
        not alike (one draw may still coincide by chance in the small space)."""
        workers = sorted({t.user_attrs["worker"] for t in done})
        assert len(workers) == 2, workers
        draws = [[t.params for t in done if t.user_attrs["worker"] == w] for w in workers]
        length = min(map(len, draws))
        assert draws[0][:length] != draws[1][:length], draws


@pytest.fixture
def worker_cli() -> WorkerCLI:
    """Start, watch and finish architecture CLI worker processes."""
    return WorkerCLI()
