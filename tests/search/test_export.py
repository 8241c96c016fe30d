"""Export of a study's Pareto front: ranks, filters, trainable files, determinism, errors.

The studies are built directly with optuna from the shipped model configs, with the user attrs the
search objectives store, so these tests need no search run.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from runner.data.config import DataConfig, load_data_config
from runner.training.metrics import competition_score
from search.export import main as export_main
from search.front import (
    FrontError,
    FrontFilter,
    front_entries,
    safe_folder_name,
    study_points,
)
from search.study import add_bands, open_with_bands
from space import build_model, count_cost

REPO = Path(__file__).resolve().parents[2]
MODELS = ("shufflenet_v2_x0_5", "example", "mixed_blocks", "mobilenet_v3_small")
IMG_SIZE = 32
# (model, F1) per completed trial: 0, 1, 2 are the front; 3 is dominated by 2 (fewer MACs, more F1)
TRIALS = (
    ("shufflenet_v2_x0_5", 0.55),
    ("mobilenet_v3_small", 0.72),
    ("example", 0.62),
    ("mixed_blocks", 0.60),
)
FRONT_FOLDERS = ["01-trial1", "02-trial2", "03-trial0"]  # best F1 first


@pytest.fixture(scope="session")
def model_attrs() -> dict[str, dict[str, Any]]:
    """model_yaml, macs and params of shipped configs with 3 classes, as the objective stores."""
    attrs = {}
    for name in MODELS:
        model = build_model(REPO / "configs" / "model" / f"{name}.yaml", num_classes=3)
        cost = count_cost(model, IMG_SIZE)
        attrs[name] = {
            "model_yaml": model.to_yaml(IMG_SIZE),
            "macs": cost.macs,
            "params": cost.params,
        }
    return attrs


def trial_attrs(model: dict[str, Any], data_path: Path, f1: float) -> dict[str, Any]:
    """The user attrs the architecture objective writes for one trained trial."""
    data = DataConfig(data_path=str(data_path), img_size=IMG_SIZE, epochs=2, batch_size=8)
    per_class = {"bottle": f1, "can": f1, "paper": f1}
    return {
        **model,
        "data_config": data.to_yaml_dict(),
        "f1_history": [f1 / 2, f1],
        "per_class_f1": per_class,
        "img_size": IMG_SIZE,
    }


def make_study(storage: str, name: str, models: dict[str, dict[str, Any]], data: Path) -> None:
    """Four completed trials, one over the MACs budget, one pruned and one failed."""
    study = optuna.create_study(
        study_name=name, storage=storage, directions=["maximize", "minimize"]
    )
    with warnings.catch_warnings():  # experimental since 3.2, and what the dashboard shows
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["f1", "macs"])
    for model, f1 in TRIALS:
        attrs = trial_attrs(models[model], data, f1)
        study.add_trial(
            optuna.trial.create_trial(
                values=[f1, attrs["macs"]], user_attrs=attrs, constraints={"macs_budget": -1.0}
            )
        )
    over = trial_attrs(models["mobilenet_v3_small"], data, 0.95)
    study.add_trial(
        optuna.trial.create_trial(
            values=[0.95, over["macs"]], user_attrs=over, constraints={"macs_budget": 5.0}
        )
    )
    study.add_trial(
        optuna.trial.create_trial(state=TrialState.PRUNED, user_attrs={"f1_history": [0.1]})
    )
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))


@pytest.fixture
def storage(tmp_path: Path, tiny_data: Path, model_attrs: dict[str, dict[str, Any]]) -> str:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    make_study(url, "arch", model_attrs, tiny_data)
    return url


def run_export(storage: str, out: Path, *extra: str) -> int:
    return export_main(
        ["--study-name", "arch", "--storage", storage, "--output", str(out), *extra]
    )


def rank_folders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def test_front_is_feasible_completed_and_ranked_by_f1(storage: str) -> None:
    study = optuna.load_study(study_name="arch", storage=storage)
    front = front_entries(study)
    assert [e.folder for e in front] == FRONT_FOLDERS
    assert [e.rank for e in front] == [1, 2, 3]
    assert [e.f1 for e in front] == [0.72, 0.62, 0.55]


@pytest.mark.parametrize(
    ("keep", "folders"),
    [
        (FrontFilter(top_k=2), ["01-trial1", "02-trial2"]),
        (FrontFilter(macs_max=2_000_000), ["01-trial2", "02-trial0"]),
        (FrontFilter(f1_min=0.6), ["01-trial1", "02-trial2"]),
        (FrontFilter(top_k=1, macs_max=1_000_000), ["01-trial0"]),
    ],
)
def test_filters_keep_and_rerank(storage: str, keep: FrontFilter, folders: list[str]) -> None:
    study = optuna.load_study(study_name="arch", storage=storage)
    assert [e.folder for e in front_entries(study, keep)] == folders


@pytest.mark.parametrize("kw", [{"top_k": 0}, {"macs_max": 0}, {"f1_min": 1.5}])
def test_bad_filter_is_refused(kw: dict[str, float]) -> None:
    with pytest.raises(FrontError, match="must be"):
        FrontFilter(**kw)


def test_export_writes_trainable_yamls_csv_and_plots(
    storage: str,
    tmp_path: Path,
    model_attrs: dict[str, dict[str, Any]],
    tiny_data: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_export(storage, tmp_path / "exports", "--epochs", "3") == 0
    folder = tmp_path / "exports" / "arch"
    assert rank_folders(folder) == FRONT_FOLDERS
    for name, (model, _) in zip(FRONT_FOLDERS, (TRIALS[1], TRIALS[2], TRIALS[0]), strict=True):
        text = (folder / name / "model.yaml").read_text()
        stored = yaml.safe_load(model_attrs[model]["model_yaml"])
        assert yaml.safe_load(text) == stored  # the rows parse back to the trial's config
        assert build_model(folder / name / "model.yaml").to_config() == stored
        assert "  # 0: " in text and text.startswith("# study 'arch', trial")
        data = load_data_config(folder / name / "data.yaml")
        assert (data.data_path, data.img_size, data.epochs) == (str(tiny_data), IMG_SIZE, 3)
        assert data.cutmix == 1.0, "the full-training keys (configs/search/full_training.yaml)"
    with (folder / "pareto.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["folder"] for r in rows] == FRONT_FOLDERS
    assert [int(r["macs"]) for r in rows] == [
        model_attrs[m]["macs"] for m, _ in (TRIALS[1], TRIALS[2], TRIALS[0])
    ]
    assert rows[2]["f1_above_cliff"] == "+0.050000" and float(rows[0]["score"]) > 0
    assert (folder / "pareto.png").read_bytes().startswith(b"\x89PNG")
    assert "pareto-front" in (folder / "pareto.html").read_text()
    out = capsys.readouterr().out
    assert "hypervolume of the feasible front: 0." in out and "01-trial1/model.yaml" in out


def test_export_latency_column_is_measured_on_request(storage: str, tmp_path: Path) -> None:
    assert run_export(storage, tmp_path / "plain") == 0
    with (tmp_path / "plain" / "arch" / "pareto.csv").open() as f:
        assert [r["latency_ms"] for r in csv.DictReader(f)] == ["", "", ""]
    assert run_export(storage, tmp_path / "timed", "--latency") == 0
    with (tmp_path / "timed" / "arch" / "pareto.csv").open() as f:
        latencies = [float(r["latency_ms"]) for r in csv.DictReader(f)]
    assert len(latencies) == 3 and all(0 < ms < 1000 for ms in latencies)


def test_a_latency_study_is_exported_and_plotted_by_its_latency(
    tmp_path: Path,
    tiny_data: Path,
    model_attrs: dict[str, dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--objectives f1,latency: the front, the plots' x axis and the hypervolume are latency's.
    Here F1 rises with latency and falls with MACs: by MACs one trial would dominate the rest."""
    url = f"sqlite:///{tmp_path / 'lat.db'}"
    study = optuna.create_study(
        study_name="arch", storage=url, directions=["maximize", "minimize"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["f1", "latency_ms"])
    by_macs = sorted(MODELS, key=lambda name: -model_attrs[name]["macs"])
    for i, name in enumerate(by_macs):  # MACs down, F1 and latency up: all on the front
        attrs = trial_attrs(model_attrs[name], tiny_data, 0.5 + 0.1 * i)
        attrs["latency_ms"] = 1.0 + i
        study.add_trial(
            optuna.trial.create_trial(values=[0.5 + 0.1 * i, 1.0 + i], user_attrs=attrs)
        )
    assert run_export(url, tmp_path / "out") == 0
    out = capsys.readouterr().out
    assert "x latency_ms 0..4.000, the slowest feasible trial" in out
    # box: latency 0..4 ms; 4 ms itself adds nothing: 0.25 x (0.7 + 0.6 + 0.5)
    assert "hypervolume of the feasible front: 0.4500" in out
    folder = tmp_path / "out" / "arch"
    assert rank_folders(folder) == ["01-trial3", "02-trial2", "03-trial1", "04-trial0"]
    html = (folder / "pareto.html").read_text()
    assert "batch-1 latency (ms" in html and "reference model" not in html


def test_runner_trains_an_exported_folder_unchanged(storage: str, tmp_path: Path) -> None:
    from runner.train import main as train_main

    # only the cheapest model: it builds and trains fastest
    assert run_export(storage, tmp_path / "exports", "--macs-max", "1000000", "--epochs", "1") == 0
    folder = tmp_path / "exports" / "arch" / "01-trial0"
    args = [
        "--model",
        str(folder / "model.yaml"),
        "--data",
        str(folder / "data.yaml"),
        "--output",
        str(tmp_path / "run"),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert train_main(args) == 0
    assert (tmp_path / "run").is_dir()


def read_tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_export_twice_gives_identical_files_and_drops_stale_ranks(
    storage: str, tmp_path: Path
) -> None:
    out = tmp_path / "exports"
    assert run_export(storage, out) == 0
    first = read_tree(out / "arch")
    (out / "arch" / "notes.txt").write_text("user file, kept")
    assert run_export(storage, out, "--top-k", "1") == 0
    assert rank_folders(out / "arch") == ["01-trial1"]
    assert (out / "arch" / "notes.txt").is_file()
    (out / "arch" / "notes.txt").unlink()
    assert run_export(storage, out) == 0
    assert read_tree(out / "arch") == first


def test_missing_study_lists_the_studies_there(
    storage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = export_main(["--study-name", "ach", "--storage", storage, "--output", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: no study 'ach'")
    assert "no study 'ach'" in err and "did you mean 'arch'?" in err and "'arch'" in err


def test_missing_sqlite_file_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'nothere.db'}"
    assert export_main(["--study-name", "x", "--storage", url]) == 2
    assert "no study storage at" in capsys.readouterr().err
    assert not (tmp_path / "nothere.db").exists()


def test_empty_front_says_why(
    tmp_path: Path, storage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    study = optuna.create_study(
        study_name="arch", storage=url, directions=["maximize", "minimize"]
    )
    study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED))
    assert run_export(url, tmp_path / "exports") == 2
    assert "no feasible completed trial to export (1 pruned)" in capsys.readouterr().err
    assert run_export(storage, tmp_path / "exports", "--f1-min", "0.99") == 2
    assert "leave none of the 3 front trials" in capsys.readouterr().err
    assert not (tmp_path / "exports").exists()


def test_front_trial_without_model_yaml_is_named(tmp_path: Path) -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trial(optuna.trial.create_trial(values=[0.7, 1000], user_attrs={"macs": 1000}))
    with pytest.raises(FrontError, match=r"trial 0 .*'model_yaml', 'data_config', 'params'"):
        front_entries(study)


def test_bad_epochs_is_refused_before_any_write(
    storage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        run_export(storage, tmp_path / "exports", "--epochs", "0")
    assert info.value.code == 2
    assert "argument --epochs: must be >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "exports").exists()


@pytest.mark.parametrize(
    ("name", "folder"),
    [("arch-v2.1", "arch-v2.1"), ("a/../b", "a_.._b"), ("..", "__"), ("", "_"), ("x y", "x_y")],
)
def test_study_folder_never_leaves_the_output(name: str, folder: str) -> None:
    assert safe_folder_name(name) == folder


def test_single_objective_study_exports_its_best_trial(
    model_attrs: dict[str, dict[str, Any]], tiny_data: Path
) -> None:
    study = optuna.create_study(direction="minimize")  # search.hyper --objective score
    for model, f1 in TRIALS[:2]:
        attrs = {**trial_attrs(model_attrs[model], tiny_data, f1), "f1": f1}
        score = competition_score(attrs["macs"], f1)
        study.add_trial(optuna.trial.create_trial(value=score, user_attrs=attrs))
    [best] = front_entries(study)
    macs = model_attrs["mobilenet_v3_small"]["macs"]
    assert (best.number, best.f1, best.macs) == (1, 0.72, macs)


def test_export_recipe_replaces_the_full_training_keys(storage: str, tmp_path: Path) -> None:
    recipe = tmp_path / "own.yaml"
    recipe.write_text("CUTMIX: 0\nEPOCHS: 7\n")
    assert run_export(storage, tmp_path / "exports", "--recipe", str(recipe)) == 0
    data = load_data_config(tmp_path / "exports" / "arch" / FRONT_FOLDERS[0] / "data.yaml")
    assert (data.cutmix, data.epochs) == (0.0, 7)
    recipe.write_text("IMG_SIZE: 96\n")
    assert run_export(storage, tmp_path / "again", "--recipe", str(recipe)) == 2
    assert not (tmp_path / "again").exists(), "a recipe that changes the model writes nothing"


def add_band(storage: str, models: dict[str, dict[str, Any]], data: Path) -> None:
    """Band study "arch-1M" of "arch": one trial that dominates arch's trial 0, one that arch's
    trial 2 dominates, and one alike arch's trial 2 (the same model and F1)."""
    band = optuna.create_study(
        study_name="arch-1M", storage=storage, directions=["maximize", "minimize"]
    )
    for model, f1 in (("shufflenet_v2_x0_5", 0.58), ("mixed_blocks", 0.50), ("example", 0.62)):
        attrs = trial_attrs(models[model], data, f1)
        band.add_trial(optuna.trial.create_trial(values=[f1, attrs["macs"]], user_attrs=attrs))
    study = optuna.load_study(study_name="arch", storage=storage)
    add_bands(study, {"arch-1M": 1_000_000, "arch-0.1M": 100_000})  # the second never started


def test_band_fronts_merge_into_the_study_front(
    storage: str,
    tmp_path: Path,
    model_attrs: dict[str, dict[str, Any]],
    tiny_data: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "exports"
    assert run_export(storage, out) == 0
    add_band(storage, model_attrs, tiny_data)
    study, bands = open_with_bands("arch", storage)
    assert [b.study_name for b in bands] == ["arch-1M"]
    # Each study's front on its own: band trial 0 beats arch's trial 0 on the brief trial's F1
    # at the same MACs, which full training may not confirm, so both are handed over.
    merged = ["01-trial1", "02-trial2", "03-arch-1M-trial0", "04-trial0"]
    assert [e.folder for e in front_entries(study, bands=bands)] == merged
    assert [e.folder for e in front_entries(study)] == FRONT_FOLDERS, "bands only when asked"
    labels = [p.label for p in study_points(bands[0], "arch-1M")]  # the plots name the study
    assert labels == ["arch-1M/0", "arch-1M/1", "arch-1M/2"]
    assert run_export(storage, out) == 0
    assert "Pareto front of study 'arch' and 'arch-1M'" in capsys.readouterr().out
    assert rank_folders(out / "arch") == merged, "the stale 03-trial0 is gone"
    with (out / "arch" / "pareto.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["band"], r["trial"], r["folder"]) for r in rows] == [
        ("", "1", "01-trial1"),
        ("", "2", "02-trial2"),
        ("arch-1M", "0", "03-arch-1M-trial0"),
        ("", "0", "04-trial0"),
    ]
    header = (out / "arch" / merged[2] / "model.yaml").read_text().splitlines()[0]
    assert header.startswith("# study 'arch-1M', trial 0, rank 3 of the exported front")
    assert run_export(storage, out, "--top-k", "2") == 0
    assert rank_folders(out / "arch") == merged[:2], "a band's stale rank folder goes too"
