"""--seed: a study's draws follow its seed, whatever storage holds it.

Two studies in two storages opened with the same --seed draw the same candidates, trial by
trial; another seed draws others. A band study draws apart from its study under the same seed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from search._cli import study_parser, study_session
from search.study import open_study


def _draws(tmp_path: Path, name: str, *flags: str, trials: int = 2) -> list[list[float]]:
    parser = study_parser("A study.\n", "search.architecture", 10, "space.yaml", (3, 6))
    storage = f"sqlite:///{tmp_path / name}.db"
    args = parser.parse_args(
        [
            "--storage",
            storage,
            "--sampler",
            "random",
            "--heartbeat",
            "0",
            "--study-name",
            "s",
            *flags,
        ]
    )
    draws = []
    for _ in range(trials):  # one session per trial, as reruns of the command are
        with study_session(args, open_study) as (study, _):
            trial = study.ask()
            draws.append([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(3)])
            study.tell(trial, [0.5, 1.0])
    return draws


def test_same_seed_same_draws_in_another_storage(tmp_path: Path) -> None:
    first = _draws(tmp_path, "a", "--seed", "7")
    assert _draws(tmp_path, "b", "--seed", "7") == first
    assert first[0] != first[1], "a rerun does not replay the first draws"


@pytest.mark.parametrize("flags", [["--seed", "8"], ["--seed", "7", "--band-of", "main"]])
def test_another_seed_or_a_band_draws_otherwise(tmp_path: Path, flags: list[str]) -> None:
    first = _draws(tmp_path, "a", "--seed", "7")
    other = _draws(tmp_path, "b", *flags)
    assert all(a != b for a, b in zip(first, other, strict=True))
