"""The search CLIs end to end on the synthetic folder: a few one-epoch trials each."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from runner.training.metrics import competition_score
from search import architecture, export, hyper
from search.front import MACS_MAX_ATTR

REPO = Path(__file__).resolve().parents[2]
BRIEF = ["--epochs", "1", "--no-early-stop", "--sampler", "random", "--bands", "none"]


def test_architecture_cli_runs_resumes_and_reports(
    search_data_yaml: Path,
    small_space: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["--data", str(search_data_yaml), "--space", str(small_space), "--study-name", "tiny"]
    args += BRIEF
    assert architecture.main([*args, "--trials", "2"]) == 0
    first = capsys.readouterr().out
    assert "trial 0: 32px Conv:" in first and "MACs" in first and "-> F1 " in first
    assert "dashboard: optuna-dashboard sqlite:///studies/tiny.db" in first
    assert (
        "export:    python -m search.export --study-name tiny --storage sqlite:///studies/tiny.db"
        in first
    )
    assert architecture.main([*args, "--trials", "3"]) == 0
    study = optuna.load_study(study_name="tiny", storage="sqlite:///studies/tiny.db")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    assert len({t.user_attrs["model_yaml"] for t in study.trials}) == 3  # reseeded on resume
    assert study.trials[0].user_attrs["f1_history"] and study.metric_names == ["f1", "macs"]
    assert "search finished: 3 trials" in capsys.readouterr().out


def test_architecture_cli_rejects_bad_input(
    search_data_yaml: Path, tmp_path: Path, capsys
) -> None:
    bad = tmp_path / "space.yaml"
    bad.write_text("stem: {channels: [8, 16]}\n")
    code = architecture.main(["--data", str(search_data_yaml), "--space", str(bad)])
    assert code == 2
    assert f"error: {bad}: " in capsys.readouterr().err


@pytest.mark.parametrize(
    ("objective", "names"), [("score", ["score"]), ("pareto", ["f1", "macs"])]
)
def test_hyper_cli_on_a_fixed_model(
    objective: str,
    names: list[str],
    search_data_yaml: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    space = yaml.safe_load((REPO / "configs" / "search" / "hyper.yaml").read_text())
    space.update(epochs=[1, 2], img_size_choices=[24, 32], batch_size_choices=[8])
    (tmp_path / "hyper.yaml").write_text(yaml.safe_dump(space))
    monkeypatch.chdir(tmp_path)
    code = hyper.main(
        [
            "--data",
            str(search_data_yaml),
            "--model",
            str(REPO / "configs/model/example.yaml"),
            "--space",
            "hyper.yaml",
            "--trials",
            "2",
            "--objective",
            objective,
            "--no-early-stop",
            "--sampler",
            "random",
            "--study-name",
            objective,
        ]
    )
    assert code == 0
    study = optuna.load_study(study_name=objective, storage=f"sqlite:///studies/{objective}.db")
    assert study.metric_names == names
    out = capsys.readouterr().out
    for trial in study.trials:
        attrs = trial.user_attrs
        assert f"-> F1 {attrs['f1']:.3f} (" in out  # the F1, whatever the objective
        assert trial.state == TrialState.COMPLETE
        assert attrs["data_config"]["IMG_SIZE"] in (24, 32)
        assert len(attrs["f1_history"]) == attrs["epochs_run"] <= 2
        assert "[1, FixedConv, [3, 1, 1, null, 1, null]]" in attrs["model_yaml"]  # 3 classes
        if objective == "score":
            assert trial.values == [pytest.approx(competition_score(attrs["macs"], attrs["f1"]))]
        else:
            assert trial.values == [pytest.approx(attrs["f1"]), attrs["macs"]]


def test_hyper_cli_checks_the_model_before_anything_starts(
    search_data_yaml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "model.yaml"
    bad.write_text("backbone: [[1, Cnv, [8, 3, 2]]]\n")
    code = hyper.main(["--data", str(search_data_yaml), "--model", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {bad}, backbone row 0") and "'Conv'" in err
    assert not (tmp_path / "studies").exists() and not (tmp_path / ".cache").exists()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--trials", "0", "argument --trials: must be >= 1, got 0"),
        ("--trials", "-2", "argument --trials: must be >= 1, got -2"),
        ("--workers", "0", "argument --workers: must be >= 1"),
        ("--heartbeat", "-5", "argument --heartbeat: must be >= 0"),
        ("--epochs", "0", "argument --epochs: must be >= 1"),
        ("--timeout", "-1", "argument --timeout: must be a finite number > 0"),
        ("--early-stop-rungs", "0,3", "expected epochs >= 1 like 2,4"),
        ("--bands", "400k", "expected MACs ceilings like 400000 or 400000,100000, or none"),
    ],
)
def test_counts_below_their_minimum_are_refused_by_the_parser(
    search_data_yaml: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        architecture.main(["--data", str(search_data_yaml), flag, value])
    assert info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "studies").exists(), "nothing started"


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        (
            "sqlit:///x.db",
            "'sqlit' is not a database URL scheme that works here; did you mean "
            "'sqlite'? use sqlite:///FILE.db, postgresql://",
        ),
        ("postgres://postgres@127.0.0.1/x", "did you mean 'postgresql'?"),
        (
            "postgresql://postgres@127.0.0.1:1/x",
            "cannot reach the database at 127.0.0.1:1 (--storage postgresql://postgres@127.0.0.1:1/x)",
        ),
    ],
)
def test_a_storage_url_that_cannot_work_is_one_line_before_anything_starts(
    search_data_yaml: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    storage: str,
    message: str,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    args = ["--data", str(search_data_yaml), "--storage", storage, *BRIEF]
    assert architecture.main(args) == 2
    out, err = capsys.readouterr()
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert "trial 0" not in out and list(work.iterdir()) == [], "nothing started"
    assert export.main(["--study-name", "architecture", "--storage", storage]) == 2
    assert message in capsys.readouterr().err


def test_architecture_cli_runs_its_bands_after_the_study(
    search_data_yaml: Path,
    small_space: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    args = [
        "--data",
        str(search_data_yaml),
        "--space",
        str(small_space),
        "--study-name",
        "tiny",
        *BRIEF,
        "--trials",
        "2",
        "--bands",
        "30000,3000000",
    ]
    assert architecture.main(args) == 0
    out = capsys.readouterr().out
    storage = "sqlite:///studies/tiny.db"
    assert out.index("band study 'tiny-3M'") < out.index("band study 'tiny-0.03M'")
    assert "Handed over by 'tiny' and its band studies ('tiny-3M', 'tiny-0.03M')" in out
    assert f"finalize:  python -m search.finalize --study-name tiny --storage {storage}" in out
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert study.user_attrs["bands"] == {"tiny-3M": 3_000_000, "tiny-0.03M": 30_000}
    for name, ceiling in study.user_attrs["bands"].items():
        band = optuna.load_study(study_name=name, storage=storage)
        assert len(band.trials) == 2 and "bands" not in band.user_attrs
        for trial in band.trials:  # over the ceiling: recorded infeasible, not trained
            over = trial.user_attrs["macs"] > ceiling
            assert over == ("infeasible" in trial.user_attrs), (name, trial.user_attrs["macs"])
    assert architecture.main([*args, "--bands", "none"]) == 0, "a rerun has all it needs"
    assert "band study" not in capsys.readouterr().out
    assert set(study.user_attrs["bands"]) == {"tiny-3M", "tiny-0.03M"}, "never forgotten"


def test_a_small_studys_band_draws_its_own_candidates_under_its_ceiling(
    search_data_yaml: Path,
    small_space: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Same --seed, yet the band does not replay the study's draws (nearly all over its ceiling
    here): it starts from its own spread under the ceiling, so it trains something."""
    monkeypatch.chdir(tmp_path)
    args = [
        "--data",
        str(search_data_yaml),
        "--space",
        str(small_space),
        "--study-name",
        "few",
        "--epochs",
        "1",
        "--no-early-stop",
        "--trials",
        "4",
        "--bands",
        "150000",
    ]
    assert architecture.main(args) == 0
    storage = "sqlite:///studies/few.db"
    study = optuna.load_study(study_name="few", storage=storage)
    band = optuna.load_study(study_name="few-0.15M", storage=storage)
    assert study.user_attrs[MACS_MAX_ATTR] == architecture.DEFAULT_MACS_MAX
    assert band.user_attrs[MACS_MAX_ATTR] == 150_000
    assert [t.params for t in band.trials] != [t.params for t in study.trials]
    started = band.trials[:2]  # the spread start, even at 4 trials
    assert all("startup" in t.user_attrs and t.user_attrs["macs"] <= 150_000 for t in started)
    assert all("f1_history" in t.user_attrs for t in started), "trained, not refused"


@pytest.mark.parametrize(
    ("extra", "bands"),
    [
        ([], {"architecture-0.4M": 400_000}),
        (["--macs-max", "400000"], {}),  # the default band is for a wider budget only
        (["--bands", "none"], {}),
        (
            ["--bands", "100000,400000", "--study-name", "a"],
            {"a-0.4M": 400_000, "a-0.1M": 100_000},
        ),
    ],
)
def test_band_studies_are_named_by_their_ceiling(extra: list[str], bands: dict[str, int]) -> None:
    assert architecture.band_studies(architecture.parse_args(extra)) == bands


def test_a_band_over_the_budget_is_refused_before_anything_starts(
    search_data_yaml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    args = ["--data", str(search_data_yaml), "--storage", storage, "--bands", "6000000"]
    assert architecture.main(args) == 2
    assert "--bands 6000000 is not under --macs-max 6000000" in capsys.readouterr().err
    assert not (tmp_path / "s.db").exists()
