"""TrashNet fetches itself: downloaded once from a local server, checked, split once, linked.

The archive is a small one the tests build in TrashNet's layout (dataset-resized/<class>/*.jpg
plus the __MACOSX/ resource forks a zip made on a Mac carries); its counts are given through
LITENAS_TRASHNET_COUNTS as a mirror's would be.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import socket
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import search.architecture
from runner.data.config import DataConfig, DataConfigError
from runner.data.sources import load_data
from runner.data.splits import load_splits
from runner.data.trashnet import ARCHIVE, TrashNetSource, extract_split, split_of
from tests.runner.local_http import Served, serve

COUNTS = {"cardboard": 7, "glass": 10, "trash": 5}
SPLITS = ("train", "val", "test")


def jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG")
    return out.getvalue()


def make_archive(path: Path, counts: dict[str, int] = COUNTS, reverse: bool = False) -> Path:
    """A TrashNet-like zip: dataset-resized/<class>/<class><i>.jpg and macOS junk beside them."""
    members = [
        (f"dataset-resized/{name}/{name}{i}.jpg", jpeg(zlib.crc32(f"{name}{i}".encode())))
        for name, count in counts.items()
        for i in range(1, count + 1)
    ]
    junk = [(f"__MACOSX/dataset-resized/{name}/._{name}1.jpg", b"\0\5\26\7") for name in counts]
    junk.append(("dataset-resized/.DS_Store", b"\0\0\0\1Bud1"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in (members[::-1] if reverse else members) + junk:
            archive.writestr(name, data)
    return path


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """A local server holding the archive, and the settings that point the fetch at it."""
    make_archive(tmp_path / "mirror" / ARCHIVE)
    with serve(tmp_path / "mirror") as served:
        monkeypatch.setenv("LITENAS_CACHE", str(tmp_path / "cache"))
        monkeypatch.setenv("LITENAS_TRASHNET_URL", f"{served.url}/{ARCHIVE}")
        monkeypatch.setenv("LITENAS_TRASHNET_COUNTS", "cardboard=7, glass=10, trash=5")
        monkeypatch.delenv("LITENAS_TRASHNET_SHA256", raising=False)
        yield served


def data_yaml(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "trashnet.yaml"
    path.write_text(f"DATA_PATH: {tmp_path / 'data' / 'trashnet'}\nDATASET: TrashNet\n{extra}")
    return path


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.jpg"))


def test_missing_trashnet_is_fetched_checked_split_and_linked(
    tmp_path: Path, mirror: Served
) -> None:
    cfg = load_data(data_yaml(tmp_path))
    data = Path(cfg.data_path)
    assert data.is_symlink() and (tmp_path / "cache" / "trashnet") in data.resolve().parents
    assert mirror.requests == [f"/{ARCHIVE}"]
    for name, count in COUNTS.items():
        per_split = {s: len(list((data / s / name).glob("*.jpg"))) for s in SPLITS}
        expected = {s: [split_of(count, r) for r in range(count)].count(s) for s in per_split}
        assert per_split == expected and sum(per_split.values()) == count
    assert not any("._" in name for name in listing(data)), "macOS resource forks are no images"
    splits = load_splits(cfg, img_size=16, cache_dir=tmp_path / "c", progress=False)
    assert splits.classes == sorted(COUNTS)
    assert len(splits.train_y) + len(splits.val_y) + len(splits.test_y) == sum(COUNTS.values())

    data.unlink()  # a second clone: the cached archive and split are reused, nothing downloaded
    assert load_data(data_yaml(tmp_path)) == cfg
    assert mirror.requests == [f"/{ARCHIVE}"] and data.is_dir()


def test_splits_of_a_config_from_a_study_fetch_what_this_machine_lacks(
    tmp_path: Path, mirror: Served
) -> None:
    """search.finalize and replay build configs from a storage, not from the YAML."""
    cfg = DataConfig(data_path=str(tmp_path / "other" / "trashnet"), dataset="TrashNet")
    splits = load_splits(cfg, img_size=16, cache_dir=tmp_path / "c", progress=False)
    assert len(splits.test_y) == sum(round(n * 0.2) for n in COUNTS.values())
    assert mirror.requests == [f"/{ARCHIVE}"]


def test_split_is_the_same_whatever_order_the_archive_lists_its_files(tmp_path: Path) -> None:
    source = TrashNetSource(counts=COUNTS, cache=tmp_path / "cache")
    extract_split(make_archive(tmp_path / "a.zip"), tmp_path / "a", source, progress=False)
    extract_split(
        make_archive(tmp_path / "b.zip", reverse=True), tmp_path / "b", source, progress=False
    )
    assert listing(tmp_path / "a") == listing(tmp_path / "b")
    assert {p.split("/")[0] for p in listing(tmp_path / "a")} == set(SPLITS)


def test_a_corrupt_cached_archive_is_removed_and_fetched_again(
    tmp_path: Path, mirror: Served
) -> None:
    cached = tmp_path / "cache" / "trashnet" / ARCHIVE
    cached.parent.mkdir(parents=True)
    cached.write_bytes((tmp_path / "mirror" / ARCHIVE).read_bytes()[:-100])  # cut short
    with pytest.warns(UserWarning, match="not a readable zip.*removed it, fetching again"):
        load_data(data_yaml(tmp_path))
    assert mirror.requests == [f"/{ARCHIVE}"]
    assert cached.read_bytes() == (tmp_path / "mirror" / ARCHIVE).read_bytes()


def test_a_transfer_cut_short_is_fetched_again(tmp_path: Path, mirror: Served) -> None:
    mirror.cut_next.add(f"/{ARCHIVE}")
    with pytest.warns(UserWarning, match=r"transfer cut short .* fetching it again"):
        cfg = load_data(data_yaml(tmp_path))
    assert len(mirror.requests) == 2 and (Path(cfg.data_path) / "train").is_dir()
    assert not list((tmp_path / "cache" / "trashnet").glob(".*.part")), "no partial file stays"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LITENAS_TRASHNET_SHA256", "0" * 64, r"sha256 [0-9a-f]{64}, expected 0{64}"),
        ("LITENAS_TRASHNET_COUNTS", "cardboard=7,glass=11,trash=5", r"holds 22 images .* 23"),
    ],
)
def test_an_archive_failing_its_checks_is_never_used(
    tmp_path: Path,
    mirror: Served,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.warns(UserWarning), pytest.raises(DataConfigError, match=message) as error:
        load_data(data_yaml(tmp_path))
    assert "\n" not in str(error.value) and "to do it by hand" in str(error.value)
    assert len(mirror.requests) == 2, "removed and fetched once more"
    assert not (tmp_path / "cache" / "trashnet" / ARCHIVE).exists()
    assert not (tmp_path / "data" / "trashnet").exists()


def test_a_known_sha256_is_checked_and_passes(
    tmp_path: Path, mirror: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = hashlib.sha256((tmp_path / "mirror" / ARCHIVE).read_bytes()).hexdigest()
    monkeypatch.setenv("LITENAS_TRASHNET_SHA256", digest.upper())
    assert (Path(load_data(data_yaml(tmp_path)).data_path) / "val").is_dir()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_without_network_the_cli_says_the_manual_steps_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LITENAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LITENAS_TRASHNET_URL", f"http://127.0.0.1:{free_port()}/{ARCHIVE}")
    argv = ["--data", str(data_yaml(tmp_path)), "--storage", f"sqlite:///{tmp_path / 's.db'}"]
    assert search.architecture.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    for said in (
        "cannot download TrashNet",
        "Connection refused",
        "github.com/garythung/trashnet",
        str(tmp_path / "cache" / "trashnet" / ARCHIVE),
        "--data",
    ):
        assert said in err


def test_download_false_names_the_key_and_fetches_nothing(tmp_path: Path, mirror: Served) -> None:
    with pytest.raises(DataConfigError, match="is not a folder .* set DOWNLOAD: true"):
        load_data(data_yaml(tmp_path, "DOWNLOAD: false\n"))
    assert mirror.requests == []


def test_a_link_left_dangling_by_a_cleared_cache_is_remade(tmp_path: Path, mirror: Served) -> None:
    data = Path(load_data(data_yaml(tmp_path)).data_path)
    for split in (tmp_path / "cache" / "trashnet").glob("split-*"):
        shutil.rmtree(split)
    assert data.is_symlink() and not data.exists()
    load_data(data_yaml(tmp_path))
    assert (data / "train").is_dir() and mirror.requests == [f"/{ARCHIVE}"]


def test_a_foreign_dangling_link_is_left_to_the_user(tmp_path: Path, mirror: Served) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "trashnet").symlink_to(tmp_path / "unmounted")
    with pytest.raises(DataConfigError, match="is a broken link to .*unmounted"):
        load_data(data_yaml(tmp_path))


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LITENAS_TRASHNET_SHA256", "abc", r"LITENAS_TRASHNET_SHA256='abc' is not a sha256"),
        ("LITENAS_TRASHNET_COUNTS", "glass:501", r"_COUNTS: bad entry 'glass:501'"),
    ],
)
def test_bad_settings_name_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(DataConfigError, match=message):
        load_data(data_yaml(tmp_path))


def test_the_cache_defaults_to_xdg_and_is_overridable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert TrashNetSource.from_env({"XDG_CACHE_HOME": "/x"}).cache == Path("/x/litenas")
    assert TrashNetSource.from_env({"LITENAS_CACHE": "/y", "XDG_CACHE_HOME": "/x"}).cache == Path(
        "/y"
    )
    monkeypatch.setenv("HOME", "/home/someone")
    assert TrashNetSource.from_env({}).cache == Path("/home/someone/.cache/litenas")
    assert sum(TrashNetSource.from_env({}).counts.values()) == 2527, "TrashNet's published count"
