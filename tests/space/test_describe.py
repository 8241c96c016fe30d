"""The describe CLI prints an aligned per-row table with totals, and bad configs as errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from space import build_model, count_cost
from space.describe import main
from tests.conftest import REPO

MOBILENET = str(REPO / "configs" / "model" / "mobilenet_v3_small.yaml")


def test_describe_prints_rows_and_totals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([MOBILENET, "--img-size", "64", "--num-classes", "6"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("at 64x64, 6 outputs")
    assert lines[1].split() == ["row", "repeat", "module", "args", "output", "params", "MACs"]
    table = lines[3:-2]
    assert len(table) == len(build_model(MOBILENET).specs)
    assert table[0].split()[:3] == ["0", "1", "Conv"] and "16x32x32" in table[0]
    assert table[-1].split()[-3:] == ["6", "6,150", "6,144"]  # Linear(1024, 6) on a 1024 vector
    cost = count_cost(build_model(MOBILENET, num_classes=6), 64)
    assert lines[-1].split() == ["total", f"{cost.params:,}", f"{cost.macs:,}"]
    assert len({len(line) for line in lines[1:3]}) == 1, "header and rule line up"
    assert len({line.index("Conv") for line in table if " Conv " in line}) == 1, "aligned"


def test_describe_reports_a_bad_config_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("backbone:\n  - [1, Conv, [16, 3, 2]]\n  - [1, Convv, [16, 3]]\n")
    assert main([str(bad), "--img-size", "32"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "backbone row 1" in err and "Did you mean 'Conv'" in err


def test_describe_measures_latency_on_request(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([MOBILENET, "--img-size", "32", "--num-classes", "6", "--latency"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("latency ") and "ONNX Runtime on this CPU, batch 1, one thread" in last
    assert 0 < float(last.split()[1]) < 1000


def test_describe_runs_as_a_module() -> None:
    shuffle = str(REPO / "configs" / "model" / "shufflenet_v2_x0_5.yaml")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "space.describe",
            shuffle,
            "--img-size",
            "32",
            "--num-classes",
            "9",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "ShuffleNetV2" in done.stdout and done.stdout.splitlines()[-1].split()[0] == "total"
