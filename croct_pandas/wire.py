"""The event frame -> wire events in spec 0.7.1 form (``df.croct.to_events()``).

The inverse of :mod:`croct_pandas.normalize` + :mod:`croct_pandas.frame`: ``id``,
``payload["@type"]``, 0.7.1 key names, the export's UPPERCASE enums, its numeric strings, epoch-ms
integers and ``null`` for missing values. Fields 0.7.1 lacks (``systemTimestamp``, ``patch``) and
unknown types and fields are written as received. Normalising the result again gives an equal
frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa

from croct_pandas.schema import CONTEXT_FIELDS, Field, fields_for, wire_enum

__all__ = ["to_events"]

_CORE = ("id", "type", "timestamp", "sessionId", "userId", "systemTimestamp")
_CONTEXT_SCHEMA = tuple("context." + f.name for f in CONTEXT_FIELDS if f.kind != "map")


def to_events(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rebuild the wire events of an event frame, in frame order.

    Examples
    --------
    >>> import croct_pandas
    >>> from croct_pandas.normalize import normalize_items
    >>> from croct_pandas.frame import build_frame
    >>> event = {"id": "e1", "timestamp": 1767225600000, "sessionId": "s", "userId": "u",
    ...          "context": None, "payload": {"@type": "goalCompleted", "goalId": "signup",
    ...          "value": "9.5", "currency": None}}
    >>> df = build_frame(normalize_items([event]).tables.items(), events=["goalCompleted"])
    >>> to_events(df) == [event]
    True
    """
    n = len(frame)
    out: list[dict[str, Any] | None] = [None] * n
    if n == 0:
        return []
    types = _values(frame["type"])
    positions: dict[str, list[int]] = {}
    for i, t in enumerate(types):
        positions.setdefault(t, []).append(i)
    for event_type, rows in positions.items():
        part = frame.iloc[rows]
        for i, event in zip(rows, _events_of_type(event_type, part)):
            out[i] = event
    return out  # type: ignore[return-value]


def _values(series: pd.Series) -> list[Any]:
    """Python values of a column, nulls as None, whatever the dtype backend."""
    arr = pa.array(series, from_pandas=True)
    if pa.types.is_timestamp(arr.type):
        arr = arr.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    return arr.to_pylist()


def _events_of_type(event_type: str, part: pd.DataFrame) -> list[dict[str, Any]]:
    n = len(part)
    fields = fields_for(event_type)
    known = {"payload." + f.name: f for f in fields if f.kind != "map"}
    maps = {"payload." + f.name: f for f in fields if f.kind == "map"}
    events: list[dict[str, Any]] = [
        {"id": i, "timestamp": ts, "sessionId": s, "userId": u}
        for i, ts, s, u in zip(
            _values(part["id"]),
            _values(part["timestamp"]),
            _values(part["sessionId"]),
            _values(part["userId"]),
        )
    ]
    if "systemTimestamp" in part:
        for event, value in zip(events, _values(part["systemTimestamp"])):
            if value is not None:
                event["systemTimestamp"] = value
    contexts = _contexts(part, n)
    payloads: list[dict[str, Any]] = [{} for _ in range(n)]
    for name, f in known.items():
        if name in part:
            write = _writer(f, pd.api.types.is_string_dtype(part[name].dtype))
            for payload, value in zip(payloads, _values(part[name])):
                _put(payload, f.path, None if value is None else write(value))
        else:
            for payload in payloads:
                _put(payload, f.path, None)
    for name, f in maps.items():
        objects = _prefixed_objects(part, name + ".", n)
        for payload, obj in zip(payloads, objects):
            if obj is None and f.name == "details":
                obj = {}  # required and never null in the spec
            _put(payload, f.path, obj)
    claimed = set(known) | set(_CORE) | set(_CONTEXT_SCHEMA)
    claimed |= {c for c in part.columns if any(c.startswith(m + ".") for m in maps)}
    claimed |= {c for c in part.columns if c.startswith("context.")}
    for name in part.columns:
        if name in claimed:
            continue
        values = _values(part[name])
        path = tuple(name.split("."))
        for event, payload, value in zip(events, payloads, values):
            if value is None:
                continue
            if path[0] == "payload":
                _put(payload, path[1:], value)
            else:
                _put(event, path, value)
    for event, context, payload in zip(events, contexts, payloads):
        event["context"] = context
        event["payload"] = {"@type": event_type, **_collapse(payload)}
    return events


def _contexts(part: pd.DataFrame, n: int) -> list[dict[str, Any] | None]:
    out: list[dict[str, Any] | None] = [None] * n
    columns = [c for c in part.columns if c.startswith("context.")]
    metadata = _prefixed_objects(part, "context.metadata.", n)
    values = {c: _values(part[c]) for c in columns if not c.startswith("context.metadata.")}
    for i in range(n):
        context: dict[str, Any] = {}
        for c, column in values.items():
            if c in _CONTEXT_SCHEMA or column[i] is not None:
                _put(context, tuple(c.split("."))[1:], column[i])
        if metadata[i] is not None:
            context["metadata"] = metadata[i]
        if any(v is not None for v in context.values()):
            out[i] = context
    return out


def _prefixed_objects(part: pd.DataFrame, prefix: str, n: int) -> list[dict[str, Any] | None]:
    """Columns ``prefix + key`` -> one dict per row of its non-null keys (None when none)."""
    out: list[dict[str, Any] | None] = [None] * n
    for name in part.columns:
        if not name.startswith(prefix):
            continue
        key = name[len(prefix) :]
        for i, value in enumerate(_values(part[name])):
            if value is not None:
                obj = out[i]
                if obj is None:
                    obj = out[i] = {}
                _put(obj, tuple(key.split(".")), value)
    return out


def _writer(f: Field, as_text: bool) -> Callable[[Any], Any]:
    if as_text and f.kind not in ("string", "langs", "enum"):
        return _identity  # a column that fell back to text: written as it is held
    if f.kind == "enum":
        enum = f.enum or ""
        return lambda v: wire_enum(enum, v)
    if f.kind == "numstr_float":
        return _number_text
    if f.kind == "numstr_int":
        return str
    if f.kind == "list" and f.path[-1] == "operations":
        return _operations
    return _identity


def _identity(value: Any) -> Any:
    return value


def _number_text(value: float) -> str:
    number = float(value)
    if math.isinf(number):
        # a JSON number text that reads back as the infinity it came from ("1e400" did)
        return "1e999" if number > 0 else "-1e999"
    return str(int(number)) if number.is_integer() else repr(number)


def _operations(operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for op in operations:
        op = {k: v for k, v in op.items() if v is not None or k != "value"}
        if op.get("value") is not None:
            op["value"] = orjson.loads(op["value"])
        out.append(op)
    return out


def _put(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        child = target.get(key)
        if not isinstance(child, dict):
            child = target[key] = {}
        target = child
    target[path[-1]] = value


def _collapse(obj: dict[str, Any]) -> dict[str, Any]:
    """Nested objects whose leaves are all null become null."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, dict) and value:
            inner = _collapse(value)
            out[key] = inner if any(v is not None for v in inner.values()) else None
        else:
            out[key] = value
    return out
