"""The fidelity benchmark's choice of trials: the whole front, then a spread across MACs."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import optuna
import pytest

REPO = Path(__file__).resolve().parents[2]
NAME = "bench_fidelity"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    """bench/ holds scripts, not a package: load the script by path."""
    spec = importlib.util.spec_from_file_location(NAME, REPO / "bench" / "fidelity.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[NAME] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[NAME]


def _study() -> optuna.Study:
    """40 trained trials (F1 rising with MACs, so the front is the 3 cheapest kept below),
    a twin and a pruned trial that must never be picked."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"])
    for i in range(40):
        macs = 10_000 * 2**i if i < 3 else 1_000_000 + 1_000 * i
        f1 = 0.3 + 0.1 * i if i < 3 else 0.2 + 0.001 * i
        attrs = {"macs": macs, "params": i + 1, "model_yaml": "m", "data_config": {},
                 "f1_history": [f1]}  # fmt: skip
        study.add_trial(optuna.trial.create_trial(values=[f1, macs], user_attrs=attrs))
    twin = {**study.trials[5].user_attrs, "twin_of": 5}
    study.add_trial(optuna.trial.create_trial(values=study.trials[5].values, user_attrs=twin))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED))
    return study


def test_picks_the_front_then_one_per_macs_bin(bench: ModuleType) -> None:
    study = _study()
    entries = bench.pick_spread(study, 10, seed=0)
    numbers = [e.number for e in entries]
    assert numbers[:3] == [2, 1, 0], "the front first, ranked as search.finalize ranks it"
    assert [e.rank for e in entries] == list(range(1, 11))
    assert len(set(numbers)) == 10 and 40 not in numbers and 41 not in numbers
    picks = sorted(n - 3 for n in numbers[3:])  # the 37 others, 7 bins of about 5 each
    assert all(b * 37 // 7 <= p < (b + 1) * 37 // 7 + 1 for b, p in enumerate(picks)), picks
    assert bench.pick_spread(study, 10, seed=0) == entries, "seeded"
    with pytest.raises(SystemExit, match="needs more"):
        bench.pick_spread(study, 50, seed=0)
