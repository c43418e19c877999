"""The ``cache`` argument: a path that is a file, runs through one, or names a folder that cannot
be created or written is refused with an InvalidArgumentError naming ``cache``, before any
request; cache_info and clear_cache take a missing folder for an empty cache."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import croct_pandas as cp
from croct_pandas.cache_paths import cache_dir
from croct_pandas.emulator import Emulator
from croct_pandas.errors import InvalidArgumentError

KEY = "sk-cache-paths-0123456789-SECRET"
ACCEPTS = "cache accepts True"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(users=5, days=1, api_key=KEY) as emulator:
        yield emulator


def read(emu: Emulator, cache: Any) -> pd.DataFrame:
    return cp.read_croct_events(
        "2026-01-01", "2026-01-02", api_key=KEY, base_url=emu.url, cache=cache, progress=False
    )


def can_write(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("not a cache")
    return path


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[Path]:
    """A folder that exists and takes no new file (even for root, who ignores modes)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if can_write(folder):  # root: sysfs refuses new files whatever the user
            folder = Path("/sys/kernel")
            if not folder.is_dir() or can_write(folder):
                pytest.skip("no folder here refuses to be written to")
        yield folder
    finally:
        (tmp_path / "read-only").chmod(0o755)


@pytest.fixture
def uncreatable(unwritable: Path) -> Path:
    """A folder that does not exist and cannot be made."""
    for candidate in (unwritable / "cache", Path("/proc/croct-pandas-cache")):
        if not candidate.exists() and not candidate.parent.is_file():
            try:
                os.makedirs(candidate)
            except OSError:
                return candidate
            os.rmdir(candidate)
    pytest.skip("no folder here refuses to be created")


def check_refused(error: InvalidArgumentError, cache: object, says: str) -> None:
    text = str(error)
    assert text.startswith(f"cache={cache!r}: "), text
    assert says in text and ACCEPTS in text, text
    assert "exists or can be created, and can be written" in text
    assert KEY not in text


def test_a_file_is_refused_before_any_request(emu: Emulator, a_file: Path) -> None:
    emu.reset_log()
    with pytest.raises(InvalidArgumentError) as info:
        read(emu, a_file)
    check_refused(info.value, a_file, "exists and is not a folder")
    assert "False (no cache)" in str(info.value)
    assert emu.requests == []
    assert a_file.read_text() == "not a cache"


def test_a_path_through_a_file_is_refused_before_any_request(emu: Emulator, a_file: Path) -> None:
    emu.reset_log()
    inside = str(a_file / "sub")
    with pytest.raises(InvalidArgumentError) as info:
        read(emu, inside)
    check_refused(info.value, inside, "a part of the path is a file")
    assert emu.requests == []


def test_a_folder_that_cannot_be_created_is_refused(emu: Emulator, uncreatable: Path) -> None:
    emu.reset_log()
    with pytest.raises(InvalidArgumentError) as info:
        read(emu, str(uncreatable))
    check_refused(info.value, str(uncreatable), "the folder cannot be created (")
    assert emu.requests == []
    assert not uncreatable.exists()


def test_a_folder_that_cannot_be_written_is_refused(emu: Emulator, unwritable: Path) -> None:
    emu.reset_log()
    with pytest.raises(InvalidArgumentError) as info:
        read(emu, unwritable)
    check_refused(info.value, unwritable, "the folder cannot be written to (")
    assert emu.requests == []


def test_the_default_folder_names_where_it_came_from(
    emu: Emulator, a_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROCT_PANDAS_CACHE", str(a_file))
    emu.reset_log()
    with pytest.raises(InvalidArgumentError) as info:
        read(emu, True)
    check_refused(info.value, True, f"the default cache folder {str(a_file)!r}")
    assert "from CROCT_PANDAS_CACHE" in str(info.value)
    assert emu.requests == []
    with pytest.raises(InvalidArgumentError, match="from CROCT_PANDAS_CACHE"):
        cp.cache_info()


def test_a_missing_folder_is_made_by_a_read_and_holds_the_cache(
    emu: Emulator, tmp_path: Path
) -> None:
    folder = tmp_path / "not" / "yet" / "there"
    frame = read(emu, folder)
    assert folder.is_dir()
    info = cp.cache_info(folder)
    assert info["rows"].sum() == len(frame) > 0
    assert not [name for name in os.listdir(folder) if name.startswith("_probe")]


@pytest.mark.parametrize("call", [cp.cache_info, cp.clear_cache])
def test_cache_info_and_clear_cache_refuse_a_file(call: Any, a_file: Path) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        call(a_file)
    check_refused(info.value, a_file, "exists and is not a folder")
    assert "False (no cache)" not in str(info.value)
    with pytest.raises(InvalidArgumentError) as info:
        call(str(a_file / "sub"))
    check_refused(info.value, str(a_file / "sub"), "a part of the path is a file")
    assert a_file.read_text() == "not a cache"


def test_cache_info_and_clear_cache_take_a_missing_folder_for_an_empty_cache(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "never-made"
    info = cp.cache_info(missing)
    assert info.empty and list(info.columns[:3]) == ["application", "base_url", "event_type"]
    cp.clear_cache(missing)
    assert not missing.exists(), "looking at a cache never creates it"


def test_cache_info_reads_a_folder_it_could_not_write(unwritable: Path) -> None:
    assert cp.cache_info(unwritable).empty


def test_clear_cache_refuses_a_folder_it_cannot_write(unwritable: Path) -> None:
    before = sorted(os.listdir(unwritable))
    with pytest.raises(InvalidArgumentError) as caught:
        cp.clear_cache(unwritable)
    check_refused(caught.value, unwritable, "the folder cannot be written to")
    assert sorted(os.listdir(unwritable)) == before


def test_cache_dir_returns_the_path_as_given(tmp_path: Path) -> None:
    relative = os.path.relpath(tmp_path / "rel", os.getcwd())
    assert cache_dir(relative, may_be_off=True) == relative
    assert (tmp_path / "rel").is_dir()
    assert cache_dir(tmp_path / "other", writable=False) == str(tmp_path / "other")
    assert not (tmp_path / "other").exists()
    assert cache_dir(tmp_path / "made", writable=True) == str(tmp_path / "made")
    assert (tmp_path / "made").is_dir() and os.listdir(tmp_path / "made") == []
    assert cache_dir(False, may_be_off=True) is None


@pytest.mark.parametrize("bad", [False, None, 0, "", 1.5, b"bytes"])
def test_other_kinds_are_refused_naming_the_parameter(bad: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        cache_dir(bad)
    assert str(info.value).startswith(f"cache={bad!r}: {ACCEPTS}")


def test_a_call_refused_for_its_key_leaves_no_cache_folder(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CROCT_API_KEY", raising=False)
    folder = tmp_path / "cache"
    with pytest.raises(InvalidArgumentError, match="CROCT_API_KEY"):
        cp.read_croct_events("2026-01-01", "2026-01-02", base_url=emu.url, cache=folder,
                             progress=False)  # fmt: skip
    assert not folder.exists()


def test_a_day_folder_named_otherwise_is_not_read_as_a_day(tmp_path: Path) -> None:
    from croct_pandas.cache_store import Namespace

    ns = Namespace(str(tmp_path), "app")
    for name in ("day=2026-01-01", "day=2026-1-02", "day=notes"):
        folder = tmp_path / "app" / "events" / "type=tabOpened" / name
        folder.mkdir(parents=True)
        (folder / "part-0.parquet").write_bytes(b"")
    assert ns.days_on_disk("tabOpened") == ["2026-01-01"]
