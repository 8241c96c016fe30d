"""search.replay: a trial retrained from what it stored gives the same F1 on the CPU."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest

from search import architecture, replay
from search.front import dominates, pareto_front
from tests.conftest import REPO, bench_script


@pytest.fixture
def study_url(search_data_yaml: Path, small_space: Path, tmp_path: Path) -> str:
    """A finished 2-trial study on the synthetic folder, 3 epochs a trial."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    code = architecture.main(
        [
            "--data",
            str(search_data_yaml),
            "--space",
            str(small_space),
            "--study-name",
            "r",
            "--storage",
            url,
            "--trials",
            "2",
            "--epochs",
            "3",
            "--no-early-stop",
            "--sampler",
            "random",
            "--train-fraction",
            "0.7",
            "--bands",
            "none",
        ]
    )
    assert code == 0
    return url


def test_trial_records_what_a_replay_needs(study_url: str) -> None:
    attrs = optuna.load_study(study_name="r", storage=study_url).trials[1].user_attrs
    assert attrs["budget"] == {
        "epochs": 3,
        "seconds": None,
        "train_fraction": 0.7,
        "score_epochs": 3,
    }
    assert attrs["seed"] == attrs["data_config"]["SEED"] == 0
    assert {"python", "torch", "torchvision", "optuna", "litenas"} <= set(attrs["versions"])
    assert attrs["threads"] >= 1 and ":" in attrs["worker"]


def test_replay_gives_the_same_f1(study_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert replay.main(["--study-name", "r", "--storage", study_url, "--trial", "1"]) == 0
    out = capsys.readouterr().out
    stored = optuna.load_study(study_name="r", storage=study_url).trials[1]
    assert f"stored F1 per epoch [{stored.user_attrs['f1_history'][0]:.4f}" in out
    assert "same F1 at every epoch" in out


def test_replay_says_when_it_differs(study_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    study = optuna.load_study(study_name="r", storage=study_url)
    trial = study.trials[0]
    history = [f + 0.01 for f in trial.user_attrs["f1_history"]]
    study.add_trial(
        optuna.trial.create_trial(  # trial 2: as if trial 0 had run elsewhere
            values=trial.values,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs={**trial.user_attrs, "versions": {"torch": "1.0"}, "f1_history": history},
        )
    )
    assert replay.main(["--study-name", "r", "--storage", study_url, "--trial", "2"]) == 1
    out = capsys.readouterr().out
    assert "the replay differs" in out and "possible cause: torch: trial 1.0, here 2." in out


def test_unknown_trial_is_a_clear_error(study_url: str, capsys) -> None:
    assert replay.main(["--study-name", "r", "--storage", study_url, "--trial", "7"]) == 2
    assert "study 'r' has no trial 7; its trials are numbered 0..1" in capsys.readouterr().err


def test_baselines_bench_trains_with_the_study_recipe_and_judges_dominance(
    study_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    model = REPO / "configs" / "model" / "example.yaml"
    with bench_script("front_vs_baselines") as bench:
        status = bench.main(["--study-name", "r", "--storage", study_url, "--models", str(model)])
    assert status == 0
    out = capsys.readouterr().out
    budget = "{'epochs': 3, 'seconds': None, 'train_fraction': 0.7, 'score_epochs': 3}"
    assert f"budget {budget}, 32 px, seed 0" in out
    found = re.search(rf"{re.escape(str(model))}: F1 ([\d.]+), MACs ([\d,]+) \(3 epochs", out)
    assert found, out
    point = (float(found[1]), int(found[2].replace(",", "")))
    front = pareto_front(optuna.load_study(study_name="r", storage=study_url))
    beaten = any(dominates((t.values[0], t.user_attrs["macs"]), point) for t in front)
    assert ("NOT dominated" not in out) == beaten
    assert f"{int(beaten)} of 1 baselines dominated" in out
