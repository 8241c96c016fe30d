"""An installed litenas works from any folder: shipped configs are found, a user's own win."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from litenas.console import COMMANDS
from litenas.resources import config_file, user_cache
from search import architecture, finalize, hyper
from tests.conftest import REPO

SHIPPED = "configs/model/mobilenet_v3_small.yaml"


def test_shipped_defaults_resolve_outside_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = architecture.parse_args([])
    assert args.data.is_file() and args.data.name == "trashnet_trials.yaml"
    assert args.space.is_file() and args.space.name == "architecture.yaml"
    assert hyper.parse_args(["--model", SHIPPED]).model.is_file()
    recipe = finalize.parse_args(["--study-name", "s"]).recipe
    assert recipe.is_file() and recipe.name == "full_training.yaml"


def test_a_users_own_file_wins_and_a_missing_one_keeps_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert config_file(SHIPPED).read_text() == (REPO / SHIPPED).read_text()
    own = tmp_path / SHIPPED
    own.parent.mkdir(parents=True)
    own.write_text("backbone: []\n")
    assert config_file(SHIPPED).resolve() == own.resolve()
    assert config_file("configs/model/no_such.yaml") == Path("configs/model/no_such.yaml")
    assert config_file("my.yaml") == Path("my.yaml")


def test_user_cache_follows_the_environment() -> None:
    assert user_cache({"LITENAS_CACHE": "/y", "XDG_CACHE_HOME": "/x"}) == Path("/y")
    assert user_cache({"XDG_CACHE_HOME": "/x"}) == Path("/x/litenas")


def test_the_console_command_runs_a_module_from_another_folder(tmp_path: Path) -> None:
    """`litenas describe configs/...` in a folder without configs/: the shipped model is read."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "LITENAS_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "litenas", "describe", SHIPPED, "--num-classes", "6"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "total" in done.stdout and "InvertedResidualv3" in done.stdout
    assert list(tmp_path.iterdir()) == []  # nothing written to the current folder


def test_every_sub_command_names_a_module_with_a_main() -> None:
    import importlib

    for name, (module, _) in COMMANDS.items():
        assert callable(importlib.import_module(module).main), name
