"""Sessions from small hand-made frames: every column of public-api.md "Sessions"."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import croct_pandas  # noqa: F401  (registers df.croct)
from croct_pandas.sessions import SESSION_COLUMNS, sessions, with_sessions

T0 = pd.Timestamp("2026-01-01", tz="UTC")
STRING = pd.StringDtype("pyarrow")

# (sessionId, userId, type, minutes after T0, {payload columns})
ROWS = [
    # s1 starts second (10 min); s2 starts first (5 min)
    ("s1", "u1", "pageOpened", 10, {"payload.url": "https://shop/a", "payload.referrer": "https://g"}),
    ("s1", "u1", "clientDetected", 10, {"payload.client.device.category": "mobile",
                                        "payload.client.browser.name": "Safari",
                                        "payload.client.device.operatingSystem.name": "iOS"}),
    ("s1", "u1", "locationDetected", 11, {"payload.location.country": "BR",
                                          "payload.location.region.name": "São Paulo",
                                          "payload.location.city": "Campinas"}),
    ("s1", "u1", "productViewed", 12, {"payload.product.productId": "p1"}),
    ("s1", "u1", "productViewed", 13, {"payload.product.productId": "p1"}),  # same product
    ("s1", "u1", "productViewed", 14, {"payload.product.productId": "p2"}),
    ("s1", "u1", "pageOpened", 15, {"payload.url": "https://shop/b"}),
    ("s1", "u1", "cartViewed", 16, {"payload.cart.total": 10.0}),
    ("s1", "u1", "cartModified", 17, {"payload.cart.total": 25.0}),
    ("s1", "u1", "orderPlaced", 18, {"payload.order.total": 25.0, "payload.order.currency": "BRL"}),
    ("s1", "u1", "orderPlaced", 19, {"payload.order.total": 5.0, "payload.order.currency": "BRL"}),
    # s2: a later clientDetected does not replace the first known device
    ("s2", "u2", "clientDetected", 5, {"payload.client.device.category": "desktop"}),
    ("s2", "u2", "clientDetected", 6, {"payload.client.device.category": "tablet"}),
    ("s2", "u2", "orderPlaced", 7, {"payload.order.total": 10.0, "payload.order.currency": "USD"}),
    ("s2", "u2", "orderPlaced", 8, {"payload.order.total": 20.0, "payload.order.currency": "EUR"}),
    # s3: one page, no order; a row without a session
    ("s3", "u3", "pageOpened", 30, {}),
    (None, "u4", "pageOpened", 31, {}),
]  # fmt: skip

PAYLOAD = {
    "payload.url": STRING,
    "payload.referrer": STRING,
    "payload.client.device.category": "category",
    "payload.client.browser.name": STRING,
    "payload.client.device.operatingSystem.name": STRING,
    "payload.location.country": STRING,
    "payload.location.region.name": STRING,
    "payload.location.city": STRING,
    "payload.product.productId": STRING,
    "payload.cart.total": "float64",
    "payload.order.total": "float64",
    "payload.order.currency": STRING,
}


def frame(rows: list[tuple] = ROWS, columns: dict[str, object] = PAYLOAD) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "type": pd.Categorical([r[2] for r in rows]),
            "timestamp": pd.Series([T0 + pd.Timedelta(minutes=r[3]) for r in rows]).astype(
                "datetime64[ms, UTC]"
            ),
            "sessionId": pd.array([r[0] for r in rows], dtype=STRING),
            "userId": pd.array([r[1] for r in rows], dtype=STRING),
        }
    )
    for column, dtype in columns.items():
        df[column] = pd.Series([r[4].get(column) for r in rows]).astype(dtype)
    return df


def test_one_row_per_session_sorted_by_start() -> None:
    out = sessions(frame())
    assert out.columns.tolist() == list(SESSION_COLUMNS)
    assert out["sessionId"].tolist() == ["s2", "s1", "s3"]  # starts 5, 10 and 30 min
    assert out["userId"].tolist() == ["u2", "u1", "u3"]
    assert out["start"].tolist() == [T0 + pd.Timedelta(minutes=m) for m in (5, 10, 30)]
    assert out["duration"].tolist() == [pd.Timedelta(minutes=m) for m in (3, 9, 0)]
    assert out["events"].tolist() == [4, 11, 1]
    assert out["pages"].tolist() == [0, 2, 1]


def test_commerce_columns() -> None:
    out = sessions(frame()).set_index("sessionId")
    # p1 twice and p2 once: two distinct products
    assert out["products_viewed"].to_dict() == {"s2": 0, "s1": 2, "s3": 0}
    # the last cart seen in s1 is the cartModified one
    assert out.loc["s1", "cart_value"] == 25.0 and np.isnan(out.loc["s2", "cart_value"])
    assert out["ordered"].tolist() == [True, True, False]
    # s1: 25 + 5 BRL; s2 paid in USD and EUR: no sum; s3: no order, nothing spent
    assert out.loc["s1", "revenue"] == 30.0 and out.loc["s1", "currency"] == "BRL"
    assert np.isnan(out.loc["s2", "revenue"]) and pd.isna(out.loc["s2", "currency"])
    assert out.loc["s3", "revenue"] == 0.0 and pd.isna(out.loc["s3", "currency"])


def test_first_known_attributes_and_landing_page() -> None:
    out = sessions(frame()).set_index("sessionId")
    assert out.loc["s2", "device"] == "desktop"  # the later "tablet" does not replace it
    assert out.loc["s1", "device"] == "mobile" and pd.isna(out.loc["s3", "device"])
    s1 = out.loc["s1"]
    assert (s1["browser"], s1["os"], s1["country"], s1["region"], s1["city"]) == (
        "Safari", "iOS", "BR", "São Paulo", "Campinas"
    )  # fmt: skip
    # the first pageOpened (not the later /b) gives the landing page and the referrer
    assert (s1["landing_url"], s1["referrer"]) == ("https://shop/a", "https://g")
    assert pd.isna(out.loc["s2", "landing_url"]) and pd.isna(out.loc["s3", "referrer"])


def test_dtypes() -> None:
    dtypes = sessions(frame()).dtypes
    assert dtypes["sessionId"] == STRING and dtypes["userId"] == STRING
    assert str(dtypes["start"]) == "datetime64[ms, UTC]" and str(dtypes["end"]) == str(
        dtypes["start"]
    )
    assert str(dtypes["duration"]) == "timedelta64[ms]"
    assert dtypes["events"] == np.int64 and dtypes["pages"] == np.int64
    assert dtypes["products_viewed"] == "Int64"
    assert dtypes["cart_value"] == np.float64 and dtypes["revenue"] == np.float64
    assert dtypes["ordered"] == "boolean" and dtypes["currency"] == STRING
    assert isinstance(dtypes["device"], pd.CategoricalDtype)
    assert dtypes["country"] == STRING and dtypes["landing_url"] == STRING


def test_missing_payload_columns_give_null_columns() -> None:
    out = sessions(frame(columns={}))
    assert out["sessionId"].tolist() == ["s2", "s1", "s3"]
    assert out["events"].tolist() == [4, 11, 1] and out["ordered"].tolist() == [True, True, False]
    for name in ("products_viewed", "cart_value", "revenue", "currency", "device", "browser",
                 "os", "country", "region", "city", "landing_url", "referrer"):  # fmt: skip
        assert out[name].isna().all(), name
    assert list(out["device"].cat.categories) == [
        "desktop", "tablet", "mobile", "bot", "other", "unknown"
    ]  # fmt: skip


def test_an_empty_frame_gives_no_sessions() -> None:
    out = sessions(frame(rows=ROWS[-1:]))  # only a row without a session
    assert out.empty and out.columns.tolist() == list(SESSION_COLUMNS)


def test_with_sessions_puts_attributes_on_every_row() -> None:
    df = frame()
    out = with_sessions(df)
    assert out.columns.tolist()[-2:] == ["session.device", "session.country"]
    by_row = out[["sessionId", "session.device", "session.country"]].astype(object)
    assert by_row.iloc[3].tolist() == ["s1", "mobile", "BR"]  # a productViewed row of s1
    assert by_row.iloc[13, :2].tolist() == ["s2", "desktop"] and pd.isna(by_row.iloc[13, 2])
    assert out["session.device"].isna().tolist()[-2:] == [True, True]  # s3, and no session
    assert "session.device" not in df.columns  # a copy
    one = with_sessions(df, "revenue")
    assert one["session.revenue"].iloc[0] == 30.0


def test_with_sessions_feeds_a_funnel_breakdown() -> None:
    df = frame()
    result = df.croct.with_sessions().croct.funnel(
        ["productViewed", "orderPlaced"], breakdown="session.device"
    )
    assert result.table["session.device"].tolist() == ["mobile", "mobile"]
    assert result.table["entities"].tolist() == [1, 1]


def test_with_sessions_rejects_unknown_columns() -> None:
    with pytest.raises(ValueError, match=r"columns: unknown session column\(s\) 'colour'"):
        with_sessions(frame(), ["device", "colour"])
    with pytest.raises(ValueError, match="columns: unknown"):
        with_sessions(frame(), ["sessionId"])


def test_accessor_hands_off() -> None:
    df = frame()
    pd.testing.assert_frame_equal(df.croct.sessions(), sessions(df))
