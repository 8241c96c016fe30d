"""The README's install and test commands are the ones CI runs: a newcomer's first steps work."""

from __future__ import annotations

import re

from tests.conftest import REPO


def _bash_blocks(markdown: str, heading: str) -> list[str]:
    section = markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [
        line
        for block in re.findall(r"```bash\n(.*?)```", section, re.S)
        for line in block.strip().splitlines()
    ]


def test_ci_installs_and_tests_exactly_as_the_readme_says() -> None:
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    install = [line for line in _bash_blocks(readme, "Install") if line.startswith("pip install")]
    test = _bash_blocks(readme, "Test")
    assert install and test, "README must show an install and a test command"
    for command in install + test:
        assert command in ci, f"README command not run verbatim by .ci/run: {command}"
