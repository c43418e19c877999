"""The cache's plain file operations, which know nothing of the dataset's layout.

A file is written under a temporary name in a ``_tmp`` folder and renamed into place, so a reader
never sees it half-written; a JSON document is written the same way; a dataset folder is deleted
file by file in place, any other folder by renaming it aside first; a folder that is not there
lists as empty. See :mod:`croct_pandas.cache_store` for the layout these files make up.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = [
    "atomic_write",
    "listdir",
    "read_json",
    "remove_dataset",
    "remove_file",
    "remove_tree",
    "write_json",
]


# -- writing files -------------------------------------------------------------------------


def atomic_write(path: str, data: bytes, tmp_dir: str) -> None:
    """Write ``data`` to ``path`` through a temporary file in ``tmp_dir`` and one rename.

    Examples
    --------
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> atomic_write(os.path.join(root, "a", "f"), b"x", os.path.join(root, "_tmp"))
    >>> open(os.path.join(root, "a", "f"), "rb").read(), os.listdir(os.path.join(root, "_tmp"))
    (b'x', [])
    """
    os.makedirs(tmp_dir, exist_ok=True)
    tmp = os.path.join(tmp_dir, f"_tmp-{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.replace(tmp, path)
    except BaseException:
        remove_file(tmp)
        raise


def write_json(path: str, doc: Mapping[str, Any], tmp_dir: str) -> None:
    """Write a JSON document by :func:`atomic_write`.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "doc.json")
    >>> write_json(path, {"a": 1}, os.path.dirname(path))
    >>> read_json(path), read_json(path + ".missing")
    ({'a': 1}, None)
    """
    atomic_write(path, orjson.dumps(doc, option=orjson.OPT_INDENT_2), tmp_dir)


def read_json(path: str) -> dict[str, Any] | None:
    """The document at ``path``; None when it is missing or unreadable (a crash never leaves a
    half-written one, but a user might)."""
    try:
        with open(path, "rb") as fh:
            doc = orjson.loads(fh.read())
    except (OSError, orjson.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def remove_file(path: str) -> None:
    """Delete a file if it is there.

    Examples
    --------
    >>> remove_file("/nonexistent/croct-pandas-file")
    """
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def remove_dataset(path: str) -> None:
    """Delete a dataset folder file by file, in place.

    Never renamed aside first: a folder of ``.parquet`` files anywhere under the cache would be
    listed by a ``**/*.parquet`` reader beside the real one. A crash part way leaves fewer
    files, never a copy.

    Examples
    --------
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(root, "events", "type=a"))
    >>> remove_dataset(os.path.join(root, "events"))
    >>> os.listdir(root)
    []
    """
    for folder, dirs, files in os.walk(path, topdown=False):
        for name in files:
            remove_file(os.path.join(folder, name))
        for name in dirs:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(folder, name))
    with contextlib.suppress(OSError):
        os.rmdir(path)


def remove_tree(path: str) -> None:
    """Delete a folder holding no dataset file by first renaming it aside, so a crash never
    leaves half of it in place.

    Examples
    --------
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(root, "_staging", "chain"))
    >>> remove_tree(os.path.join(root, "_staging"))
    >>> os.listdir(root)
    []
    """
    if not os.path.exists(path):
        return
    parent = os.path.dirname(path)
    trash = os.path.join(parent, f"_trash-{uuid.uuid4().hex}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


# -- reading folders ---------------------------------------------------------------------


def listdir(path: str) -> list[str]:
    """The names in a folder; none when it does not exist.

    Examples
    --------
    >>> listdir("/nonexistent/croct-pandas-folder")
    []
    """
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []
