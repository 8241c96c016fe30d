"""TrashNet fetched on first use, like a torchvision dataset: downloaded once, checked, split once.

The default study runs on TrashNet, so a fresh clone must not stop at "DATA_PATH is not a
folder". When a data YAML names TrashNet and DATA_PATH is missing, its public archive is fetched
into a cache shared by every clone on the machine, checked (zip CRCs, the per-class counts
TrashNet publishes, a sha256 when one is set), split once into train/val/test and linked at
DATA_PATH, as the README's manual step would. Every write is a temporary file or folder renamed
into place, under a lock, so a crash or a second process never sees half of one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import re
import shutil
import sys
import urllib.error
import urllib.request
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from types import MappingProxyType

from filelock import FileLock
from tqdm import tqdm

from litenas.resources import user_cache
from runner.data.images import IMAGE_SUFFIXES, DataError

NAME = "TrashNet"
HOME = "https://github.com/garythung/trashnet"
DEFAULT_URL = f"{HOME}/raw/master/data/dataset-resized.zip"
ARCHIVE = "dataset-resized.zip"
# The counts TrashNet's README publishes (2,527 images in all).
PUBLISHED_COUNTS = MappingProxyType(
    {"cardboard": 403, "glass": 501, "metal": 410, "paper": 594, "plastic": 482, "trash": 137}
)
# Shares of each class held out as val and test. 60% train is what the shipped recipes were tuned
# on (the competition-layout copy's train/ less TEST_RATIO). Changing them (or the assignment
# below) must change SPLIT_VERSION, so a cached split of the old rule is never reused.
VAL_SHARE = TEST_SHARE = 0.2
SPLIT_VERSION = 1
DOWNLOAD_ATTEMPTS = 2  # a damaged archive is removed and fetched once more, never used
CHUNK = 1 << 16
TIMEOUT_SECONDS = 60

ENV_URL = "LITENAS_TRASHNET_URL"
ENV_SHA256 = "LITENAS_TRASHNET_SHA256"
ENV_COUNTS = "LITENAS_TRASHNET_COUNTS"


def _parse_counts(text: str) -> dict[str, int]:
    """'cardboard=403,glass=501,...' -> {class: count}; a malformed entry names the variable."""
    counts: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if not name.strip() or not value.strip().isdigit():
            raise DataError(
                f"{ENV_COUNTS}: bad entry {item!r}; expected class=count pairs separated by "
                "commas, e.g. cardboard=403,glass=501"
            )
        counts[name.strip()] = int(value)
    if len(counts) < 2:
        raise DataError(f"{ENV_COUNTS}={text!r}: name at least 2 classes as class=count pairs")
    return counts


@dataclasses.dataclass(frozen=True)
class TrashNetSource:
    """Where TrashNet comes from and what it must hold: settings, so a mirror can stand in."""

    url: str = DEFAULT_URL
    sha256: str = ""  # unknown for the public archive until measured; checked when set
    counts: Mapping[str, int] = dataclasses.field(default_factory=lambda: PUBLISHED_COUNTS)
    cache: Path = dataclasses.field(default_factory=user_cache)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TrashNetSource:
        """The settings from LITENAS_CACHE and LITENAS_TRASHNET_{URL,SHA256,COUNTS}."""
        env = os.environ if environ is None else environ
        sha256 = env.get(ENV_SHA256, "").strip().lower()
        if sha256 and not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise DataError(f"{ENV_SHA256}={sha256!r} is not a sha256 (64 hex digits)")
        counts = _parse_counts(env[ENV_COUNTS]) if env.get(ENV_COUNTS) else PUBLISHED_COUNTS
        return cls(env.get(ENV_URL) or DEFAULT_URL, sha256, counts, user_cache(env))

    @property
    def folder(self) -> Path:
        return self.cache / "trashnet"

    @property
    def archive(self) -> Path:
        return self.folder / ARCHIVE


def manual_steps(source: TrashNetSource, data_path: Path) -> str:
    """What to do by hand when the fetch cannot: one sentence, for a one-line error."""
    return (
        f"to do it by hand, get {ARCHIVE} from {HOME} (data/{ARCHIVE}) and put it at "
        f"{source.archive} (the next run checks, extracts and splits it), or link a copy in the "
        f"train/<class>/ layout at {data_path}, or pass --data a data YAML whose DATA_PATH is "
        "your copy"
    )


def _class_members(archive: zipfile.ZipFile) -> dict[str, list[str]]:
    """Image members per class folder (the folder holding them), sorted; macOS resource forks
    (__MACOSX/, ._*) and hidden files are not images of the dataset."""
    members: dict[str, list[str]] = {}
    for info in archive.infolist():
        parts = PurePosixPath(info.filename).parts
        if (
            info.is_dir()
            or len(parts) < 2
            or parts[0] == "__MACOSX"
            or any(part.startswith(".") for part in parts)
            or PurePosixPath(info.filename).suffix.lower() not in IMAGE_SUFFIXES
        ):
            continue
        members.setdefault(parts[-2], []).append(info.filename)
    return {name: sorted(files) for name, files in sorted(members.items())}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def archive_problem(path: Path, source: TrashNetSource) -> str | None:
    """Why the archive at path is not the one expected (truncated, corrupt, other content), or
    None when it passes every check."""
    if source.sha256 and (found := _sha256(path)) != source.sha256:
        return f"sha256 {found}, expected {source.sha256} ({ENV_SHA256})"
    try:
        with zipfile.ZipFile(path) as archive:
            if (bad := archive.testzip()) is not None:
                return f"corrupt member {bad!r} (CRC mismatch)"
            counts = {name: len(files) for name, files in _class_members(archive).items()}
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        return f"not a readable zip archive, truncated or corrupt ({e})"
    if counts != dict(source.counts):
        return (
            f"holds {sum(counts.values())} images {counts}, expected "
            f"{sum(source.counts.values())} {dict(source.counts)} ({ENV_COUNTS} sets others)"
        )
    return None


def _download(url: str, target: Path, *, progress: bool) -> str | None:
    """Stream url to target with a progress bar; a transfer cut short is removed and said (as a
    problem to fetch again), an unreachable URL raises. Returns None on success."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with (
                partial.open("wb") as out,
                tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    desc=f"download {NAME}",
                    disable=not progress,
                ) as bar,
            ):
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    bar.update(len(block))
        size = partial.stat().st_size
        if total is not None and size != total:
            return f"transfer cut short ({size:,} of {total:,} bytes)"
        os.replace(partial, target)
        return None
    except http.client.IncompleteRead as e:  # a chunked transfer that stopped early
        return f"transfer cut short ({e})"
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        raise DataError(f"cannot download {NAME} from {url} ({_reason(e)})") from e
    finally:
        partial.unlink(missing_ok=True)


def _reason(error: Exception) -> str:
    """The useful part of a network error: the HTTP status or the socket's complaint."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    return str(getattr(error, "reason", None) or error)


def verified_archive(source: TrashNetSource, *, progress: bool = True) -> Path:
    """The archive in the cache, downloaded if missing; one that fails a check is removed and
    fetched again (DOWNLOAD_ATTEMPTS times at most), never used."""
    source.folder.mkdir(parents=True, exist_ok=True)
    problem = None
    for _ in range(DOWNLOAD_ATTEMPTS):
        if not source.archive.is_file():
            problem = _download(source.url, source.archive, progress=progress)
            if problem is not None:
                warnings.warn(f"{source.url}: {problem}; fetching it again", stacklevel=2)
                continue
        problem = archive_problem(source.archive, source)
        if problem is None:
            return source.archive
        warnings.warn(f"{source.archive}: {problem}; removed it, fetching again", stacklevel=2)
        source.archive.unlink()
    raise DataError(f"{NAME} from {source.url}: {problem} (after {DOWNLOAD_ATTEMPTS} tries)")


def split_of(count: int, rank: int) -> str:
    """'test', 'val' or 'train' for the file at `rank` of a class of `count` files."""
    n_test, n_val = round(count * TEST_SHARE), round(count * VAL_SHARE)
    return "test" if rank < n_test else "val" if rank < n_test + n_val else "train"


def _order(member: str) -> str:
    """A class's files are ranked by a hash of their name: the same on every machine, with any
    library version (unlike a seeded RNG) and whatever order the archive lists them in."""
    salted = f"{NAME}-split-v{SPLIT_VERSION}:{PurePosixPath(member).name}"
    return hashlib.sha256(salted.encode()).hexdigest()


def extract_split(
    archive_path: Path, target: Path, source: TrashNetSource, *, progress: bool = True
) -> None:
    """Extract the archive into target/{train,val,test}/<class>/, stratified by split_of."""
    building = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(building, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members = _class_members(archive)
            bar = tqdm(
                total=sum(map(len, members.values())), desc=f"extract {NAME}", disable=not progress
            )
            for name, files in members.items():
                for rank, member in enumerate(sorted(files, key=_order)):
                    folder = building / split_of(len(files), rank) / name
                    folder.mkdir(parents=True, exist_ok=True)
                    (folder / PurePosixPath(member).name).write_bytes(archive.read(member))
                    bar.update()
            bar.close()
        (building / "SOURCE.txt").write_text(
            f"{NAME}: Gary Thung and Mindy Yang, 'Classification of Trash for Recyclability "
            f"Status', 2016, {HOME} (MIT licence).\nFetched from {source.url}; split by litenas "
            f"(runner/data/trashnet.py, split v{SPLIT_VERSION}): {TEST_SHARE:.0%} of each class "
            f"test, {VAL_SHARE:.0%} val, the rest train.\n"
        )
        os.replace(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _link(data_path: Path, split: Path, source: TrashNetSource) -> None:
    """Make data_path a link to the split (the README's manual `ln -s`); a dangling link into
    our own cache (the cache was cleared) is replaced, anything else is left to the user."""
    if data_path.is_symlink():
        target = Path(os.readlink(data_path))
        if not target.is_absolute() or source.folder.resolve() not in target.parents:
            raise DataError(
                f"DATA_PATH {str(data_path)!r} is a broken link to {str(target)!r}: fix or "
                f"remove it, and {NAME} is fetched there"
            )
        data_path.unlink()
    elif data_path.exists():
        raise DataError(f"DATA_PATH {str(data_path)!r} is a file, not a folder of images")
    data_path.parent.mkdir(parents=True, exist_ok=True)
    data_path.symlink_to(split.resolve(), target_is_directory=True)


def fetch_trashnet(
    data_path: Path, source: TrashNetSource | None = None, *, progress: bool = True
) -> Path:
    """Make data_path TrashNet in the train/val/test layout (downloading, checking, extracting
    and splitting only what the cache lacks); returns the split folder it links to.

    Raises DataError, with the manual steps, when it cannot be fetched or fails its checks.
    """
    source = source or TrashNetSource.from_env()
    try:
        source.folder.mkdir(parents=True, exist_ok=True)
        with FileLock(source.folder / ".lock"):
            archive = verified_archive(source, progress=progress)
            split = source.folder / f"split-v{SPLIT_VERSION}-{_sha256(archive)[:12]}"
            if not split.is_dir():
                extract_split(archive, split, source, progress=progress)
            if not data_path.is_dir():
                _link(data_path, split, source)
                if progress:
                    print(f"{NAME}: {data_path} -> {split}", file=sys.stderr)
            return split
    except DataError as e:
        raise DataError(f"{e}; {manual_steps(source, data_path)}") from e
    except OSError as e:  # a cache or DATA_PATH we cannot write
        raise DataError(f"cannot fetch {NAME}: {e}; {manual_steps(source, data_path)}") from e
