"""The files the command line reads and writes: checking an output path before any work,
writing an exported frame by its suffix, and reading one back for ``funnel``.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from typing import Any

from croct_pandas.cli_terms import UsageError

__all__ = ["OUTPUT_SUFFIXES", "check_output", "read_frame", "write_frame"]

OUTPUT_SUFFIXES = (".parquet", ".csv", ".jsonl")


def check_output(option: str, path: str, suffixes: Collection[str], accepts: str) -> None:
    """Check, before any work, that ``path`` is a file the command can write: a known suffix,
    an existing and writable folder, and not a folder itself.

    Examples
    --------
    >>> check_output("--output", "events.parquet", OUTPUT_SUFFIXES, "FILE.parquet")
    >>> check_output("--output", "/no/such/x.csv", OUTPUT_SUFFIXES, "FILE.csv")
    Traceback (most recent call last):
    ...
    croct_pandas.cli_terms.UsageError: --output '/no/such/x.csv': the folder /no/such does not exist
    """
    where = f"{option} {path!r}"
    if os.path.isdir(path):
        raise UsageError(f"{where} is a folder; give a file name: {accepts}")
    if os.path.splitext(path)[1].lower() not in suffixes:
        raise UsageError(f"{where}: the file must be {accepts}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(folder):
        raise UsageError(f"{where}: the folder {folder} does not exist")
    if not os.path.isdir(folder):
        raise UsageError(f"{where}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{where}: no permission to write in the folder {folder}")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise UsageError(f"{where}: the file exists and cannot be overwritten")


def write_frame(frame: Any, path: str) -> None:
    """Write a frame by the file's suffix: Parquet, CSV (lists as JSON) or JSON Lines events.

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd
    >>> path = os.path.join(tempfile.mkdtemp(), "events.csv")
    >>> write_frame(pd.DataFrame({"id": ["e1"], "type": ["tabOpened"]}), path)
    >>> open(path).read().splitlines()
    ['id,type', 'e1,tabOpened']
    """
    import orjson

    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".csv":
        import pyarrow as pa

        out = frame.copy()
        for name, dtype in out.dtypes.items():
            if "list<" in str(dtype):
                values = pa.array(out[name], from_pandas=True).to_pylist()
                out[name] = [None if v is None else orjson.dumps(v).decode() for v in values]
        out.to_csv(path, index=False)
    else:
        with open(path, "wb") as f:
            for event in frame.croct.to_events():
                f.write(orjson.dumps(event) + b"\n")


def read_frame(path: str) -> Any:
    """Read a file written by ``export``: Parquet as is, JSON Lines through the normaliser.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "events.jsonl")
    >>> with open(path, "w") as f:
    ...     _ = f.write('{"id": "e1", "timestamp": 1767225600000, "sessionId": "s", '
    ...                 '"userId": "u", "context": null, '
    ...                 '"payload": {"@type": "tabOpened", "tabId": "t"}}\\n')
    >>> df = read_frame(path)
    >>> list(df["type"]), str(df["timestamp"].dtype)
    (['tabOpened'], 'datetime64[ms, UTC]')
    >>> read_frame("no-such-file.parquet")
    Traceback (most recent call last):
    ...
    croct_pandas.cli_terms.UsageError: 'no-such-file.parquet': no such file
    """
    import orjson

    suffix = os.path.splitext(path)[1].lower()
    if not os.path.exists(path):
        raise UsageError(f"{path!r}: no such file")
    if suffix == ".parquet":
        from croct_pandas.frame import read_parquet_frame

        return read_parquet_frame(path)
    if suffix == ".jsonl":
        from croct_pandas.frame import build_frame
        from croct_pandas.normalize import normalize_items

        with open(path, "rb") as f:
            events = [orjson.loads(line) for line in f if line.strip()]
        return build_frame(normalize_items(events).tables.items())
    raise UsageError(f"{path!r}: funnel reads .parquet or .jsonl files written by `export`")
