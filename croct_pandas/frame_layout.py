"""Where each event type's rows land in the sorted frame, and placing columns there.

The frame is every type's rows sorted together; most columns belong to one or a few types. This
module turns per-type Arrow values into one frame-ordered column without a take over every row
(see :class:`Layout`): the frame's slowest step when done naively, and shared by every column.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Layout"]


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
        self._places: dict[tuple[str, ...], tuple[_Rows, pa.Array, bool]] = {}
        self._lock = threading.Lock()

    def take(
        self, present: Mapping[str, Any], type_: pa.DataType, large_text: bool = False
    ) -> pa.Array:
        """The column whose rows of type ``t`` are ``present[t]``, in frame order.

        With ``large_text``, a ``string`` column comes back as ``large_string`` (what pandas'
        string dtype holds), which costs nothing extra for most columns.
        """
        values, rows = self._values(present, type_)
        large = large_text and type_ == pa.string()
        if values is None:
            return pa.nulls(self.rows, pa.large_string() if large else type_)
        if rows is None:
            return values.cast(pa.large_string()) if large else values
        return _spread(values, rows, large_text=large_text)

    def spread_floats(self, present: Mapping[str, Any]) -> np.ndarray | None:
        """A ``float64`` column that only some types have, straight into the numpy array pandas
        keeps (NaN for null, no Arrow copy on the way); None for one every type has or none."""
        values, rows = self._values(present, pa.float64())
        if values is None or rows is None:
            return None
        out = np.full(self.rows, np.nan)
        out[rows.rows] = values.to_numpy(zero_copy_only=False)
        return out

    def _values(
        self, present: Mapping[str, Any], type_: pa.DataType
    ) -> tuple[pa.Array | None, _Rows | None]:
        """The column's own values in frame order and the rows they go to (None: every row);
        ``(None, None)`` when no type has a value."""
        # a type whose values are all null adds nothing but nulls, which the spread gives anyway
        keys = tuple(
            t for t in self.types if t in present and present[t].null_count < len(present[t])
        )
        if not keys:
            return None, None
        pieces = [piece for t in keys for piece in _pieces(_as_type(present[t], type_))]
        source = pa.concat_arrays(pieces) if len(pieces) > 1 else pieces[0]
        if len(keys) == len(self.types):
            return source.take(self.order), None
        rows, index, in_order = self._place(keys)
        # one type's rows mostly keep their order: a concatenation is then the gather already
        return (source if in_order and len(pieces) > 1 else source.take(index)), rows

    def _place(self, keys: tuple[str, ...]) -> tuple[_Rows, pa.Array, bool]:
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
                place = self._places[keys] = (_Rows(rows, self.rows), pa.array(index), in_order)
            return place


class _Rows:
    """The frame rows of a set of types (ascending), and what every column spread onto them
    shares: the validity bitmap of a column without nulls, and how many of the frame's text
    offsets each of the column's own offsets fills."""

    def __init__(self, rows: np.ndarray, length: int) -> None:
        self.rows = rows
        self.length = length
        self._bitmap: pa.Buffer | None = None
        self._repeats: np.ndarray | None = None

    def bitmap(self, values: pa.Array | None = None) -> pa.Buffer:
        """The validity bitmap of ``values`` spread onto these rows; without nulls (or values)
        every one of the rows is valid, and that bitmap is made once."""
        if values is not None and values.null_count:
            return self._packed(values.is_valid().to_numpy(zero_copy_only=False))
        if self._bitmap is None:  # two threads may both make it: the same bytes either way
            self._bitmap = self._packed(True)
        return self._bitmap

    def _packed(self, valid_rows: Any) -> pa.Buffer:
        valid = np.zeros(self.length, dtype=bool)
        valid[self.rows] = valid_rows
        return pa.py_buffer(np.packbits(valid, bitorder="little"))

    def repeats(self) -> np.ndarray:
        if self._repeats is None:
            rows = self.rows
            # the first offset fills the frame's offsets up to its row, each next one the gap
            # to its row, and the end offset the rest
            repeats = np.empty(len(rows) + 1, dtype=np.int64)
            repeats[0] = rows[0] + 1
            repeats[1:-1] = np.diff(rows)
            repeats[-1] = self.length - rows[-1]
            self._repeats = repeats
        return self._repeats


#: a column on fewer than 1 in this many rows gets its text offsets by repeating its own
#: (one pass); denser ones by a cumulative sum over the frame (faster there)
_REPEAT_BELOW = 12


def _spread(values: pa.Array, placed: _Rows, *, large_text: bool = False) -> pa.Array:
    """``placed.length`` nulls with ``values[i]`` at row ``placed.rows[i]``.

    Text and fixed-width values are laid out with numpy: the text bytes are reused as they are
    and only the offsets (64-bit ones for ``large_text``) and the validity bitmap are rebuilt.
    """
    rows, length = placed.rows, placed.length
    kind = values.type
    buffers = values.buffers()
    offset_width = _OFFSET_WIDTHS.get(kind)
    byte_width = _byte_width(kind)
    if (offset_width is None and byte_width is None) or len(buffers) < 2 or buffers[1] is None:
        index = np.full(length, -1, dtype=np.int64)
        index[rows] = np.arange(len(values))
        return values.take(pa.array(index, mask=index < 0))
    bitmap = placed.bitmap(values)
    nulls = length - len(values) + values.null_count
    if offset_width is not None:
        offsets = np.frombuffer(
            buffers[1], offset_width, len(values) + 1, values.offset * offset_width.itemsize
        )
        if large_text and kind == pa.string():
            kind, offset_width = pa.large_string(), np.dtype(np.int64)
        data = buffers[2] if buffers[2] is not None else pa.py_buffer(b"")
        if 0 < len(values) * _REPEAT_BELOW < length:
            spread = np.repeat(offsets.astype(offset_width, copy=False), placed.repeats())
            return pa.Array.from_buffers(kind, length, [bitmap, pa.py_buffer(spread), data], nulls)
        buffer, spread = _zeros(length + 1, offset_width)
        spread[0] = offsets[0]
        spread[rows + 1] = np.diff(offsets)
        np.cumsum(spread, dtype=offset_width, out=spread)
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


def _as_type(arr: Any, type_: pa.DataType) -> Any:
    return arr if arr.type == type_ else pc.cast(arr, type_)


def _pieces(arr: Any) -> list[pa.Array]:
    return arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
