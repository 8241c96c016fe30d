"""The product's main path on the real data: a small study, its export, training an export, and
finalizing the front with a score on images the study never saw."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from search import architecture, export, finalize
from search.front import is_feasible

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_study_export_and_train_on_real_data(real_data: Path, tmp_path: Path) -> None:
    cfg = yaml.safe_load((REPO / "configs" / "data" / "trashnet.yaml").read_text())
    data_yaml = tmp_path / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(cfg | {"DATA_PATH": str(real_data)}))
    storage = f"sqlite:///{tmp_path / 'e2e.db'}"
    code = architecture.main(
        [
            "--data",
            str(data_yaml),
            "--study-name",
            "e2e",
            "--storage",
            storage,
            "--trials",
            "3",
            "--epochs",
            "2",
            "--train-fraction",
            "0.3",
            "--img-size",
            "32",
            "--sampler",
            "random",
            "--macs-max",
            "8000000",
            "--no-early-stop",
            "--test-ratio",
            "0.2",
        ]
    )
    assert code == 0
    study = optuna.load_study(study_name="e2e", storage=storage)
    trials = study.get_trials(states=[TrialState.COMPLETE])
    assert len(trials) == 3
    assert {
        len(t.user_attrs["per_class_f1"]) for t in trials if "infeasible" not in t.user_attrs
    } == {6}
    band = optuna.load_study(study_name="e2e-0.4M", storage=storage)  # the default band
    assert len(band.get_trials(states=[TrialState.COMPLETE])) == 3
    assert all(t.user_attrs["macs"] <= 400_000 for t in band.trials if is_feasible(t))

    out = tmp_path / "exports"
    assert export.main(["--study-name", "e2e", "--storage", storage, "--output", str(out)]) == 0
    folder = sorted((out / "e2e").glob("*-trial*"))[0]
    run = tmp_path / "run"
    model, data = str(folder / "model.yaml"), str(folder / "data.yaml")
    command = [
        sys.executable,
        "-m",
        "runner.train",
        "--model",
        model,
        "--data",
        data,
        "--epochs",
        "1",
        "--output",
        str(run),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1 and len(metrics["per_class_f1"]) == 6

    runs = tmp_path / "runs"
    args = [
        "--study-name",
        "e2e",
        "--storage",
        storage,
        "--output",
        str(runs),
        "--top-k",
        "1",
        "--epochs",
        "1",
    ]
    assert finalize.main(args) == 0
    final = (runs / "e2e" / "final.csv").read_text().splitlines()
    assert len(final) == 2 and final[0].startswith("rank,band,trial,picked,macs")
    run_folder = next(csv.DictReader(final))["run"]
    metrics = json.loads((Path(run_folder) / "metrics.json").read_text())
    train_images = sum(1 for _ in (real_data / "train").rglob("*.jpg"))
    assert metrics["test_images"] == pytest.approx(0.2 * train_images, abs=6)
