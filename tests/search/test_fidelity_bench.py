"""The fidelity benchmark's choice of trials: the whole front, then a spread across MACs."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import optuna
import pytest
import torch

from tests.conftest import bench_script


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    with bench_script("fidelity") as module:
        yield module


def _study() -> optuna.Study:
    """40 trained trials (F1 rising with MACs, so the front is the 3 cheapest kept below),
    a twin and a pruned trial that must never be picked."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"])
    for i in range(40):
        macs = 10_000 * 2**i if i < 3 else 1_000_000 + 1_000 * i
        f1 = 0.3 + 0.1 * i if i < 3 else 0.2 + 0.001 * i
        attrs = {
            "macs": macs,
            "params": i + 1,
            "model_yaml": "m",
            "data_config": {},
            "f1_history": [f1],
        }
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


def test_a_band_front_joins_the_front_and_the_spread_comes_from_the_study(
    bench: ModuleType,
) -> None:
    study = _study()
    band = optuna.create_study(study_name="s-0.1M", directions=["maximize", "minimize"])
    attrs = {**study.trials[0].user_attrs, "macs": 15_000}  # dominates the study's trial 0
    band.add_trial(optuna.trial.create_trial(values=[0.31, 15_000], user_attrs=attrs))
    entries = bench.pick_spread(study, 10, seed=0, bands=[band])
    assert [(e.band, e.number) for e in entries[:3]] == [("", 2), ("", 1), ("s-0.1M", 0)]
    assert [e.folder for e in entries[:3]] == ["01-trial2", "02-trial1", "03-s-0.1M-trial0"]
    assert all(e.band == "" and e.number not in (1, 2) for e in entries[3:]), "the study's rest"
    variant = bench.Variant(1, 10)
    assert variant.file(band.trials[0], "s-0.1M") != variant.file(study.trials[0])


def test_report_sets_each_proxy_beside_the_floor_and_the_ceiling(bench: ModuleType) -> None:
    from search.finalize import FinalRow

    trials = _study().trials[:4]  # study F1 0.3, 0.4, 0.5, 0.203
    test = [0.5, 0.6, 0.8, 0.7]
    val = [0.4, 0.5, 0.6, 0.7]  # full training's own val: nearer test's order than the study
    rows = [
        FinalRow(
            i + 1, t.number, t.user_attrs["macs"], t.user_attrs["params"], t.values[0], v, f, "r"
        )
        for i, (t, v, f) in enumerate(zip(trials, val, test, strict=True))
    ]
    lines = bench.report(trials, rows)
    assert "on test (4 models)" in lines[5]
    found = {line.split(" Spearman")[0].strip(): line for line in lines[6:10]}
    assert set(found) == {
        "study objective (F1)",
        "params",
        "MACs",
        "full-training val F1 (ceiling)",
    }
    assert "Spearman +0.800  Kendall +0.667" in found["full-training val F1 (ceiling)"]
    assert "Spearman +0.400" in found["study objective (F1)"]
    with_samples = bench.report(trials, rows, [test] * 3)
    assert "Spearman +0.400 (sd 0.00)" in with_samples[6]
    assert "  over params                        [-0.40, -0.40]" in with_samples
    assert "  over MACs                          [-0.40, -0.40]" in with_samples
    assert "  over full-training val F1 (ceiling) [-0.40, -0.40]" in with_samples
    # MACs 10k, 20k, 40k, 1M: two pairs within 2x, both ordered by test as by the study
    assert lines[10].startswith("at matched cost (2 pairs of models within 2x MACs")
    assert "  study objective (F1)               pairs 1.00" in lines
    no_test = [dataclasses.replace(r, test_f1=None) for r in rows]
    assert not any("ceiling" in line for line in bench.report(trials, no_test)), "val vs itself"


def test_resampling_gives_each_reading_its_spread_and_the_objective_its_lead(
    bench: ModuleType,
) -> None:
    readings = {
        "study objective (F1)": [1.0, 2.0, 3.0, 4.0],
        "params": [4.0, 3.0, 2.0, 1.0],
        "MACs": [1.0, 2.0, 4.0, 3.0],
    }
    spread = bench.bootstrap(readings, [[0.1, 0.2, 0.3, 0.4]] * 5)
    assert spread.sd == {"study objective (F1)": 0.0, "params": 0.0, "MACs": 0.0}
    assert spread.lead == {"params": (2.0, 2.0), "MACs": (pytest.approx(0.2),) * 2}
    noisy = bench.bootstrap(readings, [[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])
    assert noisy.sd["study objective (F1)"] == 1.0 and noisy.lead["params"] == (-2.0, 2.0)


def test_matched_cost_pairs_score_the_order_within_a_budget(bench: ModuleType) -> None:
    macs = [100, 150, 190, 500, 1_000]
    pairs = bench.matched_pairs(macs)
    assert pairs == [(0, 1), (0, 2), (1, 2), (3, 4)], "within 2x of each other, 1,000/500 included"
    final = [0.6, 0.5, 0.7, 0.8, 0.9]
    assert bench.pair_agreement(macs, final, pairs) == 0.75, "size orders 3 of the 4 pairs"
    assert bench.pair_agreement([0.6, 0.5, 0.7, 0.8, 0.9], final, pairs) == 1.0
    assert bench.pair_agreement([0.5, 0.5, 0.4, 0.1, 0.1], final, pairs) == 0.25, "ties: a half"
    assert math.isnan(bench.pair_agreement(macs, final, []))
    spread = bench.bootstrap(
        {"a": final, "b": macs}, [final] * 3, functools.partial(bench.pair_agreement, pairs=pairs)
    )
    assert spread.lead == {"b": (0.25, 0.25)}


def test_predictions_resample_the_same_images_for_every_model(bench: ModuleType) -> None:
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    perfect, wrong = labels.clone(), (labels + 1) % 3
    samples = bench.TestPredictions([perfect, wrong], labels, 3).resampled_f1(draws=4, seed=0)
    assert len(samples) == 4 and all(s[0] == 1.0 and s[1] == 0.0 for s in samples)


def _trained_trials(*f1: float) -> list[optuna.trial.FrozenTrial]:
    """Trials of a 10-epoch study scored on their last 2 epochs, trained with seed 0."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    attrs = {"model_yaml": "backbone: []", "seed": 0, "budget": {"epochs": 10, "score_epochs": 2}}
    for value in f1:
        study.add_trial(optuna.trial.create_trial(values=[value, 1.0], user_attrs=attrs))
    return study.trials


def test_variants_retrain_each_trial_once_and_rank_like_the_study(
    bench: ModuleType, tmp_path: Path
) -> None:
    trials = _trained_trials(0.5, 0.7)
    calls = []

    def train(trial, *, seed, epochs):  # F1 per epoch: (trial + seed) / 10
        calls.append((trial.number, seed, epochs))
        return [
            type("Stats", (), {"f1": (trial.number + seed) / 10 + e / 100})()
            for e in range(epochs)
        ]

    seed1, longer = bench._variant("1:10"), bench._variant("0:20")
    bench.train_variants(trials, [seed1, longer], tmp_path, train=train)
    bench.train_variants(trials, [seed1, longer], tmp_path, train=train)
    assert sorted(calls) == [(0, 0, 20), (0, 1, 10), (1, 0, 20), (1, 1, 10)], "once each"
    readings = bench.variant_readings(trials, [seed1, longer], tmp_path)
    assert readings["seed 1, 10 epochs"] == pytest.approx([0.185, 0.285]), "last 2 epochs"
    assert readings["seed 0, 20 epochs"] == pytest.approx([0.185, 0.285])
    assert readings["mean of the study's and seed 1"] == pytest.approx(
        [(0.5 + 0.185) / 2, (0.7 + 0.285) / 2]
    ), "a second seed of the same budget is also read as the mean of both seeds"
    assert len(readings) == 3, "twice the epochs is not a second seed"
    with pytest.raises(Exception, match="SEED:EPOCHS"):
        bench._variant("1-10")
