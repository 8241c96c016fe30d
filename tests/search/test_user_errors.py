"""Bad search input ends in one `error:` line (exit 2) before any trial; a trial's own failure is
one trial line and does not count; an internal bug keeps its traceback."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState

import runner.training.run as run_module
import search.objectives._architecture as arch_module
import search.objectives._trial as trial_module
from runner.training.loop import TrainingDiverged
from search import architecture, hyper
from search.objectives import ArchitectureObjective, TrialBudget
from search.study import open_study
from search.study._storage import make_storage
from space.search_bounds import ArchitectureBounds
from tests.search.test_cli import BRIEF

REPO = Path(__file__).resolve().parents[2]


def _space(tmp_path: Path, small_space: Path, **changes: Any) -> Path:
    space = yaml.safe_load(small_space.read_text())
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".")
            space[outer][inner] = value
        else:
            space[key] = value
    path = tmp_path / "bad_space.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kernel_choices": [99]}, "kernel_choices 99 is larger than every image a trial sees"),
        ({"stem.kernel_choices": [99]}, "stem.kernel_choices 99 is larger than every image"),
        ({"repeats": [1000, 1000]}, "repeats must stay within [1, 100]"),
        ({"min_feature": 100, "max_feature": 100}, "min_feature 100 is larger than the 32 px"),
        ({"img_size_choices": [3], "kernel_choices": [3, 5]}, "kernel_choices 5 is larger"),
        ({"img_size_choices": [100000]}, "img_size_choices 100000: IMG_SIZE 100000: one training"),
    ],
)
def test_a_space_value_no_trial_can_use_is_refused_before_any_trial(
    search_data_yaml: Path,
    small_space: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    changes: dict[str, Any],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    space = _space(tmp_path, small_space, **changes)
    code = architecture.main(["--data", str(search_data_yaml), "--space", str(space), *BRIEF])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {space}") and message in err, err
    assert err.count("\n") == 1 and not (tmp_path / "studies").exists()


def _every_trial(fake_fit: Callable, error: BaseException) -> None:
    fake_fit(lambda call: error)


@pytest.fixture
def optuna_records() -> Iterator[list[logging.LogRecord]]:
    """Optuna's log records as its handlers pass them on (after the study's filters)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger = logging.getLogger("optuna")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


@pytest.fixture
def search_args(
    search_data_yaml: Path, small_space: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """A brief search.architecture run on the tiny data, its studies/ in this test's folder."""
    monkeypatch.chdir(tmp_path)
    return ["--data", str(search_data_yaml), "--space", str(small_space), *BRIEF]


def test_failed_trials_do_not_count_and_a_run_of_them_ends_non_zero(
    search_args: list[str],
    capsys: pytest.CaptureFixture[str],
    fake_fit: Callable,
    optuna_records: list[logging.LogRecord],
) -> None:
    _every_trial(fake_fit, TrainingDiverged("loss became nan at epoch 1"))
    code = architecture.main(
        [*search_args, "--trials", "2", "--max-failures", "3", "--study-name", "f"]
    )
    out, err = capsys.readouterr()
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "stopped after 3 failed trials in a row" in errors[0]
    assert out.count("FAILED: TrainingDiverged: loss became nan") == 3
    assert not optuna_records, "the trial lines report each failure, without Optuna's log"
    study = optuna.load_study(study_name="f", storage="sqlite:///studies/f.db")
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 3, "3 > --trials 2"


def test_search_hyper_whose_every_trial_fails_ends_non_zero_with_one_line(
    search_data_yaml: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fake_fit: Callable,
) -> None:
    monkeypatch.chdir(tmp_path)
    _every_trial(fake_fit, TrainingDiverged("loss became inf"))
    code = hyper.main(
        [
            "--data",
            str(search_data_yaml),
            "--model",
            str(REPO / "configs/model/example.yaml"),
            "--trials",
            "2",
            "--max-failures",
            "2",
            "--no-early-stop",
            "--sampler",
            "random",
        ]
    )
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert code != 0 and len(errors) == 1 and "2 failed trials in a row" in errors[0]


@pytest.mark.parametrize("bug", [KeyError("planted"), ValueError("a library's own check")])
def test_an_internal_bug_in_a_trial_stops_the_search_with_its_traceback(
    search_args: list[str], fake_fit: Callable, bug: Exception
) -> None:
    _every_trial(fake_fit, bug)
    with pytest.raises(type(bug), match="planted|own check"):
        architecture.main([*search_args, "--trials", "3"])


def test_ctrl_c_is_one_line_and_the_trial_is_marked_interrupted(
    search_args: list[str],
    capsys: pytest.CaptureFixture[str],
    fake_fit: Callable,
    optuna_records: list[logging.LogRecord],
) -> None:
    fake_fit(lambda call: KeyboardInterrupt() if call == 2 else None)
    assert architecture.main([*search_args, "--trials", "3", "--study-name", "c"]) == 130
    out, err = capsys.readouterr()
    assert "interrupted; finished trials are kept" in out and "Traceback" not in out + err
    assert not optuna_records
    study = optuna.load_study(study_name="c", storage="sqlite:///studies/c.db")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert study.trials[1].user_attrs["interrupted"] is True


def test_huge_channels_are_counted_from_the_rows_and_never_built(
    arch_bounds: ArchitectureBounds,
    fake_cfg: Any,
    fake_data: Any,
    fake_fit: Callable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_fit()
    bounds = dataclasses.replace(
        arch_bounds,
        stage_channels=((80000, 80000),) * 5,
        num_stages=(1, 1),
        repeats=(2, 2),
        widths=(1.0,),
    )

    real_build = trial_module.build_model

    def only_on_meta(*args: Any, **kwargs: Any) -> Any:
        assert torch.get_default_device().type == "meta", "a model over budget is never built"
        return real_build(*args, **kwargs)

    monkeypatch.setattr(trial_module, "build_model", only_on_meta)
    monkeypatch.setattr(arch_module, "build_model", only_on_meta)
    objective = ArchitectureObjective(
        bounds, fake_cfg, fake_data, TrialBudget(1), macs_max=6_000_000
    )
    study = open_study("h", optuna.storages.InMemoryStorage(), optuna.samplers.RandomSampler(1))
    # A block type with channels (not "skip"), so the 80,000 channels are sampled.
    study.enqueue_trial({"num_stages": 1, "s1.block": "Conv"})
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE and "MACs" in trial.user_attrs["infeasible"]
    assert trial.user_attrs["params"] > 80000 * 80000
    assert "[80000, " in trial.user_attrs["model_yaml"]


def test_a_model_too_large_to_train_fails_its_trial_with_the_figures(
    arch_bounds: ArchitectureBounds,
    fake_cfg: Any,
    fake_data: Any,
    fake_fit: Callable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_fit()
    monkeypatch.setattr(run_module, "memory_bytes", lambda: 1000)
    objective = ArchitectureObjective(arch_bounds, fake_cfg, fake_data, TrialBudget(1))
    study = open_study("m", optuna.storages.InMemoryStorage(), optuna.samplers.RandomSampler(1))
    study.optimize(objective, n_trials=1, catch=trial_module.TRIAL_ERRORS)
    reason = study.trials[0].user_attrs["fail_reason"]
    assert study.trials[0].state == TrialState.FAIL
    assert "parameters; training it takes about" in reason and "0.0 GB of memory" in reason


def test_an_objectives_mismatch_names_the_storage_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    storage = make_storage(url, heartbeat=None)
    sampler = optuna.samplers.RandomSampler()
    open_study("s", storage, sampler, directions=["maximize"], metric_names=["score"])
    with pytest.raises(ValueError) as info:
        open_study("s", storage, sampler)
    message = str(info.value)
    assert f"study 's' in {url} optimises" in message and "object at" not in message
