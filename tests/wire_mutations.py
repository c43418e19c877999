"""Adversarial wire values, the leaves they go into, and the three normalising paths side by side.

Used by ``test_normalize_differential.py``. A *leaf* is a path into a wire event (keys, and
``0`` for the first element of a list), taken from the schema table rather than from the data,
so fields the emulator leaves out are mutated too. :func:`expected` is the oracle: what the
specs say a value becomes in its column, or :data:`REJECT` when it contradicts the schema (the
cell is then null and the value sits in ``_croct_raw``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from typing import Any

import orjson
import pyarrow as pa
from normalize_compare import plain

from croct_pandas.emulator import generate_events
from croct_pandas.normalize import NormalizedPage, event_type_of, normalize_items
from croct_pandas.normalize_slow import normalize_group_slow
from croct_pandas.normalize_typed import normalize_bodies_typed
from croct_pandas.schema import (
    CONTEXT_FIELDS,
    RAW_COLUMN,
    Field,
    fields_for,
    normalize_enum,
)

#: The oracle's answer for a value that contradicts its field.
REJECT = object()

LONG_TEXT = "x" * 70_000

#: Values put into every leaf; JSON cannot carry NaN or Infinity, so they are left out.
ADVERSARIAL: tuple[Any, ...] = (
    True,
    False,
    0,
    1,
    -0.0,
    1.0,
    1.5,
    2**53 + 1,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    "7",
    "007",
    "1e3",
    " 5",
    "0x1F",
    "1_000",
    "",
    "abc",
    "NaN",
    "-Infinity",
    [],
    {},
    ["a"],
    [1],
    {"a": 1},
    None,
    LONG_TEXT,
    "é\U0001f600\u2028",
)

#: Wire keys of the list elements, below their list (``items.0.product.displayPrice`` ...).
_ELEMENT_KIND = {pa.int64(): "int", pa.float64(): "float", pa.string(): "string"}


@dataclass(frozen=True)
class Leaf:
    """A place in a wire event, the storage column it lands in and the kind the oracle uses."""

    event_type: str
    path: tuple[str | int, ...]
    column: str
    kind: str
    enum: str | None = None
    #: inside a list element: the whole list is kept or kept raw (``convert_list``)
    in_list: bool = False

    @property
    def label(self) -> str:
        return f"{self.event_type}:" + ".".join(map(str, self.path))


def _element_leaves(
    event_type: str, prefix: tuple[str | int, ...], column: str, t: pa.DataType
) -> Iterator[Leaf]:
    if pa.types.is_struct(t):
        for i in range(t.num_fields):
            sub = t.field(i)
            yield from _element_leaves(event_type, (*prefix, sub.name), column, sub.type)
    elif t in _ELEMENT_KIND:
        yield Leaf(event_type, prefix, column, _ELEMENT_KIND[t], in_list=True)


def _field_leaves(event_type: str, root: str, f: Field) -> Iterator[Leaf]:
    column = f"{root}.{f.name}"
    path: tuple[str | int, ...] = (root, *f.path)
    if f.kind == "list":
        assert isinstance(f.element, pa.ListType)
        yield Leaf(event_type, path, column, "list")
        if f.path[-1] != "operations":  # patch values become JSON text whatever they are
            yield from _element_leaves(event_type, (*path, 0), column, f.element.value_type)
    elif f.kind == "map":
        yield Leaf(event_type, path, column, "map")
        yield Leaf(event_type, (*path, "k"), f"{column}.k", "free")
    else:
        yield Leaf(event_type, path, column, f.kind, f.enum)


@cache
def leaves(event_type: str) -> tuple[Leaf, ...]:
    """Every known leaf of a type: core keys, context, payload, list elements, map values."""
    out = [
        Leaf(event_type, ("id",), "id", "id"),
        Leaf(event_type, ("timestamp",), "timestamp", "time"),
        Leaf(event_type, ("sessionId",), "sessionId", "string"),
        Leaf(event_type, ("userId",), "userId", "string"),
        Leaf(event_type, ("systemTimestamp",), "systemTimestamp", "time"),
    ]
    for f in CONTEXT_FIELDS:
        out.extend(_field_leaves(event_type, "context", f))
    for f in fields_for(event_type):
        out.extend(_field_leaves(event_type, "payload", f))
    return tuple(out)


@cache
def _events() -> tuple[dict[str, Any], ...]:
    return tuple(generate_events(users=10, days=1, seed=0))


def base_event(event_type: str) -> dict[str, Any]:
    """A fresh copy of the emulator's richest event of the type (longest JSON), through JSON
    so that no two places share an object (the emulator reuses a cart item's dict)."""
    candidates = [e for e in _events() if e["payload"]["@type"] == event_type]
    richest = max(candidates, key=lambda e: len(orjson.dumps(e)))
    return orjson.loads(orjson.dumps(richest))


def set_at(event: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    """Put ``value`` at ``path``, making missing objects (and one-element lists) on the way."""
    node: Any = event
    for key, after in pairwise(path):
        child = node[key] if isinstance(key, int) else node.get(key)
        if isinstance(after, int):
            if not isinstance(child, list) or not child:
                child = [{}]
        elif not isinstance(child, dict):
            child = {}
        node[key] = child
        node = child
    node[path[-1]] = value


def mutate(event_type: str, leaf: Leaf, value: Any) -> list[dict[str, Any]]:
    """Two events of the type: the untouched base event, and the base with ``value`` at ``leaf``."""
    changed = base_event(event_type)
    changed["id"] = changed["id"] + "-mutated"
    set_at(changed, leaf.path, copy.deepcopy(value))
    return [base_event(event_type), changed]


# -- the three paths ---------------------------------------------------------------------------


def body_of(events: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"items": events})


def slow_page(items: list[dict[str, Any]]) -> dict[str, pa.Table]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        groups.setdefault(event_type_of(item) or "unknown", []).append(item)
    return {t: normalize_group_slow(t, group) for t, group in groups.items()}


@dataclass
class Paths:
    typed: dict[str, pa.Table] | None
    dicts: dict[str, pa.Table]
    slow: dict[str, pa.Table]


def three_paths(events: list[dict[str, Any]]) -> Paths:
    """The same events through the typed path (as a body), the dict path and the slow path."""
    body = body_of(events)
    typed: NormalizedPage | None = normalize_bodies_typed([body])
    return Paths(
        None if typed is None else typed.tables,
        normalize_items(orjson.loads(body)["items"]).tables,
        slow_page(orjson.loads(body)["items"]),
    )


def column_values(table: pa.Table, name: str) -> list[Any]:
    """Python values of a column; times as epoch-ms integers (Python's datetime is too short)."""
    column = table.column(name)
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.int64())
    return plain(column.to_pylist())


def differences(got: dict[str, pa.Table], want: dict[str, pa.Table]) -> list[str]:
    """Columns whose schema or values differ, as short readable lines (empty when equal)."""
    if list(got) != list(want):
        return [f"types {list(got)} != {list(want)}"]
    out = []
    for event_type, table in want.items():
        other = got[event_type]
        if not other.schema.equals(table.schema):
            out.append(f"{event_type}: schema differs")
            continue
        for name in table.column_names:
            mine, theirs = column_values(other, name), column_values(table, name)
            if mine != theirs:
                out.append(f"{event_type}.{name}: {str(mine)[:160]} != {str(theirs)[:160]}")
    return out


def raw_of(table: pa.Table, row: int) -> dict[str, Any]:
    text = table.column(RAW_COLUMN)[row].as_py()
    return {} if text is None else orjson.loads(text)


# -- the oracle --------------------------------------------------------------------------------

_INT64 = range(-(2**63), 2**63)


def _number(value: Any) -> bool:
    return value.__class__ in (int, float)


def _integer(value: Any) -> int | None:
    if value.__class__ is float and value.is_integer():
        value = int(value)
    return value if value.__class__ is int and value in _INT64 else None


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _decimal_text(value: str) -> float | None:
    """A numeric string as the specs mean it: a JSON number in quotes (RFC 8259: an optional
    minus, no leading zeros, no plus, spaces, hex, ``_``, NaN or infinity)."""
    text = value[1:] if value[:1] == "-" else value
    mantissa, e, exponent = text.lower().partition("e")
    whole, dot, fraction = mantissa.partition(".")
    if not _digits(whole) or (whole.startswith("0") and whole != "0"):
        return None
    power = exponent[1:] if exponent[:1] in "+-" else exponent
    if (dot and not _digits(fraction)) or (e and not _digits(power)):
        return None
    return float(value)


def expected(leaf: Leaf, value: Any) -> Any:
    """What the column holds for ``value`` at ``leaf``, or :data:`REJECT`. Only for scalar
    kinds (``None`` for a null value is the column's null)."""
    if value is None:
        return None
    kind = leaf.kind
    if kind in ("string", "id"):
        return value if isinstance(value, str) else REJECT
    if kind == "enum":
        if not isinstance(value, str):
            return REJECT
        return normalize_enum(leaf.enum or "", value)
    if kind in ("int", "time"):
        number = _integer(value)
        # the smallest int64 is pandas' NaT: no frame could hold that time
        return REJECT if number is None or (kind == "time" and number == -(2**63)) else number
    if kind == "float":
        return float(value) if _number(value) else REJECT
    if kind == "numstr_float":
        if _number(value):
            return float(value)
        parsed = _decimal_text(value) if isinstance(value, str) else None
        return REJECT if parsed is None else parsed
    if kind == "numstr_int":
        if isinstance(value, str):
            parsed = _decimal_text(value)
            value = parsed if parsed is not None else value
        number = _integer(value)
        return REJECT if number is None else number
    if kind == "langs":
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ",".join(value)
        return REJECT
    raise ValueError(f"no scalar oracle for kind {kind!r}")
