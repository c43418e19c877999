"""Sessions: one row per ``sessionId`` (``sessions``), or session attributes on every row
(``with_sessions``), so funnels can break down by device or country.

Croct sends device, browser and location only on clientDetected/locationDetected rows; a
session takes the first known value of each. Pure computation on the frame: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa

from croct_pandas.funnel_engine import time_values, type_codes
from croct_pandas.schema import ENUMS

__all__ = ["SESSION_COLUMNS", "sessions", "with_sessions"]

STRING = pd.StringDtype("pyarrow")

#: Attributes taken from the first row of the session where they are known.
FIRST_KNOWN = {
    "device": "payload.client.device.category",
    "browser": "payload.client.browser.name",
    "os": "payload.client.device.operatingSystem.name",
    "country": "payload.location.country",
    "region": "payload.location.region.name",
    "city": "payload.location.city",
}
#: Attributes of the session's first pageOpened row.
LANDING = {"landing_url": "payload.url", "referrer": "payload.referrer"}
#: Commerce columns read for counts and sums.
PAYLOAD = (
    "payload.product.productId",
    "payload.cart.total",
    "payload.order.total",
    "payload.order.currency",
)

SESSION_COLUMNS = (
    "sessionId", "userId", "start", "end", "duration", "events", "pages", "products_viewed",
    "cart_value", "ordered", "revenue", "currency", *FIRST_KNOWN, *LANDING,
)  # fmt: skip


def sessions(df: pd.DataFrame) -> pd.DataFrame:
    """One row per session, sorted by start (``docs/funnels.md``, "Sessions").

    Rows without a ``sessionId`` are left out; payload columns the frame lacks give null
    columns. ``revenue`` is 0.0 without orders and NaN when the orders use several currencies
    (``currency`` is then null).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({
    ...     "type": ["pageOpened", "orderPlaced"], "sessionId": ["s1", "s1"], "userId": ["u", "u"],
    ...     "timestamp": pd.to_datetime([0, 60_000], unit="ms", utc=True),
    ...     "payload.order.total": [None, 30.0], "payload.order.currency": [None, "USD"],
    ... })
    >>> sessions(df)[["sessionId", "duration", "pages", "ordered", "revenue", "currency"]]
      sessionId        duration  pages  ordered  revenue currency
    0        s1 0 days 00:01:00      1     True     30.0      USD
    """
    table, _ = _summarise(df)
    order = np.argsort(time_values(table["start"])[0], kind="stable")
    return table.take(order).reset_index(drop=True)


def with_sessions(df: pd.DataFrame, columns: Iterable[str] = ("device", "country")) -> pd.DataFrame:
    """A copy of ``df`` with ``session.<column>`` on every row of each session.

    Parameters
    ----------
    df : pandas.DataFrame
        An event frame with ``type``, ``timestamp``, ``sessionId`` and ``userId``.
    columns : str or iterable of str, default ("device", "country")
        Columns of :func:`sessions` (all but ``sessionId``); rows without a session get null.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({
    ...     "type": ["clientDetected", "pageOpened"], "sessionId": ["s1", "s1"],
    ...     "userId": ["u", "u"], "timestamp": pd.to_datetime([0, 1], unit="ms", utc=True),
    ...     "payload.client.device.category": ["mobile", None],
    ... })
    >>> with_sessions(df, ["device"])["session.device"].tolist()
    ['mobile', 'mobile']
    """
    wanted = [columns] if isinstance(columns, str) else list(columns)
    allowed = SESSION_COLUMNS[1:]
    unknown = [c for c in wanted if c not in allowed]
    if unknown or not all(isinstance(c, str) for c in wanted):
        raise ValueError(
            f"columns: unknown session column(s) {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(allowed)}"
        )
    table, codes = _summarise(df)
    out = df.copy()
    for name in wanted:
        values = table[name].array
        out[f"session.{name}"] = values.take(np.asarray(codes), allow_fill=True)
    return out


def _summarise(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Sessions in order of first appearance, and each row's session number (-1: none)."""
    codes, uniques = pd.factorize(df["sessionId"])
    codes = np.asarray(codes, dtype=np.int64)
    n = len(uniques)
    rows = np.flatnonzero(codes >= 0)
    # (session, time) order, stable, so "first" and "last" follow time then row position
    rows = rows[np.lexsort((time_values(df["timestamp"])[0][rows], codes[rows]))]
    wanted = ["type", "timestamp", "userId", *FIRST_KNOWN.values(), *LANDING.values(), *PAYLOAD]
    frame = df[[c for c in dict.fromkeys(wanted) if c in df.columns]].take(rows)
    code = codes[rows]
    kinds, names = type_codes(frame["type"])
    lookup = {name: i for i, name in enumerate(names)}

    def of_type(name: str) -> np.ndarray:
        return kinds == lookup.get(name, -2)

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(code[mask], minlength=n).astype(np.int64)

    grouped = frame.groupby(code, sort=True)
    stamps = frame["timestamp"]
    table = pd.DataFrame(index=pd.RangeIndex(n))
    table["sessionId"] = uniques
    table["userId"] = grouped["userId"].first().reindex(table.index).array
    table["start"] = stamps.groupby(code).min().array
    table["end"] = stamps.groupby(code).max().array
    table["duration"] = table["end"] - table["start"]
    table["events"] = count(np.ones(len(code), dtype=bool))
    table["pages"] = count(of_type("pageOpened"))
    table["products_viewed"] = _distinct(frame, code, of_type("productViewed"), n)
    table["cart_value"] = _last_known(frame, code, "payload.cart.total", n)
    orders = of_type("orderPlaced")
    table["ordered"] = pd.array(count(orders) > 0, dtype="boolean")
    table["revenue"], table["currency"] = _revenue(frame, code, orders, n)
    for name, column in FIRST_KNOWN.items():
        if column in frame.columns:
            table[name] = grouped[column].first().reindex(table.index).array
        elif name == "device":
            missing = np.full(n, -1)
            table[name] = pd.Categorical.from_codes(missing, categories=ENUMS["deviceCategory"])
        else:
            table[name] = _null_text(n)
    pages = np.flatnonzero(of_type("pageOpened"))
    seen, first = np.unique(code[pages], return_index=True)
    at = np.full(n, -1, dtype=np.int64)
    at[seen] = pages[first]
    for name, column in LANDING.items():
        values = frame[column].array if column in frame.columns else _null_text(1)
        index = at if column in frame.columns else np.full(n, -1)
        table[name] = pd.api.extensions.take(values, index, allow_fill=True)
    return table, codes


def _distinct(frame: pd.DataFrame, code: np.ndarray, mask: np.ndarray, n: int) -> pd.Series:
    column = "payload.product.productId"
    if column not in frame.columns:
        return pd.Series(pd.arrays.IntegerArray(np.zeros(n, np.int64), np.ones(n, dtype=bool)))
    ids = frame[column].to_numpy()[mask]
    known = ~pd.isna(ids)
    pairs = pd.DataFrame({"session": code[mask][known], "id": ids[known]}).drop_duplicates()
    counts = np.bincount(pairs["session"].to_numpy(dtype=np.int64), minlength=n)
    return pd.Series(counts, dtype="Int64")


def _last_known(frame: pd.DataFrame, code: np.ndarray, column: str, n: int) -> np.ndarray:
    if column not in frame.columns:
        return np.full(n, np.nan)
    values = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    known = np.flatnonzero(~np.isnan(values))
    # rows run in (session, time) order: a session's last known value ends its run
    last = known[np.r_[code[known][1:] != code[known][:-1], True]] if len(known) else known
    out = np.full(n, np.nan)
    out[code[last]] = values[last]
    return out


def _revenue(
    frame: pd.DataFrame, code: np.ndarray, orders: np.ndarray, n: int
) -> tuple[np.ndarray, pd.arrays.ArrowStringArray]:
    currency = _null_text(n)
    if "payload.order.total" not in frame.columns:
        return np.full(n, np.nan), currency
    totals = frame["payload.order.total"].to_numpy(dtype=np.float64, na_value=np.nan)[orders]
    revenue = np.bincount(code[orders], weights=np.nan_to_num(totals), minlength=n).astype(float)
    if "payload.order.currency" in frame.columns:
        spent = pd.DataFrame(
            {"session": code[orders], "currency": frame["payload.order.currency"].array[orders]}
        ).dropna()
        kinds = spent.drop_duplicates().groupby("session")["currency"]
        several = kinds.size()
        revenue[several.index[several.to_numpy() > 1].to_numpy(dtype=np.int64)] = np.nan
        single = kinds.first()[several == 1]
        currency[single.index.to_numpy(dtype=np.int64)] = single.astype(STRING).array
    return revenue, currency


def _null_text(n: int) -> pd.arrays.ArrowStringArray:
    return pd.arrays.ArrowStringArray(pa.nulls(n, pa.string()))
