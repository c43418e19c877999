"""``cache_info()`` and ``clear_cache()``: what the cache holds, and forgetting it."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from croct_pandas.cache_files import (
    listdir,
    read_json,
    remove_dataset,
    remove_file,
    remove_tree,
    write_json,
)
from croct_pandas.cache_manifest import BEGIN, Manifest, union
from croct_pandas.cache_paths import cache_dir
from croct_pandas.cache_store import CacheLock, Namespace
from croct_pandas.errors import InvalidArgumentError
from croct_pandas.params import iso_ms

__all__ = ["cache_info", "clear_cache"]

#: What cache_info calls provisional: as read_croct_events' default ``settle``.
INFO_SETTLE_MS = 2 * 3_600_000
_COLUMNS = [
    "application",
    "base_url",
    "event_type",
    "final",
    "provisional",
    "fetched_at",
    "rows",
    "bytes",
]


def cache_info(cache: Any = True) -> pd.DataFrame:
    """What the cache holds: one row per application and event type.

    Parameters
    ----------
    cache : bool or path
        As in ``read_croct_events``: ``True`` is the user cache (or ``CROCT_PANDAS_CACHE``), a
        path is that folder.

    Returns
    -------
    pandas.DataFrame
        ``application`` (organization/workspace/application slugs), ``base_url``,
        ``event_type``, ``final`` and ``provisional`` (the intervals held, as ISO 8601
        ``start/end`` strings; provisional ones ended less than 2 hours before they were
        fetched and are fetched again by the next read), ``fetched_at`` (the oldest fetch),
        ``rows`` and ``bytes`` on disk.

    Examples
    --------
    >>> import tempfile
    >>> cache_info(tempfile.mkdtemp()).columns.tolist()[:3]
    ['application', 'base_url', 'event_type']
    """
    root = check_cache(cache)
    rows: list[dict[str, Any]] = []
    for ns, manifest in _namespaces(root):
        app = _application(ns, manifest)
        sizes: dict[str, list[int]] = {}
        for event_type, _, path in ns.files():
            size = sizes.setdefault(event_type, [0, 0])
            try:
                size[0] += pq.ParquetFile(path).metadata.num_rows
                size[1] += os.path.getsize(path)
            except OSError:
                continue  # replaced or removed meanwhile by another process
        types = set(sizes) | {k for k in manifest.coverage if k != "*"}
        for event_type in sorted(types):
            records = manifest.records(event_type)
            final = union(r.final_part(INFO_SETTLE_MS) for r in records)
            unsettled = union((max(r.start, r.fetched_at - INFO_SETTLE_MS), r.end) for r in records)
            rows.append(
                {
                    "application": app,
                    "base_url": manifest.base_url,
                    "event_type": event_type,
                    "final": [_interval(i) for i in final],
                    "provisional": [_interval(i) for i in unsettled],
                    "fetched_at": (
                        pd.Timestamp(min(r.fetched_at for r in records), unit="ms", tz="UTC")
                        if records
                        else pd.NaT
                    ),
                    "rows": sizes.get(event_type, [0, 0])[0],
                    "bytes": sizes.get(event_type, [0, 0])[1],
                }
            )
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    return frame.astype({"rows": "int64", "bytes": "int64"})


def clear_cache(cache: Any = True, *, application: str | None = None) -> None:
    """Delete what the cache holds: every application's, or one application's.

    Parameters
    ----------
    cache : bool or path
        As in ``read_croct_events``.
    application : str, optional
        An application's slug, its ``organization/workspace/application`` slugs (as
        :func:`cache_info` shows them) or its folder name; None clears everything.

    Raises
    ------
    InvalidArgumentError
        ``cache`` is not a cache folder's path, names a folder this process cannot write to
        (checked before anything is removed), or ``application`` names none the cache holds.

    Examples
    --------
    >>> import tempfile
    >>> clear_cache(tempfile.mkdtemp())
    """
    root = check_cache(cache)
    if application is not None and (not isinstance(application, str) or not application):
        raise InvalidArgumentError(
            f"application={application!r}: application accepts None (everything) or an "
            "application's slug, 'organization/workspace/application' or folder name"
        )
    if not os.path.isdir(root):
        return
    # a folder it may not write to is refused before anything in it is touched
    cache_dir(cache, writable=True)
    with CacheLock.at(os.path.join(root, "_lock")):
        found = list(_namespaces(root))
        if application is None:
            chosen = found
        else:
            chosen = [(ns, m) for ns, m in found if application in _names(ns, m)]
            if not chosen:
                known = sorted({_application(ns, m) for ns, m in found})
                raise InvalidArgumentError(
                    f"application={application!r}: no such application in the cache at {root}; "
                    f"it holds {known or 'nothing'}"
                )
        for ns, _ in chosen:
            with ns.lock:
                # the manifest first: a crash part way leaves data that no manifest vouches
                # for, which the next read rebuilds, never coverage without its data
                remove_file(ns.manifest)
                remove_dataset(ns.events)
                remove_tree(ns.path)
        keys_path = os.path.join(root, "_keys.json")
        if application is None:
            remove_file(keys_path)
            remove_file(os.path.join(root, "_salt"))
            shutil.rmtree(os.path.join(root, "_tmp"), ignore_errors=True)
        else:
            gone = {ns.name for ns, _ in chosen}
            known_keys = ((read_json(keys_path) or {}).get("keys")) or {}
            kept = {k: v for k, v in known_keys.items() if v not in gone}
            write_json(keys_path, {"keys": kept}, os.path.join(root, "_tmp"))


def check_cache(cache: Any) -> str:
    """The folder ``cache`` names (``True``: the default one); False and others raise."""
    folder = cache_dir(cache, writable=False)  # reads and deletes: a missing folder is empty
    assert folder is not None
    return folder


def _namespaces(root: str) -> list[tuple[Namespace, Manifest]]:
    out = []
    for name in sorted(listdir(root)):
        if name.startswith(("_", ".")):
            continue
        ns = Namespace(root, name)
        doc = read_json(ns.manifest)
        if doc is not None:
            out.append((ns, Manifest.from_json(doc)))
    return out


def _application(ns: Namespace, manifest: Manifest) -> str:
    slugs = [manifest.metadata.get(k) for k in ("organizationSlug", "workspaceSlug")]
    slugs.append(manifest.metadata.get("applicationSlug"))
    if all(isinstance(s, str) and s for s in slugs):
        return "/".join(str(s) for s in slugs)
    return ns.name


def _names(ns: Namespace, manifest: Manifest) -> set[str]:
    names = {ns.name, _application(ns, manifest)}
    for key in ("applicationSlug", "applicationName"):
        value = manifest.metadata.get(key)
        if isinstance(value, str):
            names.add(value)
    return names


def _interval(interval: tuple[int, int]) -> str:
    start, end = interval
    return f"{'' if start == BEGIN else iso_ms(start)}/{iso_ms(end)}"
