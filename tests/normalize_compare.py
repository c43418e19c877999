"""Comparing normalised batches table by table (shared by the typed-path tests)."""

from __future__ import annotations

import math
from typing import Any

from croct_pandas.normalize import NormalizedPage


def plain(value: Any) -> Any:
    """A value comparable with ``==`` that tells -0.0 from 0.0, 1 from 1.0 and NaN from None."""
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else value, math.copysign(1.0, value))
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def assert_tables_equal(got: NormalizedPage, want: NormalizedPage) -> None:
    assert got.spec_versions == want.spec_versions
    assert list(got.tables) == list(want.tables)
    for event_type, table in want.tables.items():
        other = got.tables[event_type]
        assert other.schema.equals(table.schema), event_type
        for name in table.column_names:
            mine, theirs = other.column(name), table.column(name)
            if not mine.equals(theirs):
                # Arrow's equals says NaN != NaN: compare the values themselves then
                assert plain(mine.to_pylist()) == plain(theirs.to_pylist()), (event_type, name)
