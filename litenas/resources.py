"""Where litenas finds its shipped configs and keeps its user cache, from any folder.

The configs under configs/ ship as package data, so `pip install .` works outside a checkout: a
relative path such as configs/data/trashnet.yaml names a shipped file unless the current folder
holds a file of that name (a user's own copy wins). Downloads and decoded images go to one user
cache, so nothing lands in the folder a command is run from but studies/, runs/ and exports/.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Mapping
from pathlib import Path

CONFIGS = "configs"  # the package holding the shipped YAMLs, and the prefix that names them
ENV_CACHE = "LITENAS_CACHE"


def config_file(path: str | os.PathLike[str]) -> Path:
    """`path` itself when it exists or does not name a shipped config; else the shipped file.

    An argparse `type=` for YAML options, so their documented defaults (configs/...) resolve
    from any folder; a missing file keeps the path as given, and its error names it.
    """
    given = Path(path)
    if given.exists() or given.is_absolute() or given.parts[:1] != (CONFIGS,):
        return given
    shipped = importlib.resources.files(CONFIGS).joinpath(*given.parts[1:])
    return shipped if isinstance(shipped, Path) and shipped.is_file() else given


def user_cache(environ: Mapping[str, str] | None = None) -> Path:
    """$LITENAS_CACHE, else $XDG_CACHE_HOME/litenas, else ~/.cache/litenas."""
    env = os.environ if environ is None else environ
    if env.get(ENV_CACHE):
        return Path(env[ENV_CACHE]).expanduser()
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "litenas"
