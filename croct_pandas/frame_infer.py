"""Columns of the frame that are gathered across types, and the ones inferred from values.

A :class:`Column` holds, per event type, the Arrow array of a schema column; it applies the
schema's fallback (text where a number belongs turns the column to string, with one warning) and
builds enum categories from the schema. :class:`InferredValues` collects columns the schema does
not name (free-form object keys, unknown fields, unknown types) as dictionary-encoded values per
type, and :func:`build_inferred` types them over the whole result, as ``event-frame.md`` says.
Placing the values in frame order is :mod:`croct_pandas.frame_layout`'s job.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from croct_pandas.errors import SchemaWarning
from croct_pandas.frame_layout import Layout, _pieces
from croct_pandas.schema import ENUMS

__all__ = [
    "MISSING",
    "Column",
    "InferredValues",
    "build_inferred",
    "flatten_objects",
]


class _Missing:
    """A raw object that lacks the path asked for (unlike a JSON null)."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()


def _warn(message: str) -> None:
    warnings.warn(message, SchemaWarning, stacklevel=2)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


@dataclass
class Column:
    """One output column: an Arrow array per event type that has it."""

    type: pa.DataType
    present: dict[str, Any]
    enum: str | None = None
    #: per type: (indices into ``values``, raw wire value per distinct raw object or a marker)
    raw: dict[str, tuple[pa.Array, list[Any]]] = field(default_factory=dict)

    def add_raw(self, event_type: str, indices: pa.Array, values: list[Any]) -> None:
        self.raw[event_type] = (indices, values)

    def gather(self, name: str, layout: Layout, taken: pa.Array | None = None) -> pa.Array:
        """The finished column; ``taken`` is ``layout.take(present, type)`` if done already.

        The take never warns, so it may run in a worker thread; this may warn (fallbacks, new
        enum values), so it runs on the calling thread, in column order.
        """
        if self.raw:
            return self._fallback(name, layout.types, layout.sizes, layout.order)
        values = layout.take(self.present, self.type) if taken is None else taken
        if self.enum is not None:
            return _categorical(name, self.enum, values)
        return values

    def _fallback(
        self, name: str, types: Sequence[str], sizes: Sequence[int], order: pa.Array
    ) -> pa.Array:
        if pa.types.is_list(self.type):
            return self._list_fallback(name, types, sizes, order)
        _warn(f"column {name!r} holds values that are not {self.type}; it is kept as text")
        chunks = []
        for t, n in zip(types, sizes):
            arr = self.present.get(t)
            base = pa.nulls(n, pa.string()) if arr is None else _as_text(arr)
            if t in self.raw:
                indices, values = self.raw[t]
                texts = [None if _is_missing(v) else _text(v) for v in values]
                raw_text = pa.array(texts, pa.string()).take(indices)
                base = pc.if_else(pc.is_valid(raw_text), raw_text, base)
            chunks.extend(_pieces(base))
        return pa.chunked_array(chunks, pa.string()).take(order).combine_chunks()

    def _list_fallback(
        self, name: str, types: Sequence[str], sizes: Sequence[int], order: pa.Array
    ) -> pa.Array:
        values: list[Any] = []
        for t, n in zip(types, sizes):
            arr = self.present.get(t)
            rows = [None] * n if arr is None else arr.to_pylist()
            if t in self.raw:
                indices, raw_values = self.raw[t]
                for row, j in enumerate(indices.to_pylist()):
                    if j is not None and not _is_missing(raw_values[j]):
                        rows[row] = raw_values[j]
            values.extend(rows)
        try:
            arr = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            _warn(f"column {name!r} holds lists of mixed shapes; it is kept as JSON text")
            arr = pa.array([None if v is None else _text(v) for v in values], pa.string())
        return arr.take(order)


def _is_missing(value: Any) -> bool:
    return value is MISSING


def _as_text(arr: Any) -> Any:
    if pa.types.is_string(arr.type):
        return arr
    if pa.types.is_timestamp(arr.type):
        # %S of a millisecond time holds its fraction ("05.123")
        return pc.strftime(arr, format="%Y-%m-%dT%H:%M:%SZ")
    return pc.cast(arr, pa.string())


def _categorical(name: str, enum: str, values: pa.Array) -> pa.DictionaryArray:
    """The enum column's categories (with a warning for values outside the schema's list);
    ``values`` may come dictionary-encoded already."""
    known = ENUMS[enum]
    # one pass over the rows (encoding); the lookups then run over the few distinct values
    encoded = values if pa.types.is_dictionary(values.type) else values.dictionary_encode()
    seen = [v for v in encoded.dictionary.to_pylist() if v is not None]
    new = sorted(set(seen) - set(known))
    if new:
        _warn(f"column {name!r} has values outside the schema's list: {', '.join(map(repr, new))}")
    categories = pa.array(sorted(set(known) | set(seen)), pa.string())
    positions = pc.index_in(encoded.dictionary, value_set=categories).cast(pa.int32())
    return pa.DictionaryArray.from_arrays(positions.take(encoded.indices), categories)


# -- inferred columns ----------------------------------------------------------------------


@dataclass
class _Entry:
    event_type: str
    indices: pa.Array
    values: list[Any]
    expect: Any = None


class InferredValues:
    """Values of columns the schema does not name, per path and type, dictionary-encoded."""

    def __init__(self) -> None:
        self.paths: dict[str, list[_Entry]] = {}

    def add(
        self,
        path: str,
        event_type: str,
        indices: pa.Array,
        values: list[Any],
        expect: pa.DataType | str | None = None,
    ) -> None:
        self.paths.setdefault(path, []).append(_Entry(event_type, indices, values, expect))


def flatten_objects(inferred: InferredValues) -> dict[str, list[_Entry]]:
    """Objects become one column per leaf (recursively); other values stay at their path."""
    out: dict[str, list[_Entry]] = {}
    pending = list(inferred.paths.items())
    while pending:
        path, entries = pending.pop()
        non_null = [v for e in entries for v in e.values if v is not None]
        untyped = all(e.expect in (None, "any") for e in entries)
        if untyped and non_null and all(isinstance(v, dict) for v in non_null):
            keys = sorted({k for v in non_null for k in v})
            for key in keys:
                child = [
                    _Entry(e.event_type, e.indices, [_get(v, key) for v in e.values], e.expect)
                    for e in entries
                ]
                pending.append((f"{path}.{key}", child))
        else:
            out[path] = entries
    return out


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


@dataclass
class _InferredColumn:
    present: dict[str, pa.Array]
    type: pa.DataType
    enum: None = None

    def gather(self, name: str, layout: Layout, taken: pa.Array | None = None) -> pa.Array:
        return layout.take(self.present, self.type) if taken is None else taken


def build_inferred(
    flat: dict[str, list[_Entry]], *, sizes_by_type: dict[str, int]
) -> dict[str, _InferredColumn]:
    """Type each inferred column over all its values, and build its per-type arrays."""
    columns: dict[str, _InferredColumn] = {}
    for path, entries in flat.items():
        non_null = [v for e in entries for v in e.values if v is not None]
        if not non_null:
            continue  # a key that only ever holds null is the same as a missing key
        expect = next((e.expect for e in entries if e.expect not in (None, "any")), None)
        type_, convert = _infer(path, non_null, expect)
        arrays = {}
        for e in entries:
            converted = [None if v is None else convert(v) for v in e.values]
            arrays[e.event_type] = pa.array(converted, type_).take(e.indices)
        columns[path] = _InferredColumn(arrays, type_)
    return columns


def join_schema_columns(extra: dict[str, _InferredColumn], columns: dict[str, Column]) -> None:
    """Move inferred columns whose name is a schema column's into that column.

    A type this package does not know (or an unknown key of a known type) can use another type's
    field name: one column holds both. Values of the column's type join it as they are
    (integers join a float column as floats); others make it fall back to text, with a warning,
    as a contradicting value of its own type would. An inferred ``type`` (a top-level key of
    that name) cannot share the event type's column: it is kept as ``type_raw``, with a warning.

    Examples
    --------
    >>> columns = {"payload.total": Column(pa.float64(), {"orderPlaced": pa.array([1.5])})}
    >>> extra = {"payload.total": _InferredColumn({"productOrdered": pa.array([2])}, pa.int64())}
    >>> join_schema_columns(extra, columns)
    >>> extra, columns["payload.total"].present["productOrdered"].to_pylist()
    ({}, [2.0])
    """
    if "type" in extra:
        _warn("events hold a top-level key 'type' (not the event type); it is kept in 'type_raw'")
        extra["type_raw"] = extra.pop("type")
    for name in [n for n in extra if n in columns]:
        column, inferred = columns[name], extra.pop(name)
        for event_type, values in inferred.present.items():
            if values.type == pa.int64() and column.type == pa.float64():
                values = values.cast(pa.float64())
            if values.type == column.type and event_type not in column.present:
                column.present[event_type] = values
            else:  # the fallback keeps every value, as sent
                rows = pa.array(range(len(values)), pa.int64())
                column.add_raw(event_type, rows, values.to_pylist())


def _identity(value: Any) -> Any:
    return value


def _infer(path: str, values: list[Any], expect: Any) -> tuple[pa.DataType, Callable[[Any], Any]]:
    kinds = {type(v) for v in values}
    if expect == "float":
        if kinds <= {int, float}:
            return pa.float64(), float
        return _mixed(path)
    if expect == "string":
        if kinds <= {str}:
            return pa.string(), _identity
        return _mixed(path)
    if not kinds:
        return pa.string(), _identity
    if kinds == {bool}:
        return pa.bool_(), _identity
    if kinds == {int}:
        if all(-(2**63) <= v < 2**63 for v in values):
            return pa.int64(), _identity
        return pa.float64(), float
    if kinds <= {int, float}:
        return pa.float64(), float
    if kinds == {str}:
        return pa.string(), _identity
    if kinds == {list}:
        try:
            return pa.array(values).type, _identity
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
    return _mixed(path)


def _mixed(path: str) -> tuple[pa.DataType, Callable[[Any], Any]]:
    _warn(f"column {path!r} mixes value types; it is kept as text (non-strings as JSON)")
    return pa.string(), _text
