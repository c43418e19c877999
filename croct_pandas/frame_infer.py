"""Columns of the frame that are gathered across types, and the ones inferred from values.

A :class:`Column` holds, per event type, the Arrow array of a schema column; it applies the
schema's fallback (text where a number belongs turns the column to string, with one warning) and
builds enum categories from the schema. :class:`InferredValues` collects columns the schema does
not name (free-form object keys, unknown fields, unknown types) as dictionary-encoded values per
type, and :func:`build_inferred` types them over the whole result, as ``event-frame.md`` says.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from croct_pandas.errors import SchemaWarning
from croct_pandas.schema import ENUMS

__all__ = [
    "MISSING",
    "Column",
    "InferredValues",
    "Layout",
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


class Layout:
    """Where each event type's rows land in the sorted frame, and gathering columns there.

    Most columns belong to one or a few event types and are null elsewhere: they are gathered
    from their own values with an index that is null on the other rows, instead of a take over
    every type's rows. The index for a set of types is built once and shared by its columns.

    Examples
    --------
    >>> layout = Layout(["a", "b"], [2, 1], pa.array([2, 0, 1]))
    >>> layout.take({"a": pa.array([1.0, 2.0])}, pa.float64()).to_pylist()
    [None, 1.0, 2.0]
    """

    def __init__(self, types: Sequence[str], sizes: Sequence[int], order: pa.Array) -> None:
        self.types = list(types)
        self.sizes = list(sizes)
        self.order = order
        self.rows = int(sum(sizes))
        self._offsets = dict(zip(self.types, np.cumsum([0, *self.sizes[:-1]]).tolist()))
        self._order = np.asarray(order.to_numpy(zero_copy_only=False), dtype=np.int64)
        self._indices: dict[tuple[str, ...], pa.Array] = {}

    def take(self, present: Mapping[str, Any], type_: pa.DataType) -> pa.Array:
        """The column whose rows of type ``t`` are ``present[t]``, in frame order."""
        keys = tuple(t for t in self.types if t in present)
        if not keys:
            return pa.nulls(self.rows, type_)
        pieces = [piece for t in keys for piece in _pieces(_as_type(present[t], type_))]
        source = pa.concat_arrays(pieces) if len(pieces) > 1 else pieces[0]
        if len(keys) == len(self.types):
            return source.take(self.order)
        return source.take(self._index(keys))

    def _index(self, keys: tuple[str, ...]) -> pa.Array:
        index = self._indices.get(keys)
        if index is None:
            local = np.full(self.rows, -1, dtype=np.int64)
            position = 0
            for t in keys:
                offset, n = self._offsets[t], self.sizes[self.types.index(t)]
                local[offset : offset + n] = np.arange(position, position + n)
                position += n
            gathered = local[self._order]
            index = pa.array(gathered, mask=gathered < 0)
            self._indices[keys] = index
        return index


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

    def gather(self, name: str, layout: Layout) -> pa.Array:
        if self.raw:
            return self._fallback(name, layout.types, layout.sizes, layout.order)
        values = layout.take(self.present, self.type)
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


def _as_type(arr: Any, type_: pa.DataType) -> Any:
    return arr if arr.type == type_ else pc.cast(arr, type_)


def _pieces(arr: Any) -> list[pa.Array]:
    return arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]


def _is_missing(value: Any) -> bool:
    return value is MISSING


def _as_text(arr: Any) -> Any:
    if pa.types.is_string(arr.type):
        return arr
    if pa.types.is_timestamp(arr.type):
        return pc.strftime(arr, format="%Y-%m-%dT%H:%M:%S.%LZ")
    return pc.cast(arr, pa.string())


def _categorical(name: str, enum: str, values: pa.Array) -> pa.DictionaryArray:
    known = ENUMS[enum]
    seen = [v for v in pc.unique(values).to_pylist() if v is not None]
    new = sorted(set(seen) - set(known))
    if new:
        _warn(f"column {name!r} has values outside the schema's list: {', '.join(map(repr, new))}")
    categories = pa.array(sorted(set(known) | set(seen)), pa.string())
    indices = pc.index_in(values, value_set=categories).cast(pa.int32())
    return pa.DictionaryArray.from_arrays(indices, categories)


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
    arrays: dict[str, pa.Array]
    type: pa.DataType

    def gather(self, name: str, layout: Layout) -> pa.Array:
        return layout.take(self.arrays, self.type)


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
