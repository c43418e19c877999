"""``df.croct.items()``: one row per cart or order item, with the item's fields flattened."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from croct_pandas.schema import CART_ITEM, ITEM_TYPE

__all__ = ["ITEM_SOURCES", "explode_items"]

_CORE = ["id", "type", "timestamp", "sessionId", "userId"]

#: event type -> (list column of its items, column of the currency they are priced in)
ITEM_SOURCES: dict[str, tuple[str, str]] = {
    "cartViewed": ("payload.cart.items", "payload.cart.currency"),
    "cartModified": ("payload.cart.items", "payload.cart.currency"),
    "checkoutStarted": ("payload.cart.items", "payload.cart.currency"),
    "cartAbandoned": ("payload.cart.items", "payload.cart.currency"),
    "orderPlaced": ("payload.order.items", "payload.order.currency"),
}
_ITEM_COLUMNS = ["item." + f.name for f in CART_ITEM]
_INT_COLUMNS = {"item.index", "item.quantity"}


def explode_items(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per item of cartViewed, cartModified, checkoutStarted, cartAbandoned,
    productAbandoned (its ``cartItem``) and orderPlaced events.

    Columns: the event's ``id``, ``type``, ``timestamp``, ``sessionId``, ``userId``, the
    ``currency`` of its cart or order, then ``item.index``, ``item.product.productId``, …,
    ``item.quantity``, ``item.total``, ``item.discount``, ``item.coupon``. Sorted by
    timestamp, id and item index.

    Examples
    --------
    >>> import croct_pandas
    >>> from croct_pandas.emulator import generate_events
    >>> from croct_pandas.frame import build_frame
    >>> from croct_pandas.normalize import normalize_items
    >>> df = build_frame(normalize_items(generate_events(users=50, days=1)).tables.items())
    >>> items = df.croct.items()
    >>> str(items["item.quantity"].dtype), bool((items["item.quantity"] >= 1).all())
    ('Int64', True)
    """
    types = frame["type"].astype("string")
    parents: list[np.ndarray] = []
    currencies: list[pa.Array] = []
    columns: dict[str, list[pa.Array]] = {c: [] for c in _ITEM_COLUMNS}
    for event_type, (list_col, currency_col) in ITEM_SOURCES.items():
        if list_col not in frame:
            continue
        rows = np.flatnonzero((types == event_type).to_numpy(dtype=bool, na_value=False))
        if not len(rows):
            continue
        lists = pa.array(frame[list_col].iloc[rows], from_pandas=True)
        if not pa.types.is_list(lists.type):
            continue  # a column that fell back to text holds no structure to explode
        parent = pa.compute.list_parent_indices(lists).to_numpy()
        flat = pa.compute.list_flatten(lists)
        parents.append(rows[parent])
        currencies.append(_column(frame, currency_col, rows[parent]))
        leaves = _leaves(flat.cast(ITEM_TYPE) if flat.type != ITEM_TYPE else flat)
        for name in _ITEM_COLUMNS:
            columns[name].append(leaves[name])
    _add_product_abandoned(frame, types, parents, currencies, columns)
    positions = np.concatenate(parents) if parents else np.array([], dtype=np.int64)
    out = frame[_CORE].iloc[positions].reset_index(drop=True)
    out["currency"] = _to_pandas(_concat(currencies, pa.string()))
    for name in _ITEM_COLUMNS:
        type_ = pa.int64() if name in _INT_COLUMNS else _leaf_type(name)
        out[name] = _to_pandas(_concat(columns[name], type_))
    order = out.sort_values(["timestamp", "id", "item.index"], kind="stable").index
    return out.loc[order].reset_index(drop=True)


def _add_product_abandoned(
    frame: pd.DataFrame,
    types: pd.Series,
    parents: list[np.ndarray],
    currencies: list[pa.Array],
    columns: dict[str, list[pa.Array]],
) -> None:
    rows = np.flatnonzero((types == "productAbandoned").to_numpy(dtype=bool, na_value=False))
    if not len(rows):
        return
    parents.append(rows)
    currencies.append(_column(frame, "payload.cart.currency", rows))
    for name in _ITEM_COLUMNS:
        source = "payload.cartItem." + name[len("item.") :]
        columns[name].append(_column(frame, source, rows))


def _column(frame: pd.DataFrame, name: str, rows: np.ndarray) -> pa.Array:
    if name not in frame:
        return pa.nulls(len(rows))
    return pa.array(frame[name].iloc[rows], from_pandas=True)


def _leaves(struct: pa.Array, prefix: str = "item.") -> dict[str, pa.Array]:
    out: dict[str, pa.Array] = {}
    for field, child in zip(struct.type, struct.flatten()):
        if pa.types.is_struct(child.type):
            out.update(_leaves(child, f"{prefix}{field.name}."))
        else:
            out[prefix + field.name] = child
    return out


def _leaf_type(name: str) -> pa.DataType:
    t: Any = ITEM_TYPE
    for key in name.split(".")[1:]:
        t = t.field(key).type
    return t


def _concat(chunks: list[pa.Array], type_: pa.DataType) -> pa.ChunkedArray:
    return pa.chunked_array([c if c.type == type_ else c.cast(type_) for c in chunks], type_)


def _to_pandas(values: pa.ChunkedArray) -> pd.Series:
    t = values.type
    if pa.types.is_string(t):
        return pd.Series(pd.array(values, dtype=pd.StringDtype("pyarrow")))
    if pa.types.is_integer(t):
        return pd.Series(pd.array(values, dtype=pd.Int64Dtype()))
    return values.to_pandas()
