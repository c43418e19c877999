"""Normalisation value by value: the path for pages whose values do not fit the fast one.

Slower, but it decides for each value whether it fits its column; anything that does not (a
number sent as text, an object where a string belongs, a list with unknown keys) is kept in the
row's ``_croct_raw`` instead of being dropped or altered.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import orjson
import pyarrow as pa

from croct_pandas.normalize_tree import Node, Raw, context_node, payload_node
from croct_pandas.schema import RAW_COLUMN, Field, arrow_type, normalize_enum, storage_schema

__all__ = ["CORE_KEYS", "convert_list", "event_id", "normalize_group_slow"]

CORE_KEYS = frozenset(
    {"id", "eventId", "timestamp", "sessionId", "userId", "systemTimestamp", "context", "payload"}
)
_EMPTY: dict[str, Any] = {}
_NONE = type(None)
_SORTED = orjson.OPT_SORT_KEYS
#: a number sent as text is a JSON number in quotes, nothing looser (no spaces, signs, leading
#: zeros, underscores, hex, NaN or infinities, which Python's int() and float() would take)
JSON_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_JSON_NUMBER = re.compile(JSON_NUMBER)
#: pandas' NaT: an epoch-ms time a frame cannot hold (the storage table could)
NAT_MS = -(2**63)


def normalize_group_slow(event_type: str, items: list[Mapping[str, Any]]) -> pa.Table:
    n = len(items)
    raw = Raw()
    cols: dict[str, pa.Array] = {}
    cols["id"] = pa.array([_checked_id(i, it, raw) for i, it in enumerate(items)], pa.string())
    cols["timestamp"] = _convert(
        Field(("timestamp",), "time"), [it.get("timestamp") for it in items], "timestamp", raw
    )
    cols["sessionId"] = _convert(
        Field(("sessionId",), "string"), [it.get("sessionId") for it in items], "sessionId", raw
    )
    cols["userId"] = _convert(
        Field(("userId",), "string"), [it.get("userId") for it in items], "userId", raw
    )
    cols["systemTimestamp"] = _convert(
        Field(("systemTimestamp",), "time"),
        [it.get("systemTimestamp") for it in items],
        "systemTimestamp",
        raw,
    )
    for i, it in enumerate(items):
        if not CORE_KEYS.issuperset(it):
            for key in it.keys() - CORE_KEYS:
                raw.put(i, key, it[key])
    contexts = _objects([it.get("context") for it in items], "context", raw)
    _walk(contexts, context_node(), "context.", cols, raw)
    payload_values = [it.get("payload") for it in items]
    payloads = _objects(payload_values, "payload", raw)
    _walk(payloads, payload_node(event_type), "payload.", cols, raw)
    cols[RAW_COLUMN] = raw.column(n)
    schema = storage_schema(event_type)
    return pa.Table.from_arrays([cols[name] for name in schema.names], schema=schema)


def _checked_id(i: int, item: Mapping[str, Any], raw: Raw) -> str:
    """The row's id; one that is not text is kept as sent and reads as its JSON text."""
    value = _wire_id(item)
    if value is not None and value.__class__ is not str:
        raw.put(i, "id", value)
    return _id_text(value, item)


def event_id(item: Mapping[str, Any]) -> str:
    """The id of a wire event as the frame holds it."""
    return _id_text(_wire_id(item), item)


def _wire_id(item: Mapping[str, Any]) -> Any:
    value = item.get("id")
    return item.get("eventId") if value is None else value


def _id_text(value: Any, item: Mapping[str, Any]) -> str:
    if isinstance(value, str):
        return value
    if value is not None:
        return orjson.dumps(value, option=_SORTED).decode()
    # events from specs before 0.6.0 carry no id: a stable one from their canonical JSON
    return "sha1:" + hashlib.sha1(orjson.dumps(item, option=_SORTED)).hexdigest()


def _objects(values: list[Any], path: str, raw: Raw) -> list[dict[str, Any]]:
    """Objects at ``path`` (missing/null -> empty); anything else is kept raw."""
    if {v.__class__ for v in values} <= {dict, _NONE}:
        return [v if v is not None else _EMPTY for v in values]
    out = []
    for i, v in enumerate(values):
        if isinstance(v, dict):
            out.append(v)
        else:
            if v is not None:
                raw.put(i, path, v)
            out.append(_EMPTY)
    return out


def _walk(
    objs: list[dict[str, Any]], node: Node, prefix: str, cols: dict[str, pa.Array], raw: Raw
) -> None:
    for key, child in node.children.items():
        alias = node.aliases.get(key)
        if alias is None:
            values = [o.get(key) for o in objs]
        else:
            values = [o[key] if key in o else o.get(alias) for o in objs]
        path = prefix + key
        if isinstance(child, Node):
            _walk(_objects(values, path, raw), child, path + ".", cols, raw)
        else:
            cols[path] = _convert(child, values, path, raw)
    issuperset = node.known.issuperset
    for i, o in enumerate(objs):
        if not issuperset(o):
            for key in o.keys() - node.known:
                raw.put(i, prefix + key, o[key])


# -- leaf conversion -----------------------------------------------------------------------

_FAST_TYPES: dict[str, set[type]] = {
    "string": {str, _NONE},
    "int": {int, _NONE},
    "float": {int, float, _NONE},
    "bool": {bool, _NONE},
    "time": {int, _NONE},
}


def _convert(f: Field, values: list[Any], path: str, raw: Raw) -> pa.Array:
    target = arrow_type(f)
    kind = f.kind
    fast = _FAST_TYPES.get(kind)
    if (
        fast is not None
        and {v.__class__ for v in values} <= fast
        and not (kind == "time" and NAT_MS in values)
    ):
        try:
            return pa.array(values, target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass  # out of range: sorted out value by value below
    if kind == "list":
        return convert_list(f, values, path, raw)
    convert = _converter(f)
    out: list[Any] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        try:
            out.append(convert(v))
        except (TypeError, ValueError, OverflowError):
            raw.put(i, path, v)
            out.append(None)
    return pa.array(out, target)


def _converter(f: Field) -> Callable[[Any], Any]:
    kind = f.kind
    if kind == "enum":
        enum = f.enum or ""
        return lambda v: normalize_enum(enum, _must(v, str))
    if kind == "map":
        return lambda v: orjson.dumps(_must(v, dict), option=_SORTED).decode()
    return _CONVERTERS[kind]


def _must(value: Any, cls: type) -> Any:
    if value.__class__ is not cls:
        raise TypeError(f"expected {cls.__name__}")
    return value


def _to_int(v: Any) -> int:
    if v.__class__ is int:
        if not -(2**63) <= v < 2**63:
            raise OverflowError("out of int64 range")
        return int(v)
    if v.__class__ is float and v.is_integer():
        return _to_int(int(v))
    raise TypeError("expected an integer")


def _to_time(v: Any) -> int:
    ms = _to_int(v)
    if ms == NAT_MS:
        raise ValueError("pandas reads this epoch-ms time as NaT")
    return ms


def _to_float(v: Any) -> float:
    if v.__class__ in (int, float):
        return float(v)
    raise TypeError("expected a number")


def _json_number(v: str) -> str:
    if not _JSON_NUMBER.fullmatch(v):
        raise ValueError("not a JSON number in quotes")
    return v


def _numstr_float(v: Any) -> float:
    return float(_json_number(v)) if v.__class__ is str else _to_float(v)


def _numstr_int(v: Any) -> int:
    if v.__class__ is str:
        _json_number(v)
        try:
            return _to_int(int(v))
        except ValueError:
            return _to_int(float(v))
    return _to_int(v)


def _langs(v: Any) -> str:
    if v.__class__ is str:
        return str(v)
    if isinstance(v, list) and all(x.__class__ is str for x in v):
        return ",".join(v)
    raise TypeError("expected a string or a list of strings")


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "string": lambda v: _must(v, str),
    "int": _to_int,
    "float": _to_float,
    "bool": lambda v: _must(v, bool),
    "time": _to_time,
    "numstr_float": _numstr_float,
    "numstr_int": _numstr_int,
    "langs": _langs,
}


def convert_list(f: Field, values: list[Any], path: str, raw: Raw) -> pa.Array:
    target = arrow_type(f)
    assert isinstance(target, pa.ListType)
    element = target.value_type
    prepare = _json_values if path.endswith("patch.operations") else None
    out: list[Any] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        if not isinstance(v, list) or not _fits(v, element):
            # a list the element type cannot hold whole stays raw, so nothing is lost
            raw.put(i, path, v)
            out.append(None)
            continue
        out.append(prepare(v) if prepare else v)
    try:
        return pa.array(out, target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    for i, v in enumerate(out):
        if v is None:
            continue
        try:
            pa.array([v], target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            raw.put(i, path, values[i])
            out[i] = None
    return pa.array(out, target)


def _json_values(operations: list[Any]) -> list[Any]:
    out: list[Any] = []
    for op in operations:
        if op is None:
            out.append(None)  # a null operation stays null
            continue
        op = dict(op)
        if "value" in op:
            op["value"] = orjson.dumps(op["value"], option=_SORTED).decode()
        out.append(op)
    return out


def _fits(value: Any, element: pa.DataType) -> bool:
    """Whether ``value`` (a list's element, or the list) has no key or type the type lacks.

    pyarrow drops unknown struct keys and truncates 1.5 to 1 in an int field silently; this
    check keeps such lists raw instead.
    """
    if isinstance(value, list):
        return all(_fits_one(x, element) for x in value)
    return _fits_one(value, element)


def _fits_one(value: Any, t: pa.DataType) -> bool:
    if value is None:
        return True
    if pa.types.is_struct(t):
        if not isinstance(value, dict):
            return False
        names = _struct_names(t)
        if not names.issuperset(value):
            return False
        return all(
            _fits_one(value.get(t.field(i).name), t.field(i).type) for i in range(t.num_fields)
        )
    if pa.types.is_list(t):
        return isinstance(value, list) and all(_fits_one(x, t.value_type) for x in value)
    if pa.types.is_integer(t):
        # as a top-level integer field takes it: 2.0 is 2
        return value.__class__ is int or (value.__class__ is float and value.is_integer())
    if pa.types.is_floating(t):
        return value.__class__ in (int, float)
    if pa.types.is_string(t):
        # patch values are JSON text made here, whatever they were on the wire
        return True
    return True


@cache
def _struct_names(t: pa.StructType) -> frozenset[str]:
    return frozenset(t.field(i).name for i in range(t.num_fields))
