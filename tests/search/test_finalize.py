"""search.finalize: the front trained fully into run folders, scored on test, resumable."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from matplotlib.figure import Figure
from PIL import Image

from runner.data.config import DataConfig
from search.finalize import FinalRow, on_val_front, table_lines
from search.finalize import main as finalize_main
from search.study import add_bands
from space import build_model, count_cost

MODEL = """\
input_channel: 3
depth_multiple: 1.0
width_multiple: 1.0
backbone:
  - [1, Conv, [{c}, 3, 2]]
  - [1, GlobalAvgPool, []]
  - [1, FixedConv, [3, 1, 1, null, 1, null]]
"""


def make_study(storage: str, data: Path) -> None:
    """Two trained trials of a narrow and a wide model, both on the front."""
    study = optuna.create_study(
        study_name="s", storage=storage, directions=["maximize", "minimize"]
    )
    cfg = DataConfig(
        data_path=str(data), img_size=24, epochs=2, batch_size=8, init_lr=0.05, test_ratio=0.25
    )
    for c, f1 in ((8, 0.5), (16, 0.7)):
        text = MODEL.format(c=c)
        cost = count_cost(build_model(yaml.safe_load(text), num_classes=3), 24)
        attrs = {
            "model_yaml": text,
            "macs": cost.macs,
            "params": cost.params,
            "data_config": cfg.to_yaml_dict(),
            "f1_history": [f1],
        }
        study.add_trial(optuna.trial.create_trial(values=[f1, cost.macs], user_attrs=attrs))


@pytest.fixture
def study_args(tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """finalize's flags for the two-trial study, run from tmp_path (the decode cache goes to the
    session's $LITENAS_CACHE), run folders under tmp_path/runs."""
    storage = f"sqlite:///{tmp_path / 's.db'}"
    make_study(storage, tiny_data)
    monkeypatch.chdir(tmp_path)
    return ["--study-name", "s", "--storage", storage, "--output", str(tmp_path / "runs")]


def forbid_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_training(*args: object, **kw: object) -> None:
        raise AssertionError("a finished model was trained again")

    monkeypatch.setattr("runner.training.run.fit", no_training)


def test_finalize_trains_scores_on_test_and_resumes(
    study_args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = study_args
    figures: dict[str, Figure] = {}
    savefig = Figure.savefig

    def keep(self: Figure, path: Path, **kw: object) -> None:
        figures[Path(path).name] = self
        savefig(self, path, **kw)

    monkeypatch.setattr(Figure, "savefig", keep)
    assert finalize_main(args) == 0
    out = capsys.readouterr().out
    assert "Spearman" not in out and "needs 3 or more models" in out
    folder = tmp_path / "runs" / "s"
    with (folder / "final.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["trial"] for r in rows] == ["1", "0"], "best study F1 first"
    for row in rows:
        metrics = json.loads((Path(row["run"]) / "metrics.json").read_text())
        assert metrics["test_images"] == 9, "a quarter of the 36 train images"
        assert float(row["test_f1"]) == pytest.approx(metrics["test_f1"], abs=1e-6)
        assert float(row["val_f1"]) == pytest.approx(metrics["best_f1"], abs=1e-6), "best.pt's"
        assert (Path(row["run"]) / "best.pt").is_file() and metrics["epochs_run"] == 2
        data = yaml.safe_load((Path(row["run"]) / "data.yaml").read_text())
        assert (data["CUTMIX"], data["IMG_SIZE"]) == (1.0, 24), "full_training.yaml on top"
    # final.png: both fronts, cheapest first, at the F1 the study saw and the test F1
    study_line, final_line = figures["final.png"].axes[0].get_lines()
    by_macs = sorted(rows, key=lambda r: int(r["macs"]))
    assert list(final_line.get_xdata()) == [int(r["macs"]) for r in by_macs]
    assert list(study_line.get_ydata()) == pytest.approx([float(r["study_f1"]) for r in by_macs])
    assert list(final_line.get_ydata()) == pytest.approx([float(r["test_f1"]) for r in by_macs])
    assert final_line.get_label() == "after full training (test)"
    with Image.open(folder / "final.png") as png:
        assert png.format == "PNG" and png.size == (800, 550)
    forbid_training(monkeypatch)
    assert finalize_main(args) == 0, "a rerun reuses the trained models"
    assert (folder / "final.csv").read_text().count("\n") == 3
    cheap = int(rows[1]["macs"])  # the front narrowed: trial 0 is now rank 1
    assert finalize_main([*args, "--macs-max", str(cheap)]) == 0, "its run is not trained again"
    assert sorted(p.name for p in folder.glob("0*")) == ["01-trial0", "01-trial1"]
    assert "02-trial0 -> 01-trial0: trained under its earlier rank" in capsys.readouterr().err


def test_workers_side_by_side_train_the_very_models_of_one_process(
    study_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--workers 2 (one thread each here) hands over what one process with one thread does:
    the thread count, not the process a model trains in, sets the floating-point order."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one, side = tmp_path / "one", tmp_path / "side"
        assert finalize_main([*study_args, "--output", str(one), "--workers", "1"]) == 0
        assert "val F1" not in capsys.readouterr().err
        assert finalize_main([*study_args, "--output", str(side), "--workers", "2"]) == 0
    finally:
        torch.set_num_threads(before)
    err = capsys.readouterr().err
    assert "trial 0 (" in err and "trial 1 (" in err, "a line per model as it finishes"

    def rows(folder: Path) -> list[dict[str, str]]:
        with (folder / "s" / "final.csv").open() as f:
            return [{k: v for k, v in r.items() if k != "run"} for r in csv.DictReader(f)]

    assert rows(side) == rows(one) and len(rows(one)) == 2


def test_recipe_may_not_change_the_model(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    make_study(storage, tiny_data)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("IMG_SIZE: 64\nEMA_DECAY: 0.99\n")
    args = ["--study-name", "s", "--storage", storage, "--recipe", str(recipe)]
    assert finalize_main(args) == 2
    assert "may not set ['IMG_SIZE']" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_distill_trains_the_front_again_from_its_best_model(
    study_args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = [*study_args, "--distill"]
    assert finalize_main(args) == 0
    folder = tmp_path / "runs" / "s"
    first = {}
    for run in sorted(folder.glob("0*-trial*")):  # rank order: a tie goes to the better rank
        first[run.name] = json.loads((run / "metrics.json").read_text())["best_f1"]
    teacher = max(first, key=lambda name: first[name])
    students = list((folder / "distilled").iterdir())
    assert [s.name for s in students] == [n for n in first if n != teacher], "all but the teacher"
    student_cfg = yaml.safe_load((students[0] / "data.yaml").read_text())
    assert student_cfg["TEACHER"] == str(folder / teacher)
    with (folder / "final.csv").open() as f:
        rows = {r["run"]: r for r in csv.DictReader(f)}
    assert str(folder / teacher) in rows and rows[str(folder / teacher)]["teacher"] == ""
    distilled_f1 = json.loads((students[0] / "metrics.json").read_text())["best_f1"]
    kept = (
        str(students[0])
        if distilled_f1 > first[students[0].name]
        else str(folder / students[0].name)
    )
    assert kept in rows, "per model, the run with the better val F1"
    assert len(rows) == 2
    forbid_training(monkeypatch)
    assert finalize_main(args) == 0, "a rerun reuses both stages"


def test_distill_refuses_a_recipe_teacher(
    study_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("TEACHER: runs/T\n")
    assert finalize_main([*study_args, "--recipe", str(recipe), "--distill"]) == 2
    assert "--distill picks the teacher" in capsys.readouterr().err
    assert not any((tmp_path / "runs").rglob("*.pt")), "refused before training"


def test_distill_with_a_single_front_model_says_so(
    study_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert finalize_main([*study_args, "--distill", "--top-k", "1"]) == 0
    assert "one front model, so no other model to teach" in capsys.readouterr().out
    assert not (tmp_path / "runs" / "s" / "distilled").exists()


def test_a_band_study_trains_beside_the_study_whose_trial_numbers_it_repeats(
    study_args: list[str],
    tmp_path: Path,
    tiny_data: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    storage = study_args[3]
    band = optuna.create_study(
        study_name="s-0.1M", storage=storage, directions=["maximize", "minimize"]
    )
    study = optuna.load_study(study_name="s", storage=storage)
    cheaper = MODEL.format(c=8).replace("[8, 3, 2]", "[8, 1, 2]")  # a 1x1 stem
    attrs = dict(study.trials[0].user_attrs, model_yaml=cheaper)
    cost = count_cost(build_model(yaml.safe_load(attrs["model_yaml"]), num_classes=3), 24)
    attrs.update(macs=cost.macs, params=cost.params)
    band.add_trial(optuna.trial.create_trial(values=[0.45, cost.macs], user_attrs=attrs))
    add_bands(study, {"s-0.1M": 100_000})
    assert finalize_main([*study_args, "--distill"]) == 0
    folder = tmp_path / "runs" / "s"
    with (folder / "final.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["band"], r["trial"]) for r in rows] == [("", "1"), ("", "0"), ("s-0.1M", "0")]
    first = {
        p.name: json.loads((p / "metrics.json").read_text())["best_f1"]
        for p in sorted(folder.glob("0*-*trial*"))
    }
    assert list(first) == ["01-trial1", "02-trial0", "03-s-0.1M-trial0"], "one folder each"
    teacher = max(first, key=lambda name: first[name])  # a tie goes to the better rank
    students = {p.name for p in (folder / "distilled").iterdir()}
    assert students == set(first) - {teacher}, "each trial of either study is its own student"
    assert "s-0.1M/0" in capsys.readouterr().out


def test_the_val_front_marks_what_a_user_picks_from_for_a_budget() -> None:
    rows = [
        FinalRow(1, 0, 100, 1, 0.5, 0.60, 0.9, "a"),
        FinalRow(2, 1, 200, 1, 0.6, 0.55, 0.9, "b"),  # costlier and worse on val: dominated
        FinalRow(3, 2, 400, 1, 0.4, 0.70, 0.1, "c", picked="gap"),  # test never decides
        FinalRow(4, 3, 400, 1, 0.4, 0.70, 0.1, "d"),  # a tie is no domination
    ]
    assert on_val_front(rows) == [True, False, True, True]
    lines = table_lines(rows)
    assert [line[0] for line in lines[1:]] == ["*", " ", "*", "*"]
    assert lines[3].endswith("c  (fills a gap)")
