"""Whether a group of wire events (as dicts) fits the fast path's one-call struct conversion.

``pyarrow.array`` against the group's struct drops keys it does not know and takes a text
where a list belongs for the list of its characters, so before converting, the fast path asks
here: :func:`_all_known` answers for the whole group in C-level passes; when it says no,
:func:`_check_keys` puts each unknown key into ``_croct_raw`` item by item, and a renamed key,
a value of another shape or a list element with unknown keys raises :class:`_NotFast` (the
group then goes value by value through :mod:`croct_pandas.normalize_slow`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from operator import methodcaller
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from croct_pandas.normalize_slow import CORE_KEYS
from croct_pandas.normalize_table import (
    _GET_CONTEXT,
    _GET_PAYLOAD,
    _conversion_type,
    _in_python,
    _NotFast,
    _values_at,
)
from croct_pandas.normalize_tree import Node, Raw, context_node, payload_node
from croct_pandas.schema import CONTEXT_FIELDS, arrow_type, fields_for


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
    """The fields converted as lists (of plain values or of objects: the key checks skip an
    empty text, which pyarrow would take for an empty list)."""
    paths = []
    for root, fields in (("context", CONTEXT_FIELDS), ("payload", fields_for(event_type))):
        for f in fields:
            if _in_python(f):
                continue
            if pa.types.is_list(_conversion_type(f, variant)):
                paths.append((root, f.path))
    return tuple(paths)


def bools_as_numbers(values: list[Any], t: pa.DataType) -> bool:
    """Whether ``values``, converted as ``t``, hold a JSON boolean where a number belongs.

    pyarrow fills a float64 field from ``True`` as 1.0 without a word (it refuses a boolean for
    an integer type), and the fast paths convert numbers, integers and times through float64.
    A boolean there contradicts the schema: the value-by-value path keeps it raw instead.

    Examples
    --------
    >>> price = pa.struct([("price", pa.float64())])
    >>> bools_as_numbers([{"price": 1.5}, None], price)
    False
    >>> bools_as_numbers([[{"price": True}]], pa.list_(price))
    True
    """
    if not _takes_numbers(t):
        return False
    if pa.types.is_floating(t):
        return bool in set(map(type, values))
    if pa.types.is_list(t):
        elements = [e for v in values if v.__class__ is list for e in v]
        return bools_as_numbers(elements, t.value_type)
    objects = [v for v in values if v.__class__ is dict]
    return any(
        bools_as_numbers([o.get(f.name) for o in objects], f.type)
        for f in (t.field(i) for i in range(t.num_fields))
        if _takes_numbers(f.type)
    )


def bools_read_as_numbers(items: list[Mapping[str, Any]], leaves: dict[str, Any]) -> bool:
    """Whether the dict path's converted ``leaves`` of ``items`` read a JSON boolean as a number.

    A boolean can only have become 0.0 or 1.0, so a number leaf is checked against the wire
    only on its rows holding those (rare for times and most numbers); a list leaf holding
    numbers is checked in full by :func:`bools_as_numbers`.

    Examples
    --------
    >>> items = [{"n": True}, {"n": 2.5}]
    >>> leaves = {"n": pa.array(items, pa.struct([("n", pa.float64())])).field("n")}
    >>> bools_read_as_numbers(items, leaves), bools_read_as_numbers(items[1:], leaves)
    (True, False)
    """
    for name, values in leaves.items():
        if not _takes_numbers(values.type):
            continue
        path = tuple(name.split("."))
        if not pa.types.is_floating(values.type):
            if bools_as_numbers(_values_at(items, path), values.type):
                return True
            continue
        hits = pc.fill_null(pc.is_in(values, value_set=_ZERO_ONE), False)
        if not pc.any(hits).as_py():
            continue
        rows = [items[row] for row in np.flatnonzero(hits.to_numpy(zero_copy_only=False))]
        if bool in set(map(type, _values_at(rows, path))):
            return True
    return False


_ZERO_ONE = pa.array([0.0, 1.0])


@cache
def _takes_numbers(t: pa.DataType) -> bool:
    """Whether a value of ``t`` holds a float64 somewhere."""
    if pa.types.is_floating(t):
        return True
    if pa.types.is_list(t):
        return _takes_numbers(t.value_type)
    if pa.types.is_struct(t):
        return any(_takes_numbers(t.field(i).type) for i in range(t.num_fields))
    return False


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
