"""The training CLI on the real data: a couple of epochs of a tiny model at 32 px."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO


@pytest.mark.e2e
def test_brief_training_on_real_data(
    real_data: Path, tiny_model_yaml: Path, tmp_path: Path
) -> None:
    cfg = yaml.safe_load((REPO / "configs" / "data" / "trashnet_brief.yaml").read_text())
    cfg |= {"DATA_PATH": str(real_data), "EPOCHS": 3}
    data_yaml = tmp_path / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "runner.train",
        "--model",
        str(tiny_model_yaml),
        "--data",
        str(data_yaml),
        "--output",
        str(run),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["per_class_f1"]) == 6 and metrics["epochs_run"] == 3
    assert sum(map(sum, metrics["confusion"])) == 505
    assert metrics["f1"] > 0.2, "better than guessing one class (macro F1 about 0.07)"
