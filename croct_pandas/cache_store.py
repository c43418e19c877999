"""The cache's dataset on disk: its layout, its days, the lock, and the partition files.

Layout of one application namespace::

    <cache>/<namespace>/
        events/type=<type>/day=<YYYY-MM-DD>/part-0.parquet   the dataset (other tools read it)
        _manifest.json                                        coverage, schema version, metadata
        _staging/<chain>/page-000000                          pages as they arrive (Arrow IPC)
        _tmp/                                                 files being written
        _lock                                                 the inter-process lock

Only complete files end in ``.parquet``, and only inside ``events/``: temporary files are written
beside it and renamed in, so no reader of the dataset ever lists a half-written file. The plain
file operations (writes by one rename, JSON documents, deletions) are in
:mod:`croct_pandas.cache_files`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timezone
from typing import ClassVar
from urllib.parse import quote, unquote

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from croct_pandas.cache_files import listdir, remove_file
from croct_pandas.errors import CacheError
from croct_pandas.normalize import storage_schema
from croct_pandas.schema import EVENT_TYPES

__all__ = [
    "DAY_MS",
    "SCHEMA_VERSION",
    "CacheLock",
    "Namespace",
    "day_of",
    "day_start",
    "read_partition",
    "remove_partition",
    "write_partition",
]

DAY_MS = 86_400_000
_EPOCH_DAY = date(1970, 1, 1).toordinal()
#: Bump when the layout changes; the storage schemas' digest is added so a schema change also
#: marks older files as another version (STYLE habit 9).
CACHE_FORMAT = 1
_META_KEY = b"croct_pandas"
_PART = "part-0.parquet"
#: Seconds to wait for another process's lock before giving up with a CacheError.
LOCK_TIMEOUT = 600.0


def _schema_digest() -> str:
    text = "|".join(str(storage_schema(t)) for t in (*EVENT_TYPES, "unknown"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


SCHEMA_VERSION = f"{CACHE_FORMAT}-{_schema_digest()}"


def day_of(ms: int) -> str:
    """The UTC day of an epoch-ms time, as the partition spells it.

    Examples
    --------
    >>> day_of(1767225600000)
    '2026-01-01'
    """
    return datetime.fromtimestamp(ms // 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def day_start(day: str) -> int:
    """Epoch ms of midnight UTC on ``day`` (``YYYY-MM-DD``).

    Examples
    --------
    >>> day_start("2026-01-01")
    1767225600000
    """
    # a cache read asks this of every (type, day) file: date's own parser is ~50x strptime
    if len(day) != 10 or day[4] != "-" or day[7] != "-":
        raise ValueError(f"{day!r} is not a YYYY-MM-DD day")
    return (date.fromisoformat(day).toordinal() - _EPOCH_DAY) * DAY_MS


def _is_day(name: str) -> bool:
    try:
        day_start(name)
    except ValueError:
        return False
    return True


# -- the lock ------------------------------------------------------------------------------


class CacheLock:
    """An inter-process lock (``filelock``) that threads of one process also take in turn.

    One instance per lock file and process, so worker threads and several sinks share it.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "_lock")
    >>> CacheLock.at(path) is CacheLock.at(path)
    True
    >>> with CacheLock.at(path):
    ...     pass
    """

    _instances: ClassVar[dict[str, CacheLock]] = {}
    _guard = threading.Lock()

    def __init__(self, path: str) -> None:
        self.path = path
        self._threads = threading.RLock()
        self._file = FileLock(path, timeout=LOCK_TIMEOUT, thread_local=False)

    @classmethod
    def at(cls, path: str) -> CacheLock:
        path = os.path.abspath(path)
        with cls._guard:
            lock = cls._instances.get(path)
            if lock is None:
                lock = cls._instances[path] = cls(path)
            return lock

    def __enter__(self) -> CacheLock:
        self._threads.acquire()
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._file.acquire()
        except Timeout:
            self._threads.release()
            raise CacheError(
                f"the cache lock {self.path} is held by another process for more than "
                f"{LOCK_TIMEOUT:.0f} s; wait for it to finish or use another cache folder"
            ) from None
        except BaseException:
            self._threads.release()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._file.release()
        finally:
            self._threads.release()


# -- one namespace's folders ---------------------------------------------------------------


class Namespace:
    """The paths of one application's folder under the cache root.

    Examples
    --------
    >>> ns = Namespace("/tmp/cache", "api.croct.io~acme~web~shop~1a2b3c4d")
    >>> ns.partition("pageOpened", "2026-01-01")[-52:]
    'events/type=pageOpened/day=2026-01-01/part-0.parquet'
    >>> ns.types_on_disk()
    []
    """

    def __init__(self, root: str, name: str) -> None:
        self.name = name
        self.path = os.path.join(root, name)
        self.events = os.path.join(self.path, "events")
        self.staging = os.path.join(self.path, "_staging")
        #: temporary files of the dataset and manifest, written only with the lock held
        self.tmp = os.path.join(self.path, "_tmp")
        self.manifest = os.path.join(self.path, "_manifest.json")
        self.lock = CacheLock.at(os.path.join(self.path, "_lock"))

    def partition(self, event_type: str, day: str) -> str:
        return os.path.join(self.events, f"type={quote(event_type, safe='')}", f"day={day}", _PART)

    def types_on_disk(self) -> list[str]:
        return sorted(unquote(name[5:]) for name in listdir(self.events) if name[:5] == "type=")

    def days_on_disk(self, event_type: str) -> list[str]:
        folder = os.path.dirname(os.path.dirname(self.partition(event_type, "x")))
        return sorted(
            name[4:]
            for name in listdir(folder)
            if name[:4] == "day="
            and _is_day(name[4:])  # a folder named otherwise is not one this cache wrote
            and os.path.exists(os.path.join(folder, name, _PART))
        )

    def files(self) -> Iterator[tuple[str, str, str]]:
        """Every committed ``(type, day, path)``."""
        for event_type in self.types_on_disk():
            for day in self.days_on_disk(event_type):
                yield event_type, day, self.partition(event_type, day)

    def clean_tmp(self) -> None:
        """Remove dataset files a crash left half-written (call with the lock held: only lock
        holders write there)."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        for name in listdir(self.path):
            if name.startswith("_trash-"):
                shutil.rmtree(os.path.join(self.path, name), ignore_errors=True)


# -- partition files -----------------------------------------------------------------------


def read_partition(path: str, event_type: str) -> tuple[pa.Table, set[str]] | None:
    """A partition's rows in the storage schema and the spec versions they came in.

    None when the file is missing; :class:`CacheError` when another version wrote it (the
    manifest's version check rebuilds such a cache first, so only a file put there by hand or
    by another package version meanwhile gets here).

    Examples
    --------
    >>> import os, tempfile
    >>> from croct_pandas.normalize import storage_schema
    >>> root = tempfile.mkdtemp()
    >>> path = os.path.join(root, "type=tabOpened", "day=2026-01-01", "part-0.parquet")
    >>> empty = storage_schema("tabOpened").empty_table()
    >>> write_partition(path, empty, {"0.7"}, os.path.join(root, "_tmp"))
    >>> table, versions = read_partition(path, "tabOpened")
    >>> table.schema.equals(empty.schema), versions
    (True, {'0.7'})
    >>> remove_partition(path)
    >>> read_partition(path, "tabOpened") is None, os.listdir(root)
    (True, ['_tmp'])
    """
    try:
        # files are only ever replaced by a rename, never changed in place: mapping is safe
        with pa.memory_map(path) as source:
            table = pq.ParquetFile(source).read(use_threads=False)
    except FileNotFoundError:
        return None
    meta = orjson.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
    schema = storage_schema(event_type)
    if meta.get("version") != SCHEMA_VERSION or not table.schema.equals(schema):
        raise CacheError(
            f"{path} was written by another cache version; clear the cache with "
            "croct_pandas.clear_cache() and read again"
        )
    return table.replace_schema_metadata(None), set(meta.get("spec_versions", []))


def write_partition(path: str, table: pa.Table, spec_versions: set[str], tmp_dir: str) -> None:
    """Commit one partition file: written aside, then renamed over the old one (see
    :func:`read_partition` for an example)."""
    meta = {"version": SCHEMA_VERSION, "spec_versions": sorted(spec_versions)}
    table = table.replace_schema_metadata({_META_KEY: orjson.dumps(meta)})
    os.makedirs(tmp_dir, exist_ok=True)
    tmp = os.path.join(tmp_dir, f"_tmp-{uuid.uuid4().hex}")
    try:
        # an open file spares pyarrow's filesystem lookup, a large share of a small write
        with pa.OSFile(tmp, "wb") as out:
            pq.write_table(
                table,
                out,
                compression=_CODEC,
                row_group_size=1 << 20,
                # statistics only where readers filter (time windows, ids): per-column
                # statistics of 100+ mostly-null columns cost more to read than they save
                write_statistics=["timestamp", "id"],
            )
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.replace(tmp, path)
    except BaseException:
        remove_file(tmp)
        raise


def remove_partition(path: str) -> None:
    """Delete a partition file and its day and type folders once empty (see
    :func:`read_partition` for an example)."""
    remove_file(path)
    for folder in (os.path.dirname(path), os.path.dirname(os.path.dirname(path))):
        try:
            os.rmdir(folder)
        except OSError:
            break


#: a warm read is mostly decoding, and decompressing snappy was a third of it for ~20% less disk
#: (the store's strings are ids and short texts; a page dictionary already holds the repeats)
_CODEC = "none"
