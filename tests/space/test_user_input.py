"""The error model at every CLI's edge: a user error is one line and exit 2, a bug a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from litenas.user_input import DEBUG_ENV, USER_ERROR_EXIT, exit_on_user_error, read_yaml
from space.errors import ModelConfigError, UserError


def _raise(error: BaseException) -> int:
    raise error


def test_user_error_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = exit_on_user_error(lambda: _raise(ModelConfigError("net.yaml, backbone row 3: bad")))
    assert code == USER_ERROR_EXIT == 2
    assert capsys.readouterr().err == "error: net.yaml, backbone row 3: bad\n"


def test_missing_user_path_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = exit_on_user_error(lambda: len((tmp_path / "gone.yaml").read_text()))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "gone.yaml" in err
    assert err.count("\n") == 1


# An OSError without a path is not about a user's file.
BUGS = [KeyError("model"), ValueError("a library's check"), RuntimeError("bad"), OSError("closed")]


@pytest.mark.parametrize("bug", BUGS)
def test_any_other_error_keeps_its_traceback(bug: Exception) -> None:
    with pytest.raises(type(bug)):
        exit_on_user_error(lambda: _raise(bug))


def test_debug_flag_and_env_show_a_user_errors_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="bad"):
        exit_on_user_error(lambda: _raise(UserError("bad")), debug=True)
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(UserError, match="bad"):
        exit_on_user_error(lambda: _raise(UserError("bad")))
    monkeypatch.setenv(DEBUG_ENV, "0")
    assert exit_on_user_error(lambda: _raise(UserError("bad"))) == 2


def test_a_key_written_twice_is_refused_naming_key_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "data.yaml"
    path.write_text("DATA_PATH: data\nEPOCHS: 5\nIMG_SIZE: 32\nEPOCHS: 50\n")
    expected = r"data\.yaml:4:1: invalid YAML: key 'EPOCHS' is written twice"
    with pytest.raises(UserError, match=expected):
        read_yaml(path, UserError, "data YAML")


def test_a_key_written_twice_in_a_nested_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.yaml"
    path.write_text("AUG_TRAIN_PARAMS: {level: 3, level: 9}\n")
    with pytest.raises(UserError, match="key 'level' is written twice"):
        read_yaml(path, UserError, "data YAML")
