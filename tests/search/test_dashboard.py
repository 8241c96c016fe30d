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
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from space import build_model, count_cost
from tests.search.test_export import IMG_SIZE, REPO, trial_attrs

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


def make_study(storage: str, data: Path) -> dict[str, Any]:
    """A two-objective study with metric names, two completed trials and a pruned one."""
    model = build_model(REPO / "configs/model/shufflenet_v2_x0_5.yaml", num_classes=3)
    cost = count_cost(model, IMG_SIZE)
    shipped = {"model_yaml": model.to_yaml(IMG_SIZE), "macs": cost.macs,
               "params": cost.params}  # fmt: skip
    study = optuna.create_study(study_name="dash", storage=storage,
                                directions=["maximize", "minimize"])  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["f1", "macs"])
    attrs = trial_attrs(shipped, data, 0.61)
    for f1 in (0.61, 0.58):
        study.add_trial(optuna.trial.create_trial(values=[f1, cost.macs], user_attrs=attrs))
    study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED,
                                              user_attrs={"f1_history": [0.2]}))  # fmt: skip
    return attrs


@pytest.fixture
def dashboard(
    tmp_path: Path, tiny_data: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes], dict[str, Any]]]:
    """(base URL, server process, the trials' user attrs); the server is always killed."""
    storage = f"sqlite:///{tmp_path / 'dash.db'}"
    attrs = make_study(storage, tiny_data)
    port = free_port()
    command = str(Path(sys.executable).parent / "optuna-dashboard")
    server = subprocess.Popen(
        [command, storage, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}", server, attrs
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
    dashboard: tuple[str, subprocess.Popen[bytes], dict[str, Any]],
) -> None:
    base, server, attrs = dashboard
    wait_until_up(base, server)
    studies = {s["study_name"]: s for s in get_json(f"{base}/api/studies")["study_summaries"]}
    assert studies["dash"]["directions"] == ["maximize", "minimize"]
    detail = get_json(f"{base}/api/studies/{studies['dash']['study_id']}?after=0")
    assert detail["objective_names"] == ["f1", "macs"]
    shown = {a["key"] for a in detail["union_user_attrs"]}
    assert {"model_yaml", "macs", "params", "per_class_f1", "f1_history", "data_config"} <= shown
    first = detail["trials"][0]
    assert first["values"] == [0.61, float(attrs["macs"])]
    values = {a["key"]: a["value"] for a in first["user_attrs"]}
    assert values["model_yaml"] == attrs["model_yaml"] and "  # 0: " in values["model_yaml"]
    assert json.loads(values["per_class_f1"]) == attrs["per_class_f1"]
    assert [t["state"] for t in detail["trials"]] == ["Complete", "Complete", "Pruned"]
    assert [t["number"] for t in detail["best_trials"]] == [0]
    # The web page's script: served when the request says it accepts compressed answers.
    status, _ = get(f"{base}/static/bundle.js", {"Accept-Encoding": "gzip"})
    assert status == 200
