"""The early-stopping benchmark's plumbing: both arms, the ratios, and the replay of the rule."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import optuna
import pytest
from optuna.trial import TrialState

from search.front import ParetoStopper
from tests.conftest import bench_script

M = 1_000_000


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    with bench_script("mo_pruning") as module:
        yield module


def _trial(history: list[float], macs: int) -> optuna.trial.FrozenTrial:
    attrs = {"f1_history": history, "macs": macs}
    return optuna.trial.create_trial(values=[history[-1], macs], user_attrs=attrs)


def test_replay_stops_the_hopeless_trial_and_keeps_the_front(bench: ModuleType) -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for f1, macs in [(0.5, 1 * M), (0.6, 2 * M), (0.7, 3 * M), (0.8, 4 * M)]:
        study.add_trial(_trial([f1 - 0.2, f1 - 0.1, f1], macs))
    study.add_trial(_trial([0.1, 0.2, 0.3], 9 * M))  # dominated at every epoch
    study.add_trial(_trial([0.2, 0.75, 0.9], 9 * M))  # slow starter, best at the end
    result = bench.replay(study.get_trials(), ParetoStopper(rungs=(1, 2), min_peers=3))
    assert result.stopped == {4: 1, 5: 1}
    assert (result.epochs_kept, result.epochs_all) == (14, 18)
    assert result.hv_kept < result.hv_all  # the slow starter's 0.9 was lost: replay shows it
    result = bench.replay(study.get_trials(), ParetoStopper(rungs=(2,), min_peers=3))
    assert result.stopped == {4: 2} and result.hv_kept == pytest.approx(result.hv_all)


def test_bench_runs_both_arms_and_prints_the_ratios(
    bench: ModuleType,
    fake_fit: Callable,
    search_data_yaml: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_fit()  # every trial's F1 rises 0.1 per epoch: the cheaper trials dominate at a rung
    monkeypatch.chdir(tmp_path)  # the decoded-data cache goes under the current folder
    args = ["--data", str(search_data_yaml), "--budget", "300", "--max-trials", "5"]
    args += ["--epochs", "3", "--rungs", "1", "--min-peers", "2", "--sampler", "random"]
    args += ["--out", str(tmp_path / "out")]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    rows = dict(re.findall(r"^ +(without|with) +(\d+ +\d+) +\d+", out, re.M))
    assert rows["without"].split() == ["5", "0"]  # 5 completed, none stopped
    done, stopped = map(int, rows["with"].split())
    assert done + stopped == 5 and stopped > 0, out
    assert re.search(r"trials per CPU-hour, with / without: \d+\.\d\d", out)
    assert re.search(r"hypervolume, with / without: \d\.\d{3}", out)
    assert "replay of rungs (1,), worst fraction 0.67, min peers 2" in out
    stopped = optuna.load_study(
        study_name=None, storage=f"sqlite:///{tmp_path / 'out' / 'with-seed0.db'}"
    ).get_trials(states=(TrialState.PRUNED,))
    assert stopped and all(t.user_attrs["pruned_at_epoch"] == 1 for t in stopped)
    assert bench.main(["--replay", str(tmp_path / "out" / "without-seed0.db")]) == 0
    assert "would stop" in capsys.readouterr().out


def test_replayed_seconds_drop_the_untrained_epochs(bench: ModuleType) -> None:
    trial = _trial([0.1, 0.2, 0.3, 0.4], M)
    trial.user_attrs = {**trial.user_attrs, "train_seconds": 20.0}  # 5 s per epoch
    trial.datetime_start = datetime.datetime(2026, 1, 1, 12, 0, 0)
    trial.datetime_complete = trial.datetime_start + datetime.timedelta(seconds=23)
    assert bench.trial_seconds(trial, 4) == pytest.approx(23.0)
    assert bench.trial_seconds(trial, 1) == pytest.approx(8.0)  # 3 s overhead + 1 epoch
