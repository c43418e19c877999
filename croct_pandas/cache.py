"""The local Parquet cache: which folder holds an API key's data, and the sink export writes to.

A cache root holds one folder (*namespace*) per application, named after the base URL and the
organization, workspace and application slugs of the response metadata. An API key is never
written anywhere: a salted PBKDF2 fingerprint of it (the salt is random per cache root) maps the
key to its namespace in ``<cache>/_keys.json``. A known key costs no request; a new key costs one
(``page_size=1``) to learn the application it belongs to, and then reuses that application's
data.

See :mod:`croct_pandas.cache_store` for the files, :mod:`croct_pandas.cache_manifest` for
coverage and settledness, and :mod:`croct_pandas.cache_sink` for reads and writes.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa

from croct_pandas.cache_files import atomic_write, listdir, read_json, write_json
from croct_pandas.cache_info import cache_info, clear_cache
from croct_pandas.cache_sink import CacheSink, load_manifest
from croct_pandas.cache_store import CacheLock, Namespace
from croct_pandas.client import Client
from croct_pandas.normalize import storage_schema
from croct_pandas.schema import EVENT_TYPES

__all__ = ["cache_info", "clear_cache", "dataset_schema", "open_sink"]

#: PBKDF2 rounds: API keys are long random strings, so this only has to make guessing a weak
#: key offline costly; every read with the cache pays it once (~25 ms).
KEY_ROUNDS = 25_000
_SLUGS = ("organizationSlug", "workspaceSlug", "applicationSlug")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def open_sink(
    cache_root: str,
    client: Client,
    *,
    window: tuple[int | None, int],
    events: tuple[str, ...] | None,
    workers: int,
    refresh: bool,
    settle_ms: int,
    now_ms: int,
) -> CacheSink:
    """The sink of one ``read_croct_events`` call on the cache at ``cache_root``.

    Finds (or, with one request, learns) the namespace of ``client``'s API key. The sink's
    ``metadata`` holds the application's names and slugs without any request.

    Examples
    --------
    >>> import tempfile
    >>> from croct_pandas.client import Client, Response
    >>> body = (b'{"items": [], "nextCursor": "", "metadata": {"organizationSlug": "o", '
    ...         b'"workspaceSlug": "w", "applicationSlug": "a"}}')
    >>> client = Client("k", transport=lambda request: Response(200, {}, body))
    >>> sink = open_sink(tempfile.mkdtemp(), client, window=(1767225600000, 1767312000000),
    ...                  events=None, workers=1, refresh=False, settle_ms=0, now_ms=1767312000000)
    >>> [(s.start, s.end) for s in sink.plan()][:2]
    [(1767225600000, 1767247200000), (1767247200000, 1767268800000)]
    >>> sink.metadata["applicationSlug"]
    'a'
    """
    ns, metadata = _namespace(cache_root, client, window, events)
    return CacheSink(
        ns,
        window=window,
        events=events,
        workers=workers,
        refresh=refresh,
        settle_ms=settle_ms,
        now_ms=now_ms,
        metadata=metadata,
        base_url=client.base_url,
    )


def dataset_schema(events: Sequence[str] | None = None) -> pa.Schema:
    """The full Arrow schema of the cache's dataset, partition columns ``type`` and ``day``
    included, for readers that take one (``pd.read_parquet(..., schema=...)``).

    Files of different types hold different payload columns; this is their union.

    Examples
    --------
    >>> schema = dataset_schema()
    >>> schema.field("type").type, schema.field("day").type
    (DataType(string), DataType(date32[day]))
    >>> "payload.cart.total" in schema.names
    True
    """
    types = list(EVENT_TYPES) if events is None else list(events)
    merged = pa.unify_schemas([storage_schema(t) for t in types])
    return merged.append(pa.field("type", pa.string())).append(pa.field("day", pa.date32()))


def namespace_name(base_url: str, metadata: dict[str, Any], fingerprint: str) -> str:
    """The folder of an application: readable host and slugs, plus a digest that tells apart
    names the character clean-up made equal.

    Without the slugs, the folder belongs to the key alone: two keys are never guessed to share
    an application.

    Examples
    --------
    >>> namespace_name("https://api.croct.io", {"organizationSlug": "acme",
    ...     "workspaceSlug": "web", "applicationSlug": "shop"}, "ab" * 32)[:27]
    'api.croct.io~acme~web~shop~'
    """
    parts = urlsplit(base_url)
    host = _UNSAFE.sub("_", parts.netloc + parts.path.rstrip("/")) or "api"
    slugs = [metadata.get(name) for name in _SLUGS]
    if all(isinstance(s, str) and s for s in slugs):
        exact = "\n".join([base_url, *(str(s) for s in slugs)])
        names = [_UNSAFE.sub("_", str(s))[:40] for s in slugs]
    else:
        exact = "\n".join([base_url, "key", fingerprint])
        names = ["key"]
    digest = hashlib.sha256(exact.encode()).hexdigest()[:8]
    return "~".join([host, *names, digest])


def _namespace(
    root: str, client: Client, window: tuple[int | None, int], events: tuple[str, ...] | None
) -> tuple[Namespace, dict[str, Any]]:
    root_lock = CacheLock.at(os.path.join(root, "_lock"))
    keys_path = os.path.join(root, "_keys.json")
    with root_lock:
        salt = _salt(root)
        fingerprint = client.key_fingerprint(salt, KEY_ROUNDS)
        name = ((read_json(keys_path) or {}).get("keys") or {}).get(fingerprint)
    if isinstance(name, str):
        ns = Namespace(root, name)
        doc = read_json(ns.manifest)
        if doc is not None:
            return ns, dict(doc.get("metadata") or {})
    probe = client.get_page(window[0], window[1], events, page_size=1)
    name = namespace_name(client.base_url, probe.metadata, fingerprint)
    ns = Namespace(root, name)
    with ns.lock:
        manifest = load_manifest(ns, metadata=probe.metadata, base_url=client.base_url)
        if probe.metadata and manifest.metadata != probe.metadata:
            manifest.metadata = dict(probe.metadata)
            write_json(ns.manifest, manifest.to_json(), ns.tmp)
    with root_lock:
        _clean_root(root)
        doc = read_json(keys_path) or {}
        known = dict(doc.get("keys") or {})
        known[fingerprint] = name
        write_json(keys_path, {"keys": known}, os.path.join(root, "_tmp"))
    return ns, dict(probe.metadata)


def _clean_root(root: str) -> None:
    """Drop what a crash left at the top of the cache (call with the root lock held)."""
    for name in listdir(root):
        if name == "_tmp" or name.startswith("_trash-"):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def _salt(root: str) -> bytes:
    """The cache root's random salt, made on first use (call with the root lock held)."""
    path = os.path.join(root, "_salt")
    try:
        with open(path) as fh:
            return bytes.fromhex(fh.read().strip())
    except (FileNotFoundError, ValueError):
        pass
    salt = secrets.token_bytes(16)
    atomic_write(path, salt.hex().encode(), os.path.join(root, "_tmp"))
    return salt
