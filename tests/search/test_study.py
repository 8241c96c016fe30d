"""The architecture objective and study loop: costs before training, failures, resume, stop."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState

from runner.data.config import DataConfig
from runner.data.splits import Splits
from runner.data.splits_cache import SplitsCache
from runner.training.loop import TrainingDiverged
from runner.training.state import EpochStats, FitResult
from search.front import FrontFilter, ParetoStopper, front_entries, pareto_front
from search.objectives import TRIAL_ERRORS, ArchitectureObjective, TrialBudget, trial_score
from search.objectives._trial import build_and_cost
from search.study import (
    RunOutcome,
    StorageError,
    default_storage,
    finished_count,
    open_study,
    run_study,
    trial_line,
)
from search.study._progress import blocks_summary
from space import ModelConfigError, build_model, count_cost
from space.search_bounds import load_architecture_bounds

REPO = Path(__file__).resolve().parents[2]
# One input size (the data config's): these tests are about the study, not the size choice.
BOUNDS = dataclasses.replace(
    load_architecture_bounds(REPO / "configs" / "search" / "architecture.yaml"), img_sizes=()
)


def one_size(cfg: DataConfig, splits: Splits) -> SplitsCache:
    """A splits cache already holding `splits` at the config's IMG_SIZE."""
    return SplitsCache(cfg, splits={cfg.img_size: splits})


def _study(storage: str | None = None, seed: int = 0) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.RandomSampler(seed=seed)
    return open_study("t", storage or optuna.storages.InMemoryStorage(), sampler)


def _objective(cfg: DataConfig, splits: Splits, **kw: object) -> ArchitectureObjective:
    return ArchitectureObjective(BOUNDS, cfg, one_size(cfg, splits), TrialBudget(epochs=3), **kw)


def test_trial_stores_the_contract_attributes(fake_fit: Callable, fake_cfg, fake_splits) -> None:
    fake = fake_fit()
    study = _study()
    run_study(study, _objective(fake_cfg, fake_splits), trials=2, timeout=None, catch=())
    trial = study.trials[0]
    attrs = trial.user_attrs
    assert trial.state == TrialState.COMPLETE
    assert study.metric_names == ["f1", "macs"]
    model = build_model(yaml.safe_load(attrs["model_yaml"]))
    assert count_cost(model, 32).macs == attrs["macs"] == trial.values[1]
    assert attrs["params"] == count_cost(model, 32).params
    assert attrs["f1_history"] == pytest.approx([0.1, 0.2, 0.3]) and trial.values[
        0
    ] == pytest.approx(0.3)
    assert attrs["per_class_f1"] == pytest.approx({"a": 0.3, "b": 0.3, "c": 0.3})
    assert (attrs["epochs_run"], attrs["train_seconds"], attrs["img_size"], attrs["seed"]) == (
        3,
        0.5,
        32,
        5,
    )
    assert attrs["data_config"]["IMG_SIZE"] == 32
    assert fake.calls[0]["options"].epochs == 3 and fake.calls[0]["options"].seed == 5


def test_over_macs_max_is_infeasible_and_not_trained(
    fake_fit: Callable, fake_cfg, fake_splits
) -> None:
    fake = fake_fit()
    study = _study()
    run_study(
        study, _objective(fake_cfg, fake_splits, macs_max=1), trials=4, timeout=None, catch=()
    )
    assert fake.calls == []
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        assert trial.values[0] == 0.0 and trial.constraints == {
            "macs_budget": trial.user_attrs["macs"] - 1
        }
        assert "> --macs-max 1" in trial.user_attrs["infeasible"]
    assert pareto_front(study) == []


def test_over_params_max_is_infeasible_and_not_trained_and_export_filters_on_params(
    fake_fit: Callable, fake_cfg, fake_splits
) -> None:
    fake = fake_fit()
    study = _study()
    run_study(
        study,
        _objective(fake_cfg, fake_splits, params_max=1, macs_max=10**12),
        trials=3,
        timeout=None,
        catch=(),
    )
    assert fake.calls == []
    for trial in study.trials:
        params = trial.user_attrs["params"]
        assert trial.constraints["params_budget"] == params - 1 and trial.values[0] == 0.0
        assert trial.user_attrs["infeasible"] == f"params {params:,} > --params-max 1"
    assert pareto_front(study) == []
    trained = _study()
    run_study(trained, _objective(fake_cfg, fake_splits), trials=3, timeout=None, catch=())
    params = sorted(t.user_attrs["params"] for t in trained.trials)
    kept = front_entries(trained, FrontFilter(params_max=params[0]))
    assert kept and all(e.params <= params[0] for e in kept)


def test_latency_max_measures_each_candidate_and_refuses_slow_ones(
    fake_fit: Callable, fake_cfg, fake_splits
) -> None:
    fake = fake_fit()
    study = _study()
    run_study(
        study,
        _objective(fake_cfg, fake_splits, latency_max=1e-6),
        trials=2,
        timeout=None,
        catch=(),
    )
    assert fake.calls == []
    for trial in study.trials:
        latency = trial.user_attrs["latency_ms"]
        assert latency > 0 and trial.constraints["latency_budget"] == pytest.approx(latency - 1e-6)
        assert trial.user_attrs["infeasible"].startswith(f"latency ms {latency:.3f} > ")
    roomy = _study()
    run_study(
        roomy, _objective(fake_cfg, fake_splits, latency_max=1e4), trials=2, timeout=None, catch=()
    )
    assert len(fake.calls) == 2 and all(t.constraints["latency_budget"] < 0 for t in roomy.trials)


def test_latency_objective_is_the_second_value_and_what_early_stopping_compares(
    fake_fit: Callable, fake_cfg, fake_splits, tmp_path: Path
) -> None:
    fake_fit()
    url = f"sqlite:///{tmp_path / 'lat.db'}"
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = open_study("lat", url, sampler, metric_names=("f1", "latency_ms"))
    run_study(
        study,
        _objective(fake_cfg, fake_splits, objective="latency"),
        trials=2,
        timeout=None,
        catch=(),
    )
    for trial in study.trials:
        assert trial.values[1] == trial.user_attrs["latency_ms"] > 0 and "macs" in trial.user_attrs
    stopper = ParetoStopper(rungs=(1,), min_peers=1, cost_attr="latency_ms")
    slow = max(t.user_attrs["latency_ms"] for t in study.trials) * 2
    decision = stopper.decide(study.trials, number=99, epoch=1, f1=0.0, macs=slow)
    assert decision.stop and f"at {slow:g} latency_ms" in decision.reason
    mismatch = r"optimises \['f1', 'latency_ms'\], not \['f1', 'macs'\]"
    with pytest.raises(StorageError, match=mismatch):
        open_study("lat", url, sampler)
    with pytest.raises(ValueError, match="objective must be one of"):
        _objective(fake_cfg, fake_splits, objective="watts")


def test_failing_trial_stores_its_reason_and_the_study_goes_on(
    fake_fit: Callable, fake_cfg, fake_splits
) -> None:
    fake_fit(
        lambda call: TrainingDiverged("loss is nan at epoch 1, step 3") if call == 2 else None
    )
    study = _study()
    run_study(study, _objective(fake_cfg, fake_splits), trials=3, timeout=None, catch=TRIAL_ERRORS)
    states = [t.state for t in study.trials]
    ok = TrialState.COMPLETE
    assert states == [ok, TrialState.FAIL, ok, ok], "the failed trial does not count toward 3"
    assert (
        study.trials[1].user_attrs["fail_reason"]
        == "TrainingDiverged: loss is nan at epoch 1, step 3"
    )


@pytest.mark.parametrize(
    "error",
    [TypeError("bad call"), AttributeError("no attr"), NameError("name 'x' is not defined")],
)
def test_programming_error_stops_the_study_with_its_traceback(
    error: Exception, fake_fit: Callable, fake_cfg, fake_splits
) -> None:
    fake_fit(lambda call: error if call == 2 else None)
    study = _study()
    with pytest.raises(type(error)) as raised:
        run_study(
            study, _objective(fake_cfg, fake_splits), trials=5, timeout=None, catch=TRIAL_ERRORS
        )
    assert raised.value is error and raised.value.__traceback__ is not None
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL]


def test_rerun_resumes_and_counts_finished_trials(
    fake_fit: Callable, fake_cfg, fake_splits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_fit()
    monkeypatch.chdir(tmp_path)
    storage = default_storage("t")
    assert storage == "sqlite:///studies/t.db" and (tmp_path / "studies").is_dir()
    objective = _objective(fake_cfg, fake_splits)
    run_study(_study(storage), objective, trials=2, timeout=None, catch=())
    run_study(_study(storage, seed=1), objective, trials=3, timeout=None, catch=())
    study = _study(storage)
    assert finished_count(study) == 3
    assert run_study(study, objective, trials=3, timeout=None, catch=()) == RunOutcome()
    assert len(study.trials) == 3


def test_ctrl_c_keeps_finished_trials(fake_fit: Callable, fake_cfg, fake_splits) -> None:
    fake_fit(lambda call: KeyboardInterrupt() if call == 2 else None)
    study = _study()
    outcome = run_study(study, _objective(fake_cfg, fake_splits), trials=5, timeout=None, catch=())
    assert outcome.interrupted
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert study.trials[1].user_attrs["interrupted"] is True
    assert finished_count(study) == 1  # the interrupted trial does not count toward --trials


class StopAtEpoch:
    """A stopping rule that ends every trial at one epoch and records what it was asked."""

    def __init__(self, epoch: int) -> None:
        self.epoch, self.asked = epoch, []

    def should_stop(self, study, trial, epoch: int, f1: float, macs: int) -> bool:
        self.asked.append((epoch, trial.user_attrs["f1_history"], macs))
        return epoch >= self.epoch


def test_stopper_prunes_after_the_history_is_stored(
    fake_fit: Callable, fake_cfg, fake_splits
) -> None:
    fake_fit()
    stopper = StopAtEpoch(2)
    study = _study()
    run_study(
        study, _objective(fake_cfg, fake_splits, stopper=stopper), trials=1, timeout=None, catch=()
    )
    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs["f1_history"] == pytest.approx([0.1, 0.2])
    assert (
        stopper.asked[0][:2] == (1, pytest.approx([0.1]))
        and stopper.asked[1][2] == trial.user_attrs["macs"]
    )


@pytest.mark.parametrize("stop_at", [None, 2])
def test_a_repeated_recipe_reuses_its_twin_instead_of_training(
    stop_at: int | None, fake_fit: Callable, fake_cfg, fake_splits
) -> None:
    fake = fake_fit()
    study = _study()
    stopper = StopAtEpoch(stop_at) if stop_at else None
    objective = _objective(fake_cfg, fake_splits, stopper=stopper)
    run_study(study, objective, trials=1, timeout=None, catch=())
    study.enqueue_trial(study.trials[0].params)  # the sampler suggests the same architecture
    run_study(study, objective, trials=2, timeout=None, catch=())
    first, twin = study.trials
    assert len(fake.calls) == 1  # trained once
    assert twin.state == first.state and twin.user_attrs["twin_of"] == 0
    assert twin.user_attrs["f1_history"] == first.user_attrs["f1_history"]
    assert "same recipe as trial 0: its result, not retrained" in trial_line(study, twin)
    if stop_at is None:
        assert twin.values == first.values
        assert [t.number for t in pareto_front(study)] == [0]  # the front lists it once


def test_sampled_sizes_are_costed_trained_and_recorded_at_their_size(
    fake_fit: Callable, fake_cfg: DataConfig
) -> None:
    fake = fake_fit()
    bounds = dataclasses.replace(BOUNDS, img_sizes=(32, 48), widths=(0.75, 1.25))
    data = SplitsCache(fake_cfg, splits={})
    for size in (32, 48):
        x = torch.zeros(6, 3, size, size, dtype=torch.uint8)
        data.splits[size] = Splits(
            x, torch.tensor([0, 1, 2] * 2), x, torch.tensor([0, 1, 2] * 2), ["a", "b", "c"]
        )
    objective = ArchitectureObjective(bounds, fake_cfg, data, TrialBudget(epochs=3))
    study = _study(seed=3)
    run_study(study, objective, trials=8, timeout=None, catch=())
    sizes, widths = set(), set()
    for trial in study.trials:
        size, attrs = trial.params["img_size"], trial.user_attrs
        sizes.add(size), widths.add(trial.params["width"])
        assert attrs["img_size"] == attrs["data_config"]["IMG_SIZE"] == size
        model = build_model(yaml.safe_load(attrs["model_yaml"]))
        assert count_cost(model, size).macs == attrs["macs"], "MACs at the trial's own size"
        assert trial_line(study, trial).startswith(f"trial {trial.number}: {size}px ")
    assert sizes == {32, 48} and widths == {0.75, 1.25}
    assert {call["splits_size"] for call in fake.calls} == {32, 48}


def test_trial_score_is_the_mean_of_the_last_epochs() -> None:
    history = [EpochStats(e, 1.0, f1, f1, 0.1) for e, f1 in enumerate((0.2, 0.5, 0.6, 0.7), 1)]
    result = FitResult(0.7, {}, 0.7, 4, 1.0, history)
    assert trial_score(result, TrialBudget(epochs=4)) == pytest.approx(0.7)
    assert trial_score(result, TrialBudget(epochs=4, score_epochs=3)) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="--score-epochs must be >= 1"):
        TrialBudget(score_epochs=0)


def test_trial_summary_reads_channels_and_strides_from_the_registry() -> None:
    text = (REPO / "configs" / "model" / "mixed_blocks.yaml").read_text()
    summary = "Conv:24/2 MaxPool/2 DWConv:64/2 IR2:96/2x2 AvgPool/2 Conv:256"
    assert blocks_summary(text) == summary


def test_cost_is_counted_first_so_a_collapsing_map_names_its_row(fake_cfg) -> None:
    trial = _study().ask()
    model_cfg = {
        "backbone": [
            [1, "Conv", [8, 3, 2]],
            [1, "Conv", [8, 3, 1, 0]],
            [1, "GlobalAvgPool", []],
            [1, "FixedConv", [3, 1, 1]],
        ]
    }
    cfg = dataclasses.replace(fake_cfg, img_size=4)
    with pytest.raises(ModelConfigError, match=r"backbone row 1 .* collapses it"):
        build_and_cost(trial, model_cfg, cfg, TrialBudget(epochs=1), num_classes=3)
    assert "model_yaml" not in trial.user_attrs
