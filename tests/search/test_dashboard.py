"""optuna-dashboard on a study as the search stores it: objective names, trial attrs, model YAML.

The server is started the way the README says (`optuna-dashboard <storage URL>`) and read back
through the JSON API its web page uses; it is always stopped, even when an assert fails.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from runner.data.config import DataConfig
from runner.data.splits_cache import SplitsCache
from search.objectives import ArchitectureObjective, TrialBudget
from search.study import open_study, run_study
from space.search_bounds import ArchitectureBounds

STARTUP_SECONDS = 60  # the 2 shared cores can be busy with other work


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def get_json(url: str) -> Any:
    return json.loads(get(url)[1])


class StopSecondAtEpoch1:
    """Stops trial 1 at its first epoch, so the study also holds a pruned trial."""

    def should_stop(self, study, trial, epoch: int, f1: float, macs: int) -> bool:
        return trial.number == 1


def run_tiny_study(
    storage: str, bounds: ArchitectureBounds, cfg: DataConfig, data: SplitsCache
) -> optuna.Study:
    """Three trials of a real architecture study (fit replaced by the fake): every attr the
    dashboard shows was written by the objective, not by this test."""
    study = open_study("dash", storage, optuna.samplers.RandomSampler(seed=0))
    objective = ArchitectureObjective(
        bounds, cfg, data, TrialBudget(epochs=2), stopper=StopSecondAtEpoch1()
    )
    run_study(study, objective, trials=3, timeout=None, catch=())
    return study


@pytest.fixture
def dashboard(
    tmp_path: Path, fake_fit: Callable, arch_bounds: ArchitectureBounds, fake_cfg, fake_data
) -> Iterator[tuple[str, subprocess.Popen[bytes], optuna.Study]]:
    """(base URL, server process, the study it serves); the server is always killed."""
    fake_fit()
    storage = f"sqlite:///{tmp_path / 'dash.db'}"
    study = run_tiny_study(storage, arch_bounds, fake_cfg, fake_data)
    port = free_port()
    command = str(Path(sys.executable).parent / "optuna-dashboard")
    server = subprocess.Popen(
        [command, storage, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}", server, study
    finally:
        server.kill()
        server.wait(timeout=30)
        if server.stderr is not None:
            server.stderr.close()


def wait_until_up(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            err = server.stderr.read().decode() if server.stderr else ""
            pytest.fail(f"optuna-dashboard exited with {server.returncode}: {err[-2000:]}")
        try:
            get(f"{base}/api/studies")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    pytest.fail(f"optuna-dashboard did not answer within {STARTUP_SECONDS} s")


def test_dashboard_shows_objectives_attrs_and_model_yaml(
    dashboard: tuple[str, subprocess.Popen[bytes], optuna.Study],
) -> None:
    base, server, study = dashboard
    trials = study.get_trials()
    wait_until_up(base, server)
    studies = {s["study_name"]: s for s in get_json(f"{base}/api/studies")["study_summaries"]}
    assert studies["dash"]["directions"] == ["maximize", "minimize"]
    detail = get_json(f"{base}/api/studies/{studies['dash']['study_id']}?after=0")
    assert detail["objective_names"] == ["f1", "macs"]
    shown = {a["key"] for a in detail["union_user_attrs"]}
    assert {"model_yaml", "macs", "params", "per_class_f1", "f1_history", "data_config"} <= shown
    first = detail["trials"][0]
    assert first["values"] == [pytest.approx(trials[0].values[0]), float(trials[0].values[1])]
    values = {a["key"]: a["value"] for a in first["user_attrs"]}
    stored = trials[0].user_attrs
    assert values["model_yaml"] == stored["model_yaml"] and "  # 0: " in values["model_yaml"]
    assert json.loads(values["per_class_f1"]) == pytest.approx(stored["per_class_f1"])
    assert [t["state"] for t in detail["trials"]] == ["Complete", "Pruned", "Complete"]
    assert [t["number"] for t in detail["best_trials"]] == [t.number for t in study.best_trials]
    # The web page's script: served when the request says it accepts compressed answers.
    status, _ = get(f"{base}/static/bundle.js", {"Accept-Encoding": "gzip"})
    assert status == 200
