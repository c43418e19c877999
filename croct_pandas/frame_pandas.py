"""The frame's pandas dtypes: Arrow columns to pandas ones, and a saved frame read back.

``dtype_backend`` follows pandas' readers. Without one, text, integers and booleans get pandas'
nullable dtypes and lists and structs keep their Arrow types, since pandas has none of its own.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from croct_pandas.errors import InvalidArgumentError

__all__ = ["DTYPE_BACKENDS", "FrameBuilder", "check_dtype_backend", "read_parquet_frame"]

DTYPE_BACKENDS = (None, "numpy_nullable", "pyarrow")


def _types_mapper(dtype_backend: str | None) -> Any:
    """The ``types_mapper`` giving the frame's dtypes for ``dtype_backend``."""
    if dtype_backend == "pyarrow":
        return pd.ArrowDtype
    nullable_floats = dtype_backend == "numpy_nullable"

    def mapper(t: pa.DataType) -> Any:
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return pd.StringDtype("pyarrow")
        if pa.types.is_integer(t):
            return pd.Int64Dtype()
        if pa.types.is_boolean(t):
            return pd.BooleanDtype()
        if pa.types.is_floating(t) and nullable_floats:
            return pd.Float64Dtype()
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_struct(t):
            return pd.ArrowDtype(t)
        return None

    return mapper


def _to_pandas(table: pa.Table, dtype_backend: str | None) -> pd.DataFrame:
    mapper = _types_mapper(dtype_backend)
    return table.to_pandas(types_mapper=mapper, split_blocks=True, self_destruct=True)


class FrameBuilder:
    """The frame, one column at a time: each Arrow column becomes its pandas column as it comes,
    so the Arrow copy of a column that pandas keeps in numpy is gone before the next is made
    (the frame's peak memory is then the frame, not the frame and its Arrow twin).

    Examples
    --------
    >>> builder = FrameBuilder(None)
    >>> builder.add("n", pa.array([1, None]))
    >>> builder.add("x", pa.array([0.5, None]))
    >>> builder.frame().dtypes.astype(str).tolist()
    ['Int64', 'float64']
    """

    def __init__(self, dtype_backend: str | None) -> None:
        self._mapper = _types_mapper(dtype_backend)
        self._columns: dict[str, pd.Series] = {}

    def add(self, name: str, values: pa.Array) -> None:
        """Append the column ``name`` made of ``values``."""
        self.put(name, self.convert(values))

    def convert(self, values: pa.Array) -> pd.Series:
        """The pandas column of ``values`` (may run on any thread; :meth:`put` adds it)."""
        return pa.chunked_array([values]).to_pandas(types_mapper=self._mapper)

    def put(self, name: str, series: pd.Series) -> None:
        """Append a column that :meth:`convert` made."""
        series.name = name
        self._columns[name] = series

    def frame(self) -> pd.DataFrame:
        # copy=False keeps each column its own block: no consolidating copy of the numbers; the
        # columns' arrays, not the Series, spare aligning 150 indexes that are all the same
        frame = pd.DataFrame({n: s.array for n, s in self._columns.items()}, copy=False)
        self._columns = {}
        return frame


def read_parquet_frame(path: str, dtype_backend: str | None = None) -> pd.DataFrame:
    """Read a frame that ``df.to_parquet()`` wrote, with the frame's dtypes.

    ``pd.read_parquet`` cannot rebuild the ``ArrowDtype`` list-of-struct columns from pandas'
    metadata (it raises "data type ... not understood"); this reads through pyarrow instead.

    Examples
    --------
    >>> import tempfile, os
    >>> from croct_pandas.emulator import generate_events
    >>> from croct_pandas.frame import build_frame
    >>> from croct_pandas.normalize import normalize_items
    >>> frame = build_frame(normalize_items(generate_events(users=20, days=1)).tables.items())
    >>> path = os.path.join(tempfile.mkdtemp(), "events.parquet")
    >>> frame.to_parquet(path)
    >>> read_parquet_frame(path).equals(frame)
    True
    """
    import json

    import pyarrow.parquet as pq

    table = pq.read_table(path)
    metadata = table.schema.metadata or {}
    frame = _to_pandas(table.replace_schema_metadata(None), dtype_backend)
    attrs = metadata.get(b"PANDAS_ATTRS")
    if attrs:
        frame.attrs = json.loads(attrs)
    return frame


def check_dtype_backend(value: object) -> str | None:
    """Validate ``dtype_backend`` the way pandas' readers do."""
    if value not in DTYPE_BACKENDS:
        raise InvalidArgumentError(
            f"dtype_backend must be None, 'numpy_nullable' or 'pyarrow', not {value!r}"
        )
    return value
