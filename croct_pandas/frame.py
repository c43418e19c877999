"""Storage-schema tables (fresh pages or cache files) -> the event frame of ``event-frame.md``.

Everything here works on whole columns: free-form objects and ``_croct_raw`` are parsed once per
*distinct* value (dictionary-encoded first), inference runs over the whole result, rows are
sorted once and every column is gathered once (see ``Layout``) and becomes its pandas column
at once (see ``FrameBuilder``). The Arrow work (per-type preparation, gathers, conversions) runs
on a small thread pool when the input is large; whatever may warn runs on the calling thread, in
column order, so warnings are the same either way. The pool lives
in :mod:`croct_pandas.frame_threads`, the placement in :mod:`croct_pandas.frame_layout`, the
dtypes in :mod:`croct_pandas.frame_pandas`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from functools import partial
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from croct_pandas.errors import SchemaWarning
from croct_pandas.frame_infer import (
    MISSING,
    Column,
    InferredValues,
    build_inferred,
    flatten_objects,
    join_schema_columns,
)
from croct_pandas.frame_layout import Layout
from croct_pandas.frame_pandas import (
    DTYPE_BACKENDS,
    FrameBuilder,
    check_dtype_backend,
    read_parquet_frame,
)
from croct_pandas.frame_threads import _Workers
from croct_pandas.normalize import RAW_COLUMN, storage_schema
from croct_pandas.schema import (
    CONTEXT_FIELDS,
    EVENT_TYPES,
    Field,
    arrow_type,
    column_order,
    fields_for,
)

__all__ = [
    "DTYPE_BACKENDS",
    "build_frame",
    "check_dtype_backend",
    "empty_frame",
    "read_parquet_frame",
]

_TIME = pa.timestamp("ms", tz="UTC")
_CORE = ("id", "type", "timestamp", "sessionId", "userId", "systemTimestamp")
_TIME_CORE = ("timestamp", "systemTimestamp")
_CORE_ARROW = {
    "id": pa.string(),
    "timestamp": _TIME,
    "sessionId": pa.string(),
    "userId": pa.string(),
    "systemTimestamp": _TIME,
}


def build_frame(
    tables: Iterable[tuple[str, pa.Table]],
    *,
    events: Sequence[str] | None = None,
    dtype_backend: str | None = None,
    start: int | None = None,
    end: int | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Assemble the event frame from ``(event_type, storage table)`` pairs.

    Chunks of one type may repeat events (a retried page, overlapping windows): the chunk given
    last wins. Only rows with ``start <= timestamp < end`` and (when ``events`` is given) of
    those types are kept.

    Examples
    --------
    >>> from croct_pandas.normalize import normalize_items
    >>> page = normalize_items([{"id": "e1", "timestamp": 1767225600000, "sessionId": "s",
    ...     "userId": "u", "context": None, "payload": {"@type": "tabOpened", "tabId": "t"}}])
    >>> df = build_frame(page.tables.items(), events=["tabOpened"])
    >>> list(df.columns[:5]), str(df["timestamp"].dtype)
    (['id', 'type', 'timestamp', 'sessionId', 'userId'], 'datetime64[ms, UTC]')
    """
    wanted = None if events is None else set(events)
    chunks: dict[str, list[pa.Table]] = {}
    for event_type, table in tables:
        if wanted is None or event_type in wanted:
            chunks.setdefault(event_type, []).append(table)
    types = sorted(chunks)
    with _Workers(sum(t.num_rows for c in chunks.values() for t in c)) as workers:
        prepare = partial(_prepare, start=start, end=end)
        prepared = workers.map(prepare, [chunks.pop(t) for t in types])
        per_type = {t: table for t, table in zip(types, prepared) if table.num_rows}
        del prepared
        known_types = list(EVENT_TYPES) if events is None else list(events)
        frame = _assemble(per_type, known_types, dtype_backend, workers)
    frame.attrs["croct"] = dict(attrs or {})
    return frame


def empty_frame(
    events: Sequence[str] | None = None, dtype_backend: str | None = None
) -> pd.DataFrame:
    """The frame of no events: every column of the requested types, with its dtype."""
    return build_frame([], events=events, dtype_backend=dtype_backend)


def _prepare(chunks: list[pa.Table], *, start: int | None, end: int | None) -> pa.Table:
    """One type's chunks as one table: windowed, each event once."""
    # chunks stay as they are: each column is concatenated once, when it is gathered
    return _last_copy_wins(_window(pa.concat_tables(chunks), start, end))


def _window(table: pa.Table, start: int | None, end: int | None) -> pa.Table:
    if start is None and end is None:
        return table
    ts = table.column("timestamp").cast(pa.int64())
    bounds = pc.min_max(ts).as_py()
    low, high = bounds["min"], bounds["max"]
    if (
        ts.null_count == 0
        and low is not None
        and (start is None or low >= start)
        and (end is None or high < end)
    ):
        return table  # every row is inside: no copy
    mask = None
    if start is not None:
        mask = pc.greater_equal(ts, start)
    if end is not None:
        below = pc.less(ts, end)
        mask = below if mask is None else pc.and_(mask, below)
    return table.filter(mask)


def _last_copy_wins(table: pa.Table) -> pa.Table:
    ids = table.column("id")
    # unique is about twice as fast as count_distinct; nulls count there, so rule them out
    if ids.null_count == 0 and len(pc.unique(ids)) == table.num_rows:
        return table
    indexed = pa.table({"id": ids, "_row": pa.array(range(table.num_rows), pa.int64())})
    last = indexed.group_by("id", use_threads=False).aggregate([("_row", "max")])
    keep = pc.sort_indices(last.column("_row_max"))
    return table.take(last.column("_row_max").take(keep))


# -- assembling ----------------------------------------------------------------------------


def _assemble(
    per_type: dict[str, pa.Table],
    known_types: list[str],
    dtype_backend: str | None,
    workers: _Workers,
) -> pd.DataFrame:
    types = list(per_type)
    sizes = [per_type[t].num_rows for t in types]
    # the sort runs on a worker while this thread reads the free-form objects
    layout_made = workers.submit(_layout, per_type, types, sizes)
    columns: dict[str, Column] = {}
    for name in _CORE:
        if name == "type":
            continue
        columns[name] = Column(_CORE_ARROW[name], {t: per_type[t].column(name) for t in types})
    schema_cols = column_order(set(known_types) | set(types))
    stored = {t: set(per_type[t].schema.names) for t in types}
    for name, f in schema_cols:
        present = {t: per_type[t].column(name) for t in types if name in stored[t]}
        columns[name] = Column(arrow_type(f), present, enum=f.enum)
    builder = FrameBuilder(dtype_backend)
    taken: dict[str, Future[Any]] = {}
    inferred = InferredValues()
    for t in types:
        _expand_maps(t, per_type[t], inferred, columns)
        _apply_raw(t, per_type[t], inferred, columns)
    layout = layout_made.result()
    flat = flatten_objects(inferred)
    # raw values have marked their schema columns by now: the others are taken on the workers
    # while this thread works out the inferred ones (an inferred name that is a schema column
    # joins it first)
    settled = {n: c for n, c in columns.items() if n not in flat}
    _submit_takes(settled, layout, builder, dtype_backend, workers, taken)
    extra = build_inferred(flat, sizes_by_type=dict(zip(types, sizes)))
    join_schema_columns(extra, columns)
    _submit_takes(columns, layout, builder, dtype_backend, workers, taken)
    _submit_takes(extra, layout, builder, dtype_backend, workers, taken)
    names = _column_names(columns, extra, schema_cols)
    # the gathers of categories and raw values run on this thread: first, while the workers
    # still take the other columns
    gathered: dict[str, pa.Array] = {"type": _type_column(types, known_types, layout.row_types)}
    for name in names:
        col = columns.get(name) or extra.get(name)
        if col is None:  # the type column, made above
            continue
        if isinstance(col, Column) and col.raw:
            gathered[name] = col.gather(name, layout)  # the fallback, not the take, makes it
        elif col.enum is not None:
            gathered[name] = col.gather(name, layout, taken.pop(name).result())
    for name in names:
        if name in gathered:
            builder.add(name, gathered.pop(name))
        else:
            builder.put(name, taken.pop(name).result())
    return builder.frame()


def _layout(per_type: dict[str, pa.Table], types: list[str], sizes: list[int]) -> Layout:
    return Layout(types, sizes, _sort_indices(per_type, types))


def _submit_takes(
    columns: Mapping[str, Any],
    layout: Layout,
    builder: FrameBuilder,
    dtype_backend: str | None,
    workers: _Workers,
    taken: dict[str, Future[Any]],
) -> None:
    """Start the take of every column in ``columns`` (raw ones have none)."""
    # columns with categories first: this thread gathers them as soon as they are taken
    for name, col in sorted(columns.items(), key=lambda item: item[1].enum is None):
        if name in taken or (isinstance(col, Column) and col.raw):
            continue
        # pandas' string dtype holds large_string: made in the take, not cast by to_pandas
        text = dtype_backend != "pyarrow" and col.enum is None
        # without an enum the take is the column: it becomes pandas' at once, so its Arrow
        # copy is gone before most others are made
        task = _pandas_take if col.enum is None else _encoded_take
        if dtype_backend is None and col.enum is None and col.type == pa.float64():
            task = _float_take
        taken[name] = workers.submit(task, layout, builder, col, text)


def _encoded_take(layout: Layout, builder: FrameBuilder, col: Any, text: bool) -> pa.Array:
    # a column with categories is dictionary-encoded here, on the worker: the calling thread,
    # which checks its values against the schema's, then only looks at the few distinct ones
    return layout.take(col.present, col.type, text).dictionary_encode()


def _pandas_take(layout: Layout, builder: FrameBuilder, col: Any, text: bool) -> pd.Series:
    return builder.convert(layout.take(col.present, col.type, text))


def _float_take(layout: Layout, builder: FrameBuilder, col: Any, text: bool) -> pd.Series:
    floats = layout.spread_floats(col.present)
    if floats is None:
        return _pandas_take(layout, builder, col, text)
    return pd.Series(floats, copy=False)


def _sort_indices(per_type: dict[str, pa.Table], types: list[str]) -> pa.Array:
    if not types:
        return pa.array([], pa.int64())
    # one contiguous array per key: a multi-key sort over many chunks is ~50x slower
    keys = pa.table(
        {
            "timestamp": _contiguous([per_type[t].column("timestamp") for t in types], _TIME),
            "id": _contiguous([per_type[t].column("id") for t in types], pa.string()),
        }
    )
    return pc.sort_indices(keys, sort_keys=[("timestamp", "ascending"), ("id", "ascending")])


def _contiguous(columns: list[pa.ChunkedArray], type_: pa.DataType) -> pa.Array:
    chunks = [chunk for column in columns for chunk in column.chunks]
    return pa.concat_arrays(chunks) if chunks else pa.array([], type_)


def _column_names(
    columns: dict[str, Column],
    extra: Mapping[str, object],
    schema_cols: list[tuple[str, Field]],
) -> list[str]:
    names = list(_CORE)
    context_schema = [n for n, _ in schema_cols if n.startswith("context.")]
    payload_schema = [n for n, _ in schema_cols if n.startswith("payload.")]
    context_extra = sorted(n for n in extra if n.startswith("context."))
    payload_extra = sorted(n for n in extra if n.startswith("payload."))
    other = sorted(
        n for n in extra if not n.startswith(("context.", "payload.")) and n not in _CORE
    )
    return names + context_schema + context_extra + payload_schema + payload_extra + other


def _type_column(
    types: Sequence[str], known_types: Sequence[str], row_types: np.ndarray
) -> pa.Array:
    """The ``type`` column from each frame row's position in ``types``."""
    categories = sorted(set(known_types) | set(types))
    code = {t: i for i, t in enumerate(categories)}
    codes = np.array([code[t] for t in types], dtype=np.int32)
    return pa.DictionaryArray.from_arrays(
        pa.array(codes[row_types]), pa.array(categories, pa.string())
    )


# -- free-form objects and raw values ------------------------------------------------------


def _distinct(values: pa.ChunkedArray) -> tuple[pa.Array, list[Any]]:
    """Dictionary-encode a JSON-text column: (indices, parsed distinct values)."""
    encoded = values.combine_chunks().dictionary_encode()
    parsed = [orjson.loads(text) for text in encoded.dictionary.to_pylist()]
    return encoded.indices, parsed


def _expand_maps(
    event_type: str, table: pa.Table, inferred: InferredValues, columns: dict[str, Column]
) -> None:
    maps = [("context.", f) for f in CONTEXT_FIELDS if f.kind == "map"]
    maps += [("payload.", f) for f in fields_for(event_type) if f.kind == "map"]
    for prefix, f in maps:
        name = prefix + f.name
        if table.column(name).null_count == table.num_rows:
            continue
        indices, objects = _distinct(table.column(name))
        keys = sorted({k for o in objects for k in o})
        for key in keys:
            values = [o.get(key) for o in objects]
            inferred.add(f"{name}.{key}", event_type, indices, values, expect=f.element)


def _apply_raw(
    event_type: str, table: pa.Table, inferred: InferredValues, columns: dict[str, Column]
) -> None:
    raw = table.column(RAW_COLUMN)
    if raw.null_count == table.num_rows:
        return
    indices, objects = _distinct(raw)
    missing = MISSING
    paths = sorted({k for o in objects for k in o})
    names = set(storage_schema(event_type).names)
    for path in paths:
        values = [o.get(path, missing) for o in objects]
        if path in _TIME_CORE:
            # the frame's order and windows rest on these: they stay datetimes (NaT here) and
            # the value as sent goes beside them
            warn_schema(
                f"column {path!r} holds values that are not epoch milliseconds; "
                f"they are kept in {path + '_raw'!r}"
            )
            inferred.add(
                path + "_raw", event_type, indices, [None if v is missing else v for v in values]
            )
        elif path in names and path in columns:
            columns[path].add_raw(event_type, indices, values)
        else:
            inferred.add(path, event_type, indices, [None if v is missing else v for v in values])


def warn_schema(message: str) -> None:
    warnings.warn(message, SchemaWarning, stacklevel=5)
