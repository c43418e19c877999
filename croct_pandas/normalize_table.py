"""Arrow conversion types and the storage table of one group of wire events.

The fast path converts a whole group with one ``pyarrow.array`` call against the struct of
:func:`_item_type` (integers and times loosened to float64 so a safe cast can refuse a
fraction), flattens the result into leaves, and :func:`_storage_table` builds the group's
storage-schema table from them: core columns, kinds fixed up by vectorised casts, free-form
objects as sorted-key JSON text and ``_croct_raw``. :mod:`croct_pandas.normalize` (from dicts)
and :mod:`croct_pandas.normalize_typed` (from typed objects) both end here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from operator import methodcaller
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from croct_pandas.normalize_slow import JSON_NUMBER, NAT_MS, convert_list, event_id
from croct_pandas.normalize_tree import Node, Raw, context_node, payload_node
from croct_pandas.schema import (
    CODE_ENUMS,
    CONTEXT_FIELDS,
    RAW_COLUMN,
    Field,
    arrow_type,
    fields_for,
    storage_schema,
)

_SORTED = orjson.OPT_SORT_KEYS
_GET_CONTEXT = methodcaller("get", "context")
_GET_PAYLOAD = methodcaller("get", "payload")
_TIME = pa.timestamp("ms", tz="UTC")
_CONVERSION_ERRORS = (
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    pa.ArrowNotImplementedError,
    OverflowError,
)


class _NotFast(Exception):
    """The group needs the value-by-value path."""


# -- conversion types -------------------------------------------------------------------------


def _loose(t: pa.DataType) -> pa.DataType:
    """Integers and times convert as float64 first: pyarrow would truncate 1.5 to 1 silently,
    while a safe cast from float64 refuses it."""
    if pa.types.is_integer(t) or pa.types.is_timestamp(t):
        return pa.float64()
    if pa.types.is_list(t):
        return pa.list_(_loose(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([(t.field(i).name, _loose(t.field(i).type)) for i in range(t.num_fields)])
    return t


@cache
def _conversion_type(f: Field, variant: int) -> pa.DataType:
    if f.kind in ("numstr_float", "numstr_int"):
        return pa.string() if variant == 0 else pa.float64()
    if f.kind == "langs":
        return pa.string() if variant == 0 else pa.list_(pa.string())
    return _loose(arrow_type(f))


def _in_python(f: Field) -> bool:
    """Fields built in Python: free-form objects, and patch operations whose values of any
    JSON type become JSON text."""
    return f.kind == "map" or f.path[-1] == "operations"


def _node_struct(node: Node, variant: int) -> pa.StructType:
    fields = []
    for key, child in node.children.items():
        if isinstance(child, Node):
            fields.append((key, _node_struct(child, variant)))
        elif not _in_python(child):
            fields.append((key, _conversion_type(child, variant)))
    return pa.struct(fields)


#: The core keys of a wire event and the types they are converted as (times as float64: see
#: :func:`_loose`), by both normalising paths.
CORE_CONVERSION = (
    ("id", pa.string()),
    ("eventId", pa.string()),
    ("timestamp", pa.float64()),
    ("systemTimestamp", pa.float64()),
    ("sessionId", pa.string()),
    ("userId", pa.string()),
)


@cache
def _item_type(event_type: str, variant: int) -> pa.StructType:
    return pa.struct(
        [
            *CORE_CONVERSION,
            ("context", _node_struct(context_node(), variant)),
            ("payload", _node_struct(payload_node(event_type), variant)),
        ]
    )


def _flatten(array: pa.StructArray, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f, child in zip(array.type, array.flatten()):
        name = prefix + f.name
        if pa.types.is_struct(child.type):
            out.update(_flatten(child, name + "."))
        else:
            out[name] = child
    return out


# -- to the storage schema --------------------------------------------------------------------


def _storage_table(
    event_type: str,
    items: list[Mapping[str, Any]],
    leaves: dict[str, Any],
    raw: Raw,
    values_at: Callable[[str, tuple[str, ...]], list[Any]],
) -> pa.Table:
    """One group's storage table from its converted ``leaves``; ``values_at(prefix, path)``
    gives the Python values of the fields built in Python (``items`` is only read for events
    without an id)."""
    n = len(leaves["timestamp"])
    cols: dict[str, Any] = {
        "id": _ids(items, leaves),
        "timestamp": _time(leaves["timestamp"]),
        "sessionId": leaves["sessionId"],
        "userId": leaves["userId"],
        "systemTimestamp": _time(leaves["systemTimestamp"]),
    }
    for f in CONTEXT_FIELDS:
        name = "context." + f.name
        if f.kind == "map":
            cols[name] = _maps(values_at("context.", f.path))
        else:
            cols[name] = _kind(f, leaves[name])
    for f in fields_for(event_type):
        name = "payload." + f.name
        if f.kind == "map":
            cols[name] = _maps(values_at("payload.", f.path))
        elif _in_python(f):
            cols[name] = convert_list(f, values_at("payload.", f.path), name, raw)
        else:
            cols[name] = _kind(f, leaves[name])
    cols[RAW_COLUMN] = raw.column(n)
    schema = storage_schema(event_type)
    return pa.Table.from_arrays([cols[name] for name in schema.names], schema=schema)


def _ids(items: list[Mapping[str, Any]], leaves: dict[str, Any]) -> pa.Array:
    ids = pc.coalesce(leaves["id"], leaves["eventId"])
    if ids.null_count:
        # events from specs before 0.6.0 carry no id: one made from the event, as for the others
        values = ids.to_pylist()
        for i, value in enumerate(values):
            if value is None:
                values[i] = event_id(items[i])
        ids = pa.array(values, pa.string())
    return ids


def _time(values: pa.Array) -> pa.Array:
    ms = pc.cast(values, pa.int64())
    if len(ms) and pc.min(ms).as_py() == NAT_MS:
        # a time pandas cannot hold: the value-by-value path keeps it raw
        raise pa.ArrowInvalid("an epoch-ms time pandas reads as NaT")
    return pc.cast(ms, _TIME)


_WHOLE_JSON_NUMBER = f"^{JSON_NUMBER}$"


def _kind(f: Field, values: pa.Array) -> pa.Array:
    kind = f.kind
    if kind == "enum":
        if f.enum in CODE_ENUMS:
            return values
        return pc.replace_substring(pc.utf8_lower(values), pattern="_", replacement="-")
    if kind == "time":
        return _time(values)
    # pyarrow's cast reads more than a JSON number in quotes ("0x1F", "NaN", "+1"): such text
    # is for the value-by-value path to keep raw
    if (
        kind in ("numstr_int", "numstr_float")
        and pa.types.is_string(values.type)
        and not pc.all(pc.match_substring_regex(values, _WHOLE_JSON_NUMBER)).as_py()
    ):
        raise pa.ArrowInvalid("a text that is not a JSON number")
    if kind in ("int", "numstr_int"):
        return pc.cast(values, pa.int64())
    if kind == "numstr_float":
        return pc.cast(values, pa.float64())
    if kind == "langs" and pa.types.is_list(values.type):
        return pc.binary_join(values, ",")
    target = arrow_type(f)
    return values if values.type == target else pc.cast(values, target)


def _dict_values(items: list[Mapping[str, Any]]) -> Callable[[str, tuple[str, ...]], list[Any]]:
    """``values_at`` of :func:`_storage_table` for wire events as dicts."""
    roots: dict[str, list[Any]] = {}

    def values_at(prefix: str, path: tuple[str, ...]) -> list[Any]:
        objects = roots.get(prefix)
        if objects is None:
            get = _GET_CONTEXT if prefix == "context." else _GET_PAYLOAD
            objects = roots[prefix] = list(map(get, items))
        return _values_at(objects, path)

    return values_at


def _values_at(objects: list[Any], path: tuple[str, ...]) -> list[Any]:
    """The value at ``path`` of each object (None where a level is missing or null)."""
    values = objects
    for key in path:
        if not any(values):
            return [None] * len(objects)
        values = [None if v is None else v.get(key) for v in values]
    return values


def _maps(values: list[Any]) -> pa.Array:
    """Free-form objects as sorted-key JSON text (None stays null)."""
    if values.count(None) == len(values):
        return pa.nulls(len(values), pa.string())
    if not all(v.__class__ is dict for v in values if v is not None):
        raise _NotFast
    dumps, sort = orjson.dumps, _SORTED
    return pa.array(
        [None if v is None else dumps(v, option=sort).decode() for v in values], pa.string()
    )
