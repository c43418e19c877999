"""The tree of known wire keys per event type, and the collector of values that do not fit.

Both normalisation paths (:mod:`croct_pandas.normalize` and :mod:`croct_pandas.normalize_slow`)
walk these trees to find fields the schema does not know, which go into ``_croct_raw``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
import pyarrow as pa

from croct_pandas.schema import CONTEXT_FIELDS, RENAMES_0_8, Field, fields_for

__all__ = ["DISCRIMINATORS", "Node", "Raw", "context_node", "payload_node"]

DISCRIMINATORS = ("@type", "type")
_SORTED = orjson.OPT_SORT_KEYS


@dataclass(eq=False)
class Node:
    children: dict[str, Node | Field]
    #: alternative spellings of a child key (spec 0.8.0 renames)
    aliases: dict[str, str]
    known: frozenset[str]


def _build_node(
    fields: Iterable[tuple[tuple[str, ...], Field]], extra_known: Iterable[str] = ()
) -> Node:
    children: dict[str, Any] = {}
    for path, f in fields:
        if len(path) == 1:
            children[path[0]] = f
        else:
            children.setdefault(path[0], []).append((path[1:], f))
    for key, value in children.items():
        if isinstance(value, list):
            children[key] = _build_node(value)
    return Node(children, {}, frozenset(children) | frozenset(extra_known))


def _with_aliases(root: Node, renames: Mapping[tuple[str, ...], tuple[str, ...]]) -> Node:
    for new, old in renames.items():
        node = root
        for key in old[:-1]:
            child = node.children[key]
            assert isinstance(child, Node)
            node = child
        node.aliases[old[-1]] = new[-1]
        node.known = node.known | {new[-1]}
    return root


@cache
def payload_node(event_type: str) -> Node:
    root = _build_node(((f.path, f) for f in fields_for(event_type)), DISCRIMINATORS)
    return _with_aliases(root, RENAMES_0_8.get(event_type, {}))


@cache
def context_node() -> Node:
    return _build_node((f.path, f) for f in CONTEXT_FIELDS)


class Raw:
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
