"""Columns of the frame that are gathered across types, and the ones inferred from values.

A :class:`Column` holds, per event type, the Arrow array of a schema column; it applies the
schema's fallback (text where a number belongs turns the column to string, with one warning) and
builds enum categories from the schema. :class:`InferredValues` collects columns the schema does
not name (free-form object keys, unknown fields, unknown types) as dictionary-encoded values per
type, and :func:`build_inferred` types them over the whole result, as ``event-frame.md`` says.
"""

from __future__ import annotations

import threading
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

    Most columns belong to one or a few event types and are null elsewhere: their own values are
    gathered in frame order (a short take) and then spread onto the frame's rows, instead of a
    take over every row with an index that is mostly null (several times slower for text). The
    placement for a set of types is built once and shared by its columns; ``take`` may be called
    from several threads.

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
        self._starts = np.cumsum([0, *self.sizes[:-1]], dtype=np.int64)
        self._order = np.asarray(order.to_numpy(zero_copy_only=False), dtype=np.int64)
        source_types = np.repeat(np.arange(len(self.types), dtype=np.int32), self.sizes)
        #: the event type (its position in ``types``) of every frame row
        self.row_types = source_types[self._order]
        self._places: dict[tuple[str, ...], tuple[np.ndarray, pa.Array, bool]] = {}
        self._lock = threading.Lock()

    def take(
        self, present: Mapping[str, Any], type_: pa.DataType, large_text: bool = False
    ) -> pa.Array:
        """The column whose rows of type ``t`` are ``present[t]``, in frame order.

        With ``large_text``, a ``string`` column comes back as ``large_string`` (what pandas'
        string dtype holds), which costs nothing extra for most columns.
        """
        # a type whose values are all null adds nothing but nulls, which the spread gives anyway
        keys = tuple(
            t for t in self.types if t in present and present[t].null_count < len(present[t])
        )
        if not keys:
            return pa.nulls(
                self.rows, pa.large_string() if large_text and type_ == pa.string() else type_
            )
        pieces = [piece for t in keys for piece in _pieces(_as_type(present[t], type_))]
        source = pa.concat_arrays(pieces) if len(pieces) > 1 else pieces[0]
        if len(keys) == len(self.types):
            values = source.take(self.order)
            large = large_text and type_ == pa.string()
            return values.cast(pa.large_string()) if large else values
        rows, index, in_order = self._place(keys)
        # one type's rows mostly keep their order: a concatenation is then the gather already
        values = source if in_order and len(pieces) > 1 else source.take(index)
        return _spread(values, rows, self.rows, large_text=large_text)

    def _place(self, keys: tuple[str, ...]) -> tuple[np.ndarray, pa.Array, bool]:
        """The frame rows of ``keys``' types, for each its row in their concatenation, and
        whether those rows are simply 0, 1, 2, ..."""
        with self._lock:
            place = self._places.get(keys)
            if place is None:
                codes = [self.types.index(t) for t in keys]
                wanted = np.zeros(len(self.types), dtype=bool)
                wanted[codes] = True
                rows = np.flatnonzero(wanted[self.row_types])  # a lookup; np.isin sorts
                # source row s of type t sits at s - shift[t] in the concatenation of keys' rows
                shift = np.zeros(len(self.types), dtype=np.int64)
                position = 0
                for code in codes:
                    shift[code] = self._starts[code] - position
                    position += self.sizes[code]
                index = self._order[rows] - shift[self.row_types[rows]]
                in_order = bool((index == np.arange(len(index))).all())
                place = self._places[keys] = (rows, pa.array(index), in_order)
            return place


def _spread(
    values: pa.Array, rows: np.ndarray, length: int, *, large_text: bool = False
) -> pa.Array:
    """``length`` nulls with ``values[i]`` at row ``rows[i]`` (``rows`` ascending).

    Text and fixed-width values are laid out with numpy: the text bytes are reused as they are
    and only the offsets (64-bit ones for ``large_text``) and the validity bitmap are rebuilt.
    """
    kind = values.type
    buffers = values.buffers()
    offset_width = _OFFSET_WIDTHS.get(kind)
    byte_width = _byte_width(kind)
    if (offset_width is None and byte_width is None) or len(buffers) < 2 or buffers[1] is None:
        index = np.full(length, -1, dtype=np.int64)
        index[rows] = np.arange(len(values))
        return values.take(pa.array(index, mask=index < 0))
    valid = np.zeros(length, dtype=bool)
    valid[rows] = values.is_valid().to_numpy(zero_copy_only=False) if values.null_count else True
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    nulls = length - len(values) + values.null_count
    if offset_width is not None:
        offsets = np.frombuffer(
            buffers[1], offset_width, len(values) + 1, values.offset * offset_width.itemsize
        )
        if large_text and kind == pa.string():
            kind, offset_width = pa.large_string(), np.dtype(np.int64)
        buffer, spread = _zeros(length + 1, offset_width)
        spread[0] = offsets[0]
        spread[rows + 1] = np.diff(offsets)
        np.cumsum(spread, dtype=offset_width, out=spread)
        data = buffers[2] if buffers[2] is not None else pa.py_buffer(b"")
        return pa.Array.from_buffers(kind, length, [bitmap, buffer, data], nulls)
    assert byte_width is not None
    raw = np.dtype(f"u{byte_width}")
    buffer, spread = _zeros(length, raw)
    spread[rows] = np.frombuffer(buffers[1], raw, len(values), values.offset * byte_width)
    return pa.Array.from_buffers(kind, length, [bitmap, buffer], nulls)


def _zeros(count: int, dtype: np.dtype) -> tuple[pa.Buffer, np.ndarray]:
    """A zeroed buffer from Arrow's pool and a numpy view of it.

    The pool reuses its memory; a fresh numpy array of this size is a new mapping whose page
    faults cost more than the work done in it.
    """
    buffer = pa.allocate_buffer(count * dtype.itemsize)
    view = np.frombuffer(buffer, dtype=dtype, count=count)
    view[:] = 0
    return buffer, view


_OFFSET_WIDTHS: dict[pa.DataType, np.dtype[Any]] = {
    pa.string(): np.dtype(np.int32),
    pa.binary(): np.dtype(np.int32),
    pa.large_string(): np.dtype(np.int64),
    pa.large_binary(): np.dtype(np.int64),
}


def _byte_width(kind: pa.DataType) -> int | None:
    """Bytes per value of a plain fixed-width type (numbers, dates, times), else None."""
    plain = (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_timestamp(kind)
        or pa.types.is_date(kind)
        or pa.types.is_duration(kind)
    )
    return kind.bit_width // 8 if plain and kind.bit_width in (8, 16, 32, 64) else None


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
    # one pass over the rows (encoding); the lookups then run over the few distinct values
    encoded = values.dictionary_encode()
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
