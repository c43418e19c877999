"""Wire events -> per-type Arrow tables, by the schema table. No network, no disk.

A page of wire events (either dialect) becomes one :class:`pyarrow.Table` per event type, in the
*storage schema* of that type (:func:`~croct_pandas.schema.storage_schema`): the core columns,
``context.*`` and the type's ``payload.*`` columns, each with its schema type whatever the page
held, free-form objects as JSON text, and ``_croct_raw`` (JSON text, column -> value as sent)
holding every value that did not fit and every field the schema does not know. The cache stores
exactly these tables, and :mod:`croct_pandas.frame` turns them into the frame.

Whole response bodies usually skip the dicts altogether (:mod:`croct_pandas.normalize_typed`,
which shares :func:`_storage_table` with this module). From dicts, the fast path converts a
whole group of events with one ``pyarrow.array`` call against the type's struct and fixes kinds
up with vectorised casts; a group that does not fit it (a value of another type, a renamed key,
a list element with unknown keys) goes value by value through
:mod:`croct_pandas.normalize_slow`. Python dicts live only for one batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from operator import methodcaller
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from croct_pandas.normalize_slow import CORE_KEYS, convert_list, normalize_group_slow
from croct_pandas.normalize_tree import DISCRIMINATORS, Node, Raw, context_node, payload_node
from croct_pandas.schema import (
    CODE_ENUMS,
    CONTEXT_FIELDS,
    RAW_COLUMN,
    Field,
    arrow_type,
    fields_for,
    storage_schema,
)

__all__ = [
    "BATCH_EVENTS",
    "RAW_COLUMN",
    "NormalizedPage",
    "event_type_of",
    "normalize_items",
    "normalize_page",
    "storage_schema",
]

#: Events normalised per call when pages are batched (see
#: :class:`~croct_pandas.normalize_pool.PageBatcher`).
BATCH_EVENTS = 10_000
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


@dataclass
class NormalizedPage:
    """One page, normalised: a storage-schema table per event type."""

    tables: dict[str, pa.Table] = field(default_factory=dict)
    #: spec versions seen on the page: ``"0.7"`` (``id``/``@type``) and/or ``"0.8"``
    spec_versions: set[str] = field(default_factory=set)

    @property
    def num_rows(self) -> int:
        return sum(t.num_rows for t in self.tables.values())


def event_type_of(event: Mapping[str, Any]) -> str | None:
    """The type of a wire event: ``payload["@type"]`` (0.7.x) or ``payload["type"]`` (0.8.0)."""
    payload = event.get("payload")
    if not isinstance(payload, dict):
        return None
    for key in DISCRIMINATORS:
        value = payload.get(key)
        if isinstance(value, str):
            return value
    return None


def normalize_page(body: bytes) -> tuple[NormalizedPage, dict[str, Any], str | None]:
    """Parse one response body and normalise its items.

    Returns the page, the response ``metadata`` and the ``nextCursor`` (None when empty).

    Examples
    --------
    >>> body = b'{"items": [], "metadata": {}, "nextCursor": ""}'
    >>> page, metadata, cursor = normalize_page(body)
    >>> page.num_rows, cursor
    (0, None)
    """
    doc = orjson.loads(body)
    return normalize_items(doc["items"]), doc.get("metadata") or {}, doc.get("nextCursor") or None


def normalize_items(items: Iterable[Mapping[str, Any]]) -> NormalizedPage:
    """Normalise wire events into one storage-schema table per event type.

    Examples
    --------
    >>> page = normalize_items([{"id": "e1", "timestamp": 1767225600000, "sessionId": "s",
    ...     "userId": "u", "context": None,
    ...     "payload": {"@type": "goalCompleted", "goalId": "signup", "value": "9.5",
    ...                 "currency": None}}])
    >>> page.tables["goalCompleted"].column("payload.value").to_pylist()
    [9.5]
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    out = NormalizedPage()
    for item in items:
        payload = item.get("payload")
        event_type = payload.get("@type") if payload.__class__ is dict else None
        if event_type.__class__ is not str:
            event_type = event_type_of(item) or "unknown"
        groups.setdefault(event_type, []).append(item)
    for event_type, group in groups.items():
        out.tables[event_type], specs = _normalize_group(event_type, group)
        out.spec_versions |= specs
    return out


def _spec_of(item: Mapping[str, Any]) -> str:
    if "eventId" in item:
        return "0.8"
    payload = item.get("payload")
    if isinstance(payload, dict) and "@type" not in payload and "type" in payload:
        return "0.8"
    return "0.7"


class _NotFast(Exception):
    """The group needs the value-by-value path."""


def _normalize_group(event_type: str, items: list[Mapping[str, Any]]) -> tuple[pa.Table, set[str]]:
    try:
        return _normalize_fast(event_type, items)
    except _NotFast:
        return normalize_group_slow(event_type, items), {_spec_of(item) for item in items}


# -- the fast path ---------------------------------------------------------------------------


def _normalize_fast(event_type: str, items: list[Mapping[str, Any]]) -> tuple[pa.Table, set[str]]:
    raw = Raw()
    if not _all_known(event_type, items):
        _check_keys(event_type, items, raw)
    for variant in (0, 1):
        if not _lists_are_lists(event_type, items, variant):
            raise _NotFast
        try:
            converted = pa.array(items, type=_item_type(event_type, variant))
        except _CONVERSION_ERRORS:
            continue
        leaves = _flatten(converted)
        try:
            table = _storage_table(event_type, items, leaves, raw, _dict_values(items))
        except _CONVERSION_ERRORS:
            continue
        return table, _specs(items, leaves)
    raise _NotFast


def _specs(items: list[Mapping[str, Any]], leaves: dict[str, Any]) -> set[str]:
    """Spec versions of a group: ``id`` marks 0.7.x, ``eventId`` 0.8.0."""
    n = len(items)
    with_id, with_event_id = n - leaves["id"].null_count, n - leaves["eventId"].null_count
    if with_id == n and with_event_id == 0:
        return {"0.7"}
    return {_spec_of(item) for item in items}


def _all_known(event_type: str, items: list[Mapping[str, Any]]) -> bool:
    """True when no object of the group has a key the schema does not know (or a renamed
    one): then there is nothing to record item by item. Loops run in C (``map``)."""
    try:
        if not CORE_KEYS.issuperset(_keys(items)):
            return False
        contexts = list(filter(None, map(_GET_CONTEXT, items)))
        if contexts and not _objects_known(contexts, context_node()):
            return False
        return _objects_known(list(map(_GET_PAYLOAD, items)), payload_node(event_type))
    except (TypeError, AttributeError):
        return False  # a value of another shape: the item-by-item check will say


def _keys(objects: list[Any]) -> set[Any]:
    """Every key of every object, in one C-level pass (faster than a check per object)."""
    return set().union(*objects)


def _objects_known(objects: list[Any], node: Node) -> bool:
    keys = _keys(objects)
    if not node.known.issuperset(keys):
        return False
    renamed = _renamed_keys(node)
    if renamed and not renamed.isdisjoint(keys):
        return False
    for key, child in node.children.items():
        if isinstance(child, Node):
            inner = list(filter(None, map(methodcaller("get", key), objects)))
            if inner and not _objects_known(inner, child):
                return False
        elif child.kind == "list" and pa.types.is_struct(arrow_type(child).value_type):
            lists = list(filter(None, map(methodcaller("get", key), objects)))
            elements = [element for values in lists for element in values]
            if elements and not _struct_known(elements, arrow_type(child).value_type):
                return False
    return True


def _struct_known(elements: list[Any], struct: pa.StructType) -> bool:
    # pyarrow would also take a list of values for a struct, field by field: objects only
    if not all(e.__class__ is dict for e in elements):
        return False
    if not _names(struct).issuperset(_keys(elements)):
        return False
    for i in range(struct.num_fields):
        sub = struct.field(i)
        if pa.types.is_struct(sub.type):
            inner = list(filter(None, map(methodcaller("get", sub.name), elements)))
            if inner and not _struct_known(inner, sub.type):
                return False
    return True


def _check_keys(event_type: str, items: list[Mapping[str, Any]], raw: Raw) -> None:
    """Put unknown keys into ``raw``; refuse what the struct conversion would get wrong."""
    for i, item in enumerate(items):
        if item.__class__ is not dict:
            raise _NotFast
        if not CORE_KEYS.issuperset(item):
            for key in item.keys() - CORE_KEYS:
                raw.put(i, key, item[key])
    contexts = [(i, c) for i, item in enumerate(items) if (c := item.get("context")) is not None]
    _check_node(contexts, context_node(), "context.", raw)
    payloads = [(i, item.get("payload")) for i, item in enumerate(items)]
    _check_node(payloads, payload_node(event_type), "payload.", raw)


def _check_node(pairs: list[tuple[int, Any]], node: Node, prefix: str, raw: Raw) -> None:
    known = node.known
    renamed = _renamed_keys(node)
    for i, obj in pairs:
        if obj.__class__ is not dict:
            raise _NotFast
        if not known.issuperset(obj):
            for key in obj.keys() - known:
                raw.put(i, prefix + key, obj[key])
        if renamed and not renamed.isdisjoint(obj):
            raise _NotFast
    for key, child in node.children.items():
        if isinstance(child, Node):
            sub = [(i, v) for i, o in pairs if (v := o.get(key)) is not None]
            if sub:
                _check_node(sub, child, f"{prefix}{key}.", raw)
        elif child.kind == "list":
            element = arrow_type(child).value_type
            if pa.types.is_struct(element):
                for _, obj in pairs:
                    value = obj.get(key)
                    if value is not None and not _elements_known(value, element):
                        raise _NotFast


def _lists_are_lists(event_type: str, items: list[Mapping[str, Any]], variant: int) -> bool:
    """Whether every value converted as a list of text is a list: pyarrow would take a text
    for the list of its characters (the value-by-value path keeps such values raw)."""
    for root, path in _list_paths(event_type, variant):
        objects = list(map(_GET_CONTEXT if root == "context" else _GET_PAYLOAD, items))
        try:
            if not lists_or_nulls(_values_at(objects, path)):
                return False
        except AttributeError:
            return False  # a level that is not an object: the key checks refuse it as well
    return True


def lists_or_nulls(values: list[Any]) -> bool:
    """Whether every value is a list or None: pyarrow would take a text where a list belongs
    for the list of its characters, so both paths check before converting."""
    return all(v is None or v.__class__ is list for v in values)


@cache
def _list_paths(event_type: str, variant: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The fields converted as lists of plain values (lists of objects are checked by key)."""
    paths = []
    for root, fields in (("context", CONTEXT_FIELDS), ("payload", fields_for(event_type))):
        for f in fields:
            if _in_python(f):
                continue
            conversion = _conversion_type(f, variant)
            if pa.types.is_list(conversion) and not pa.types.is_struct(conversion.value_type):
                paths.append((root, f.path))
    return tuple(paths)


@cache
def _renamed_keys(node: Node) -> frozenset[str]:
    return frozenset(node.aliases.values())


def _elements_known(values: Any, struct: pa.StructType) -> bool:
    if values.__class__ is not list:
        return False
    names = _names(struct)
    for element in values:
        if element is None:
            continue
        if element.__class__ is not dict or not names.issuperset(element):
            return False
        for i in range(struct.num_fields):
            sub = struct.field(i)
            if pa.types.is_struct(sub.type):
                inner = element.get(sub.name)
                if inner is not None and not _elements_known([inner], sub.type):
                    return False
    return True


@cache
def _names(struct: pa.StructType) -> frozenset[str]:
    return frozenset(struct.field(i).name for i in range(struct.num_fields))


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
        # events from specs before 0.6.0 carry no id: a stable one from their canonical JSON
        values = ids.to_pylist()
        for i, value in enumerate(values):
            if value is None:
                canonical = orjson.dumps(items[i], option=_SORTED)
                values[i] = "sha1:" + hashlib.sha1(canonical).hexdigest()
        ids = pa.array(values, pa.string())
    return ids


def _time(values: pa.Array) -> pa.Array:
    return pc.cast(pc.cast(values, pa.int64()), _TIME)


def _kind(f: Field, values: pa.Array) -> pa.Array:
    kind = f.kind
    if kind == "enum":
        if f.enum in CODE_ENUMS:
            return values
        return pc.replace_substring(pc.utf8_lower(values), pattern="_", replacement="-")
    if kind == "time":
        return _time(values)
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
