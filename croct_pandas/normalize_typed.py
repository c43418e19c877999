"""Response bodies -> per-type Arrow tables without building Python dicts: the usual case, fast.

msgspec decodes each body straight into typed objects: one class per event type, told apart by
``payload["@type"]``, and every level closed to keys the schema does not know. The columns are
then read off those objects. A batch this path cannot take as it is (a key the schema does not
know, spec 0.8.0's spelling, an event without an ``id``, a value of another shape) is declined
(``None``), and takes the dict path of :mod:`croct_pandas.normalize`, where such events are
handled field by field. Both paths give the same tables: tests compare them on every type.

Why: building ~25 dicts per event, checking their keys and freeing them was over half of the
normalising time; typed objects skip the dicts and the key check is part of decoding.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import cache
from operator import attrgetter
from typing import Any, Union

import msgspec
import pyarrow as pa

from croct_pandas.normalize import NormalizedPage
from croct_pandas.normalize_check import _struct_known, bools_as_numbers, lists_or_nulls
from croct_pandas.normalize_table import (
    _CONVERSION_ERRORS,
    CORE_CONVERSION,
    _conversion_type,
    _in_python,
    _NotFast,
    _storage_table,
)
from croct_pandas.normalize_tree import Node, Raw, context_node, payload_node
from croct_pandas.schema import EVENT_TYPES

__all__ = ["normalize_bodies_typed"]


def normalize_bodies_typed(bodies: Sequence[bytes | memoryview]) -> NormalizedPage | None:
    """The items of whole response bodies, normalised; None when the dict path must do it.

    Examples
    --------
    >>> body = (b'{"items": [{"id": "e1", "timestamp": 1767225600000, "sessionId": "s",'
    ...         b' "userId": "u", "payload": {"@type": "tabOpened", "tabId": "t"}}]}')
    >>> normalize_bodies_typed([body]).tables["tabOpened"].column("payload.tabId").to_pylist()
    ['t']
    >>> normalize_bodies_typed([body.replace(b'"tabId"', b'"tabKey"')]) is None
    True
    """
    decode = _decoder().decode
    groups: dict[type, list[Any]] = {}
    try:
        for body in bodies:
            for event in decode(body).items:
                groups.setdefault(event.payload.__class__, []).append(event)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return None
    out = NormalizedPage()
    for cls, events in groups.items():
        table = _group_table(_TYPE_OF[cls], events)
        if table is None:
            return None
        out.tables[_TYPE_OF[cls]] = table
    if out.tables:
        out.spec_versions.add("0.7")
    return out


def _group_table(event_type: str, events: list[Any]) -> pa.Table | None:
    # the dict path's order: the whole group in one spelling of the text-or-number fields,
    # then the other; what neither takes is declined (the dict path then goes value by value)
    for variant in (0, 1):
        try:
            return _group_table_as(event_type, events, variant)
        except _CONVERSION_ERRORS:
            continue
        except (_NotFast, TypeError, ValueError):
            # a shape the dict path handles field by field, or a value orjson refuses to write
            # (an integer beyond 64 bits in a free-form object)
            return None
    return None


def _group_table_as(event_type: str, events: list[Any], variant: int) -> pa.Table | None:
    n = len(events)
    leaves: dict[str, pa.Array] = {}
    for name, type_ in CORE_CONVERSION:
        values = list(map(attrgetter(name), events))
        if bools_as_numbers(values, type_):
            raise _NotFast
        leaves[name] = pa.array(values, type_)
    # only spec 0.7.x events that carry their id: the dict path tells the others apart
    if leaves["id"].null_count or leaves["eventId"].null_count != n:
        return None
    objects: dict[str, list[Any]] = {}
    contexts = list(map(_CONTEXT, events))
    _read_node(contexts, context_node(), _context_class(), "context.", leaves, objects, variant)
    payloads = list(map(_PAYLOAD, events))
    node, cls = payload_node(event_type), payloads[0].__class__
    _read_node(payloads, node, cls, "payload.", leaves, objects, variant)
    return _storage_table(
        event_type, [], leaves, Raw(), lambda prefix, path: objects[prefix + ".".join(path)]
    )


_CONTEXT = attrgetter("context")
_PAYLOAD = attrgetter("payload")


def _read_node(
    objects: list[Any],
    node: Node,
    cls: type,
    prefix: str,
    leaves: dict[str, pa.Array],
    values: dict[str, list[Any]],
    variant: int,
) -> None:
    """Fill ``leaves`` (Arrow arrays in the conversion types of ``variant``) and ``values``
    (Python values of the fields built in Python) from ``objects`` (``cls`` or None)."""
    if None in objects:
        empty = _empty(cls)
        objects = [empty if o is None else o for o in objects]
    hints = _child_classes(cls)
    for key, child in node.children.items():
        column = list(map(attrgetter(key), objects))
        name = prefix + key
        if isinstance(child, Node):
            _read_node(column, child, hints[key], name + ".", leaves, values, variant)
        elif _in_python(child):
            values[name] = column
        else:
            leaves[name] = _convert(child, column, variant)


def _convert(f: Any, column: list[Any], variant: int) -> pa.Array:
    """The column in the dict path's conversion type for ``variant``."""
    conversion = _conversion_type(f, variant)
    if pa.types.is_list(conversion):
        # pyarrow would take a text for a list of its characters: the dict path keeps such
        # values raw, value by value
        if not lists_or_nulls(column):
            raise _NotFast
        if pa.types.is_struct(conversion.value_type):
            # list elements are plain dicts here: their keys are checked as the dict path does
            elements = [e for values in column if values for e in values if e is not None]
            if elements and not _struct_known(elements, conversion.value_type):
                raise _NotFast
    if bools_as_numbers(column, conversion):
        raise _NotFast
    return pa.array(column, conversion)


# -- the typed classes ------------------------------------------------------------------------


_DECODER: msgspec.json.Decoder[Any] | None = None
_DECODER_LOCK = threading.Lock()


def _decoder() -> msgspec.json.Decoder[Any]:
    """The decoder of whole bodies, made once.

    Made under a lock: msgspec fills in a class's type information the first time a decoder is
    built for it, and another thread building one for the same classes meanwhile can see that
    information half made (a crash, seen with the export's threads normalising at once).
    """
    global _DECODER
    decoder = _DECODER
    if decoder is None:
        with _DECODER_LOCK:
            if _DECODER is None:
                _DECODER = _build_decoder()
            decoder = _DECODER
    return decoder


def _reset_lock_after_fork() -> None:
    global _DECODER_LOCK
    _DECODER_LOCK = threading.Lock()  # a thread that held it is not in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_after_fork)


def _build_decoder() -> msgspec.json.Decoder[Any]:
    payloads = tuple(_payload_class(t) for t in EVENT_TYPES)
    event = msgspec.defstruct(
        "Event",
        [
            *((name, Any, None) for name, _ in CORE_CONVERSION),
            ("context", Union[_context_class(), None], None),  # noqa: UP007
            ("payload", Union[payloads]),  # noqa: UP007
        ],
        forbid_unknown_fields=True,
        gc=False,
        kw_only=True,
    )
    body = msgspec.defstruct("Body", [("items", list[event])])  # type: ignore[valid-type]
    return msgspec.json.Decoder(body)


@cache
def _context_class() -> type:
    return _node_class(context_node(), "Context")


@cache
def _payload_class(event_type: str) -> type:
    cls = _node_class(payload_node(event_type), event_type, tag=event_type)
    _TYPE_OF[cls] = event_type
    return cls


_TYPE_OF: dict[type, str] = {}


def _node_class(node: Node, name: str, tag: str | None = None) -> type:
    fields: list[tuple[str, Any, Any]] = []
    for key, child in node.children.items():
        if isinstance(child, Node):
            sub = _node_class(child, f"{name}_{key}")
            fields.append((key, Union[sub, None], None))  # noqa: UP007
        else:
            fields.append((key, Any, None))
    options: dict[str, Any] = {"forbid_unknown_fields": True, "gc": False}
    if tag is not None:
        # spec 0.8.0's discriminator is a known key of 0.7.x payloads too (and not a column)
        fields.append(("type", Any, None))
        options.update(tag_field="@type", tag=tag)
    return msgspec.defstruct(name, fields, **options)


@cache
def _child_classes(cls: type) -> dict[str, type]:
    """The class of each nested object field of ``cls``."""
    out = {}
    for f in msgspec.structs.fields(cls):
        args = [a for a in getattr(f.type, "__args__", ()) if isinstance(a, type)]
        nested = [a for a in args if issubclass(a, msgspec.Struct)]
        if nested:
            out[f.name] = nested[0]
    return out


@cache
def _empty(cls: type) -> Any:
    return cls()
