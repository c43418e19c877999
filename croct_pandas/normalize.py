"""Wire events -> per-type Arrow tables, by the schema table. No network, no disk.

A page of wire events (either dialect) becomes one :class:`pyarrow.Table` per event type, in the
*storage schema* of that type (:func:`storage_schema`): the core columns, ``context.*`` and the
type's ``payload.*`` columns, each with its schema type whatever the page held, free-form objects
as JSON text, and ``_croct_raw`` (JSON text, column -> wire value) holding every value that did not
fit: a value that contradicts its column's type, and every field the schema does not know. The
cache stores exactly these tables, and :mod:`croct_pandas.frame` turns them into the frame.

Python dicts live only for one page: pages become Arrow as they arrive.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import orjson
import pyarrow as pa

from croct_pandas.schema import (
    CONTEXT_FIELDS,
    RENAMES_0_8,
    Field,
    arrow_type,
    fields_for,
    normalize_enum,
)

__all__ = [
    "RAW_COLUMN",
    "NormalizedPage",
    "event_type_of",
    "normalize_items",
    "normalize_page",
    "storage_schema",
]

RAW_COLUMN = "_croct_raw"
_TIME = pa.timestamp("ms", tz="UTC")
_CORE_SCHEMA = [
    ("id", pa.string()),
    ("timestamp", _TIME),
    ("sessionId", pa.string()),
    ("userId", pa.string()),
    ("systemTimestamp", _TIME),
]
_CORE_KEYS = frozenset(
    {"id", "eventId", "timestamp", "sessionId", "userId", "systemTimestamp", "context", "payload"}
)
_DISCRIMINATORS = ("@type", "type")
_EMPTY: dict[str, Any] = {}
_NONE = type(None)
_SORTED = orjson.OPT_SORT_KEYS


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
    for key in _DISCRIMINATORS:
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
        event_type = event_type_of(item) or "unknown"
        groups.setdefault(event_type, []).append(item)
        out.spec_versions.add("0.8" if "eventId" in item or _is_08(item) else "0.7")
    for event_type, group in groups.items():
        out.tables[event_type] = _normalize_group(event_type, group)
    return out


def _is_08(item: Mapping[str, Any]) -> bool:
    payload = item.get("payload")
    return isinstance(payload, dict) and "@type" not in payload and "type" in payload


@cache
def storage_schema(event_type: str) -> pa.Schema:
    """The Arrow schema every table (and cache file) of ``event_type`` has.

    Examples
    --------
    >>> storage_schema("tabOpened").names[-2:]
    ['payload.tabId', '_croct_raw']
    """
    columns = list(_CORE_SCHEMA)
    columns += [("context." + f.name, arrow_type(f)) for f in CONTEXT_FIELDS]
    columns += [("payload." + f.name, arrow_type(f)) for f in fields_for(event_type)]
    columns.append((RAW_COLUMN, pa.string()))
    return pa.schema(columns)


# -- the tree of known keys ----------------------------------------------------------------


@dataclass
class _Node:
    children: dict[str, _Node | Field]
    #: alternative spellings of a child key (spec 0.8.0 renames)
    aliases: dict[str, str]
    known: frozenset[str]


def _build_node(fields: Iterable[tuple[tuple[str, ...], Field]], extra_known: Iterable[str] = ()):
    children: dict[str, Any] = {}
    for path, f in fields:
        if len(path) == 1:
            children[path[0]] = f
        else:
            children.setdefault(path[0], []).append((path[1:], f))
    for key, value in children.items():
        if isinstance(value, list):
            children[key] = _build_node(value)
    return _Node(children, {}, frozenset(children) | frozenset(extra_known))


def _with_aliases(root: _Node, renames: Mapping[tuple[str, ...], tuple[str, ...]]) -> _Node:
    for new, old in renames.items():
        node = root
        for key in old[:-1]:
            child = node.children[key]
            assert isinstance(child, _Node)
            node = child
        node.aliases[old[-1]] = new[-1]
        node.known = node.known | {new[-1]}
    return root


@cache
def _payload_node(event_type: str) -> _Node:
    root = _build_node(((f.path, f) for f in fields_for(event_type)), _DISCRIMINATORS)
    return _with_aliases(root, RENAMES_0_8.get(event_type, {}))


@cache
def _context_node() -> _Node:
    return _build_node((f.path, f) for f in CONTEXT_FIELDS)


# -- one type's rows -----------------------------------------------------------------------


class _Raw:
    """Per-row collection of values that did not fit their column (sparse)."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}

    def put(self, row: int, path: str, value: Any) -> None:
        self.rows.setdefault(row, {})[path] = value

    def column(self, n: int) -> pa.Array:
        if not self.rows:
            return pa.nulls(n, pa.string())
        texts: list[str | None] = [None] * n
        for row, values in self.rows.items():
            texts[row] = orjson.dumps(values, option=_SORTED).decode()
        return pa.array(texts, pa.string())


def _normalize_group(event_type: str, items: list[Mapping[str, Any]]) -> pa.Table:
    n = len(items)
    raw = _Raw()
    cols: dict[str, pa.Array] = {}
    cols["id"] = pa.array([_event_id(it) for it in items], pa.string())
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
        if not _CORE_KEYS.issuperset(it):
            for key in it.keys() - _CORE_KEYS:
                raw.put(i, key, it[key])
    contexts = _objects([it.get("context") for it in items], "context", raw)
    _walk(contexts, _context_node(), "context.", cols, raw)
    payloads = [it.get("payload") for it in items]
    payloads = _objects(payloads, "payload", raw)
    _walk(payloads, _payload_node(event_type), "payload.", cols, raw)
    cols[RAW_COLUMN] = raw.column(n)
    schema = storage_schema(event_type)
    return pa.Table.from_arrays([cols[name] for name in schema.names], schema=schema)


def _event_id(item: Mapping[str, Any]) -> str:
    value = item.get("id")
    if value is None:
        value = item.get("eventId")
    if isinstance(value, str):
        return value
    if value is not None:
        return str(value)
    # events from specs before 0.6.0 carry no id: a stable one from their canonical JSON
    return "sha1:" + hashlib.sha1(orjson.dumps(item, option=_SORTED)).hexdigest()


def _objects(values: list[Any], path: str, raw: _Raw) -> list[dict[str, Any]]:
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
    objs: list[dict[str, Any]], node: _Node, prefix: str, cols: dict[str, pa.Array], raw: _Raw
) -> None:
    for key, child in node.children.items():
        alias = node.aliases.get(key)
        if alias is None:
            values = [o.get(key) for o in objs]
        else:
            values = [o[key] if key in o else o.get(alias) for o in objs]
        path = prefix + key
        if isinstance(child, _Node):
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


def _convert(f: Field, values: list[Any], path: str, raw: _Raw) -> pa.Array:
    target = arrow_type(f)
    kind = f.kind
    fast = _FAST_TYPES.get(kind)
    if fast is not None and {v.__class__ for v in values} <= fast:
        try:
            return pa.array(values, target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass  # out of range: sorted out value by value below
    if kind == "list":
        return _convert_list(f, values, path, raw)
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


def _to_float(v: Any) -> float:
    if v.__class__ in (int, float):
        return float(v)
    raise TypeError("expected a number")


def _numstr_float(v: Any) -> float:
    return float(v) if v.__class__ is str else _to_float(v)


def _numstr_int(v: Any) -> int:
    if v.__class__ is str:
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
    "time": _to_int,
    "numstr_float": _numstr_float,
    "numstr_int": _numstr_int,
    "langs": _langs,
}


def _convert_list(f: Field, values: list[Any], path: str, raw: _Raw) -> pa.Array:
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
    out = []
    for op in operations:
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
        return value.__class__ is int
    if pa.types.is_floating(t):
        return value.__class__ in (int, float)
    if pa.types.is_string(t):
        # patch values are JSON text made here, whatever they were on the wire
        return True
    return True


@cache
def _struct_names(t: pa.StructType) -> frozenset[str]:
    return frozenset(t.field(i).name for i in range(t.num_fields))
