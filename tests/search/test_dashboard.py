"""What a study stores for the dashboard: objective names, trial states and attrs, model YAML.

optuna-dashboard (started as the README says, `optuna-dashboard <storage URL>`) shows what the
storage holds: the metric names, each trial's values, state and user attrs as JSON. The study is
read back through a fresh `optuna.load_study`, as another process reads it; the dashboard's own
rendering is optuna-dashboard's to test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import optuna
import yaml
from optuna.study import StudyDirection
from optuna.trial import TrialState

from runner.data.config import DataConfig
from runner.data.splits_cache import SplitsCache
from search.objectives import ArchitectureObjective, TrialBudget
from search.study import open_study, run_study
from space import build_model, count_cost
from space.search_bounds import ArchitectureBounds


class StopSecondAtEpoch1:
    """Stops trial 1 at its first epoch, so the study also holds a pruned trial."""

    def should_stop(self, study, trial, epoch: int, f1: float, macs: int) -> bool:
        return trial.number == 1


def run_tiny_study(
    storage: str, bounds: ArchitectureBounds, cfg: DataConfig, data: SplitsCache
) -> None:
    """Three trials of a real architecture study (fit replaced by the fake): every attr checked
    was written by the objective, not by this test."""
    study = open_study("dash", storage, optuna.samplers.RandomSampler(seed=0))
    objective = ArchitectureObjective(
        bounds, cfg, data, TrialBudget(epochs=2), stopper=StopSecondAtEpoch1()
    )
    run_study(study, objective, trials=3, timeout=None, catch=())


def test_storage_holds_named_objectives_states_and_attrs(
    tmp_path: Path,
    fake_fit: Callable,
    arch_bounds: ArchitectureBounds,
    fake_cfg: DataConfig,
    fake_data: SplitsCache,
) -> None:
    fake_fit()
    storage = f"sqlite:///{tmp_path / 'dash.db'}"
    run_tiny_study(storage, arch_bounds, fake_cfg, fake_data)
    study = optuna.load_study(study_name="dash", storage=storage)
    assert study.directions == [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
    assert study.metric_names == ["f1", "macs"]
    trials = study.get_trials()
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.COMPLETE,
    ]
    for trial in trials:
        attrs = trial.user_attrs
        json.dumps(attrs)  # the dashboard serves every attr as JSON
        model = build_model(yaml.safe_load(attrs["model_yaml"]), num_classes=3)
        cost = count_cost(model, fake_cfg.img_size)
        assert (attrs["macs"], attrs["params"]) == (cost.macs, cost.params), "the shown YAML"
        assert "  # 0: " in attrs["model_yaml"], "rows carry their index comments"
        assert attrs["data_config"]["IMG_SIZE"] == fake_cfg.img_size
    done, pruned = trials[0], trials[1]
    assert set(done.user_attrs["per_class_f1"]) == {"a", "b", "c"}
    assert done.values == [done.user_attrs["f1_history"][-1], done.user_attrs["macs"]]
    assert len(done.user_attrs["f1_history"]) == 2 and len(pruned.user_attrs["f1_history"]) == 1
