"""The synthetic store: determinism, realism, and both dialects against schema.py's field table."""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import re
import zoneinfo
from typing import Any

import pytest

from croct_pandas.emulator.dialect import convert, dialect_of, to_0_7
from croct_pandas.emulator.generator import generate_events
from croct_pandas.errors import InvalidArgumentError
from croct_pandas.schema import ENUMS, EVENT_TYPES, PAYLOAD_FIELDS, RENAMES_0_8, wire_enum

START = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)
DAYS = 3
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
GOAL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_:-]{1,98})[A-Za-z0-9]$")
NUMERIC = re.compile(r"^\d+(\.\d+)?$")
SERVER_TYPES = {"locationDetected", "clientDetected", "cartAbandoned", "productAbandoned"}
SERVER_TYPES |= {"audienceMatched"}


@pytest.fixture(scope="module")
def store() -> list[dict[str, Any]]:
    return generate_events(users=400, days=DAYS, seed=11, start="2026-03-02")


@pytest.fixture(scope="module")
def stores(store: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {"0.7.1": store, "0.8.0": convert(store, "0.8.0", seed=11)}


def by_session(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    sessions: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for event in events:
        sessions[event["sessionId"]].append(event)
    return sessions


def kind(event: dict[str, Any]) -> str:
    payload = event["payload"]
    return payload.get("@type", payload.get("type"))


# -- shape and determinism ------------------------------------------------------------------


def test_same_seed_same_store_and_another_seed_another() -> None:
    first = generate_events(users=30, days=2, seed=5)
    assert first == generate_events(users=30, days=2, seed=5)
    other = generate_events(users=30, days=2, seed=6)
    assert {e["id"] for e in first}.isdisjoint(e["id"] for e in other)


def test_events_are_sorted_unique_and_inside_the_period(store: list[dict[str, Any]]) -> None:
    keys = [(e["timestamp"], e["id"]) for e in store]
    assert keys == sorted(keys)
    assert len({e["id"] for e in store}) == len(store)
    low = int(START.timestamp() * 1000)
    assert all(low <= e["timestamp"] < low + DAYS * 86_400_000 for e in store)
    for event in store:
        assert list(event) == ["id", "sessionId", "userId", "timestamp", "context", "payload"]
        assert type(event["timestamp"]) is int
        for key in ("id", "sessionId", "userId"):
            assert UUID.match(event[key]), (key, event[key])


def test_a_store_of_a_few_hundred_users_has_every_type(store: list[dict[str, Any]]) -> None:
    counts = collections.Counter(kind(e) for e in store)
    assert set(counts) == set(EVENT_TYPES)
    assert counts["pageOpened"] > counts["orderPlaced"] > 0
    assert len({e["userId"] for e in store}) >= 390  # nearly every user has a session


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ({"users": 0}, "users"),
        ({"users": "10"}, "users"),
        ({"days": 0}, "days"),
        ({"seed": 1.5}, "seed"),
        ({"start": "yesterday"}, "start"),
    ],
)
def test_bad_arguments_name_the_parameter(arguments: dict[str, Any], name: str) -> None:
    with pytest.raises(InvalidArgumentError, match=name):
        generate_events(**arguments)


# -- a believable shop ----------------------------------------------------------------------


def test_context_is_web_for_tracked_events_and_null_for_server_ones(
    store: list[dict[str, Any]],
) -> None:
    without_metadata = 0
    for event in store:
        context = event["context"]
        if kind(event) in SERVER_TYPES:
            assert context is None
            continue
        assert context["type"] == "web"
        assert UUID.match(context["tabId"])
        assert context["url"].startswith("https://www.acme-shop.com/")
        metadata = context.get("metadata")
        if metadata is None:
            without_metadata += 1
            continue
        assert "sdkVersion" in metadata and len(metadata) <= 5
        for key, value in metadata.items():
            assert IDENT.match(key) and len(key) <= 20 and isinstance(value, str)
            assert key == "sdkVersion" or key.startswith("custom_")
    assert 0 < without_metadata < len(store)


def test_funnel_drops_off_at_each_step(store: list[dict[str, Any]]) -> None:
    viewed = carted = checked_out = ordered = 0
    for events in by_session(store).values():
        kinds = {kind(e) for e in events}
        if "productViewed" not in kinds:
            continue
        viewed += 1
        if "cartModified" in kinds:
            carted += 1
            if "checkoutStarted" in kinds:
                checked_out += 1
                ordered += "orderPlaced" in kinds
    assert 0.2 < carted / viewed < 0.42
    assert 0.25 < checked_out / carted < 0.58
    assert 0.35 < ordered / checked_out < 0.85


def test_carts_left_behind_are_abandoned_item_by_item(store: list[dict[str, Any]]) -> None:
    abandoned = 0
    for events in by_session(store).values():
        carts = [e for e in events if kind(e) in ("cartModified", "cartViewed", "checkoutStarted")]
        ordered = any(kind(e) == "orderPlaced" for e in events)
        gone = [e for e in events if kind(e) == "cartAbandoned"]
        products = [e for e in events if kind(e) == "productAbandoned"]
        last_cart = carts[-1]["payload"]["cart"] if carts else None
        if ordered or not last_cart or not last_cart["items"]:
            assert not gone and not products
            continue
        abandoned += 1
        assert len(gone) == 1 and gone[0]["payload"]["cart"]["items"] == last_cart["items"]
        assert [p["payload"]["cartItem"] for p in products] == last_cart["items"]
        assert all(p["payload"]["cart"] == gone[0]["payload"]["cart"] for p in products)
        # the session times out 30 minutes after the last activity (pings are not activity)
        active = [e for e in events if e["context"] is not None and kind(e) != "nothingChanged"]
        assert gone[0]["timestamp"] >= active[-1]["timestamp"] + 30 * 60_000
        rest = [e for e in events if kind(e) not in ("cartAbandoned", "productAbandoned")]
        assert gone[0]["timestamp"] > rest[-1]["timestamp"]
    assert abandoned > 20


def test_carts_grow_and_shrink_and_orders_come_from_carts(store: list[dict[str, Any]]) -> None:
    shrunk = grew = 0
    for events in by_session(store).values():
        sizes = [
            sum(item["quantity"] for item in e["payload"]["cart"]["items"])
            for e in events
            if kind(e) == "cartModified"
        ]
        grew += any(b > a for a, b in itertools.pairwise(sizes))
        shrunk += any(b < a for a, b in itertools.pairwise(sizes))
        for event in events:
            if kind(event) == "orderPlaced":
                checkout = [e for e in events if kind(e) == "checkoutStarted"][-1]
                order = event["payload"]["order"]
                assert (
                    order["items"] and order["currency"] == checkout["payload"]["cart"]["currency"]
                )
    assert grew > 10 and shrunk > 5


def test_one_currency_per_user_and_several_overall(store: list[dict[str, Any]]) -> None:
    per_user: dict[str, set[str]] = collections.defaultdict(set)
    for event in store:
        payload = event["payload"]
        money = payload.get("cart") or payload.get("order")
        if money:
            per_user[event["userId"]].add(money["currency"])
    assert all(len(codes) == 1 for codes in per_user.values())
    assert len(set().union(*per_user.values())) >= 4


def test_visitors_are_anonymous_or_signed_in_with_a_stable_external_id(
    store: list[dict[str, Any]],
) -> None:
    external: dict[str, set[str]] = collections.defaultdict(set)
    for event in store:
        if kind(event).startswith("userSigned"):
            external[event["userId"]].add(event["payload"]["externalUserId"])
    users = {e["userId"] for e in store}
    assert all(len(ids) == 1 for ids in external.values())
    assert 0.05 < len(external) / len(users) < 0.6
    kinds = {kind(e) for e in store}
    assert {"userSignedUp", "userSignedIn", "userSignedOut"} <= kinds


def test_traffic_peaks_in_the_local_evening(store: list[dict[str, Any]]) -> None:
    hours: collections.Counter[int] = collections.Counter()
    for event in store:
        location = event["payload"].get("location") if kind(event) == "locationDetected" else None
        if location and location["timezone"]:
            zone = zoneinfo.ZoneInfo(location["timezone"])
            hours[dt.datetime.fromtimestamp(event["timestamp"] / 1000, zone).hour] += 1
    evening = sum(hours[h] for h in range(18, 23))
    night = sum(hours[h] for h in range(1, 6))
    assert evening > 3 * night > 0


def test_inactivity_pings_follow_the_sdk_schedule(store: list[dict[str, Any]]) -> None:
    schedule = {30_000, 60_000, 180_000, 300_000, 600_000, 900_000, 1_800_000}
    pings = [e for e in store if kind(e) == "nothingChanged"]
    assert pings
    for ping in pings:
        assert ping["timestamp"] - ping["payload"]["sinceTime"] in schedule


# -- every field, in both dialects ------------------------------------------------------------

_CART = {"cart.currency", "cart.items", "cart.total", "cart.lastUpdateTime"}
_ITEM = {"index", "product.productId", "product.name", "product.displayPrice", "quantity", "total"}

#: per type, the fields the spec requires non-null; every other field must be null (or absent)
#: in some event
REQUIRED: dict[str, set[str]] = {
    "userSignedUp": {"externalUserId"},
    "userSignedIn": {"externalUserId"},
    "userSignedOut": {"externalUserId"},
    "tabOpened": {"tabId"},
    "tabUrlChanged": {"tabId", "url"},
    "tabVisibilityChanged": {"tabId", "visibility"},
    "locationDetected": set(),
    "clientDetected": {"client.browser.type", "client.device.category"},
    "pageOpened": {"url"},
    "pageLoaded": {"url", "title", "lastModifiedTime"},
    "productAbandoned": _CART | {f"cartItem.{name}" for name in _ITEM},
    "productViewed": {"product.productId", "product.name", "product.displayPrice"},
    "cartAbandoned": _CART,
    "cartViewed": _CART,
    "cartModified": _CART,
    "checkoutStarted": _CART,
    "orderPlaced": {"order.orderId", "order.currency", "order.items", "order.total"},
    "nothingChanged": {"sinceTime"},
    "goalCompleted": {"goalId"},
    "eventOccurred": {"name", "details"},
    "slotPersonalized": {
        f"personalization.{name}" for name in ("audienceId", "slotId", "experienceId", "contentId")
    },
    "leadGenerated": set(),
    "audienceMatched": set(),
    "userClicked": {"point.x", "point.y"},
    "userScrolled": {"end.x", "end.y"},
}


def wire_path(dialect: str, event_type: str, path: tuple[str, ...]) -> tuple[str, ...]:
    # clientDetected's entry in RENAMES_0_8 is the docs' spelling, not a 0.8.0 rename
    if dialect == "0.8.0" and event_type != "clientDetected":
        for new, old in RENAMES_0_8.get(event_type, {}).items():
            if path[: len(old)] == old:
                return new + path[len(old) :]
    return path


def lookup(payload: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(payload, dict):
            return None
        payload = payload.get(key)
    return payload


@pytest.mark.parametrize("dialect", ["0.7.1", "0.8.0"])
def test_every_field_is_filled_somewhere_and_null_where_allowed(
    stores: dict[str, list[dict[str, Any]]], dialect: str
) -> None:
    events = stores[dialect]
    by_type: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for event in events:
        by_type[kind(event)].append(event["payload"])
    missing = []
    for event_type in EVENT_TYPES:
        payloads = by_type[event_type]
        assert payloads, event_type
        for field in PAYLOAD_FIELDS[event_type]:
            if field.path[0] == "patch" and dialect == "0.7.1":
                assert all("patch" not in p for p in payloads)
                continue
            path = wire_path(dialect, event_type, field.path)
            values = [lookup(p, path) for p in payloads]
            if all(v is None for v in values):
                missing.append(f"{event_type}.{field.name}: never filled")
            nulls = sum(v is None for v in values)
            if field.name in REQUIRED[event_type]:
                if nulls:
                    missing.append(f"{event_type}.{field.name}: required but null")
            elif not nulls:
                missing.append(f"{event_type}.{field.name}: never null")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("dialect", ["0.7.1", "0.8.0"])
def test_every_payload_obeys_the_spec_constraints(
    stores: dict[str, list[dict[str, Any]]], dialect: str
) -> None:
    problems: list[str] = []
    for event in stores[dialect]:
        assert dialect_of(event) == dialect
        problems.extend(f"{kind(event)} {event.get('id', event.get('eventId'))}: {p}"
                        for p in check_payload(kind(event), event["payload"], dialect))  # fmt: skip
        if len(problems) > 20:
            break
    assert not problems, "\n".join(problems)


def test_08_dialect_adds_ingestion_times_and_patches(stores: dict[str, Any]) -> None:
    old, new = stores["0.7.1"], stores["0.8.0"]
    assert [to_0_7(e) for e in new] == old  # nothing lost either way
    assert all(e["systemTimestamp"] >= e["timestamp"] for e in new)
    patched = [e for e in new if "patch" in e["payload"]]
    assert {kind(e) for e in patched} == {"userSignedUp", "leadGenerated"}
    for event in patched:
        for operation in event["payload"]["patch"]["operations"]:
            assert operation["type"] in ("set", "add") and "value" in operation
            assert re.match(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$", operation["path"])


# -- the constraint checker -------------------------------------------------------------------


def check_payload(event_type: str, payload: dict[str, Any], dialect: str) -> list[str]:
    issues: list[str] = []

    def need(condition: bool, what: str) -> None:
        if not condition:
            issues.append(what)

    def text(value: Any, low: int, high: int, what: str, nullable: bool = True) -> None:
        if value is None:
            need(nullable, f"{what} is null")
        else:
            need(isinstance(value, str) and low <= len(value) <= high, f"{what}={value!r}")

    def amount(value: Any, what: str, nullable: bool = True) -> None:
        if value is None:
            need(nullable, f"{what} is null")
        else:
            need(isinstance(value, int | float) and value >= 0, f"{what}={value!r}")

    def numeric(value: Any, what: str) -> None:
        if value is None:
            return
        if dialect == "0.7.1":
            need(isinstance(value, str) and bool(NUMERIC.match(value)), f"{what}={value!r}")
        else:
            need(
                isinstance(value, int | float) and not isinstance(value, bool), f"{what}={value!r}"
            )

    def enum(value: Any, name: str, what: str, nullable: bool = False) -> None:
        if value is None:
            need(nullable, f"{what} is null")
        else:
            need(value in {wire_enum(name, v) for v in ENUMS[name]}, f"{what}={value!r}")

    def url(value: Any, what: str, nullable: bool = False) -> None:
        if value is None:
            need(nullable, f"{what} is null")
        else:
            need(isinstance(value, str) and re.match(r"^https?://", value) is not None, what)

    def money_map(value: Any, what: str) -> None:
        if value is not None:
            need(isinstance(value, dict) and len(value) >= 1, f"{what} empty")
            for key, number in value.items():
                need(IDENT.match(key) is not None and len(key) <= 50, f"{what} key {key!r}")
                amount(number, f"{what}.{key}", nullable=False)

    def product(p: dict[str, Any], what: str) -> None:
        text(p["productId"], 1, 50, f"{what}.productId", nullable=False)
        text(p["sku"], 1, 50, f"{what}.sku")
        text(p["name"], 1, 200, f"{what}.name", nullable=False)
        text(p["category"], 1, 100, f"{what}.category")
        text(p["brand"], 1, 100, f"{what}.brand")
        text(p["variant"], 1, 50, f"{what}.variant")
        amount(p["displayPrice"], f"{what}.displayPrice", nullable=False)
        amount(p["originalPrice"], f"{what}.originalPrice")
        text(p.get("currency"), 1, 10, f"{what}.currency")
        url(p["url"], f"{what}.url", nullable=True)
        url(p["imageUrl"], f"{what}.imageUrl", nullable=True)

    def items(values: list[dict[str, Any]], what: str) -> None:
        need([i["index"] for i in values] == list(range(len(values))), f"{what} indexes")
        for item in values:
            item_(item, what)

    def item_(item: dict[str, Any], what: str) -> None:
        product(item["product"], f"{what}.product")
        need(isinstance(item["quantity"], int) and item["quantity"] >= 1, f"{what}.quantity")
        amount(item["total"], f"{what}.total", nullable=False)
        amount(item["discount"], f"{what}.discount")
        text(item["coupon"], 1, 50, f"{what}.coupon")

    def money(m: dict[str, Any], what: str) -> None:
        text(m["currency"], 1, 10, f"{what}.currency", nullable=False)
        for key in ("subtotal", "shippingPrice", "discount"):
            amount(m[key], f"{what}.{key}")
        amount(m["total"], f"{what}.total", nullable=False)
        money_map(m["taxes"], f"{what}.taxes")
        money_map(m["costs"], f"{what}.costs")
        text(m["coupon"], 1, 50, f"{what}.coupon")
        items(m["items"], f"{what}.items")

    def cart(c: dict[str, Any]) -> None:
        money(c, "cart")
        need(isinstance(c["lastUpdateTime"], int) and c["lastUpdateTime"] > 10**12, "lastUpdate")

    def point(p: dict[str, Any] | None, what: str, nullable: bool) -> None:
        if p is None:
            need(nullable, f"{what} missing")
            return
        need(set(p) in ({"x", "y"}, {"width", "height"}), f"{what} keys {sorted(p)}")
        for value in p.values():
            need(isinstance(value, int) and value >= 0, f"{what}={value!r}")

    p = payload
    if event_type.startswith("userSigned"):
        text(p["externalUserId"], 1, 100, "externalUserId", nullable=False)
    elif event_type in ("tabOpened", "tabUrlChanged", "tabVisibilityChanged"):
        need(bool(UUID.match(p["tabId"])), "tabId")
        if event_type == "tabUrlChanged":
            url(p["url"], "url")
        if event_type == "tabVisibilityChanged":
            enum(p["visibility"], "visibility", "visibility")
    elif event_type == "locationDetected":
        location = p["location"]
        enum(location["continent"], "continent", "continent", nullable=True)
        enum(location["source"], "locationSource", "source", nullable=True)
        text(location["country"], 2, 2, "country")
        need(set(location["region"]) == {"name", "code"}, "region")
        numeric(location.get("population"), "population")
        zone_key = "timeZone" if dialect == "0.8.0" else "timezone"
        need(zone_key in location, zone_key)
        if location["coordinates"] is not None:
            need(-90 <= location["coordinates"]["latitude"] <= 90, "latitude")
            need(-180 <= location["coordinates"]["longitude"] <= 180, "longitude")
    elif event_type == "clientDetected":
        enum(p["client"]["browser"]["type"], "browserType", "browser.type")
        enum(p["client"]["device"]["category"], "deviceCategory", "device.category")
        need(set(p["client"]["device"]["operatingSystem"]) == {"name", "version"}, "os")
    elif event_type == "pageOpened":
        url(p["url"], "url")
        url(p["referrer"], "referrer", nullable=True)
        text(p["userAgent"], 1, 1000, "userAgent")
        text(p["preferredLanguages"], 2, 100, "preferredLanguages")
    elif event_type == "pageLoaded":
        url(p["url"], "url")
        text(p["title"], 1, 300, "title", nullable=False)
        need(isinstance(p["lastModifiedTime"], int), "lastModifiedTime")
    elif event_type == "productViewed":
        product(p["product"], "product")
    elif event_type == "productAbandoned":
        item_(p["cartItem"], "cartItem")
        cart(p["cart"])
    elif event_type in ("cartAbandoned", "cartViewed", "cartModified"):
        cart(p["cart"])
    elif event_type == "checkoutStarted":
        cart(p["cart"])
        need(bool(p["cart"]["items"]), "checkout of an empty cart")
        text(p["orderId"], 1, 50, "orderId")
    elif event_type == "orderPlaced":
        order = p["order"]
        money(order, "order")
        need(bool(order["items"]), "order without items")
        text(order["orderId"], 1, 50, "orderId", nullable=False)
        text(order["paymentMethod"], 1, 50, "paymentMethod")
        need(order["installments"] is None or order["installments"] >= 1, "installments")
        enum(order["status"], "orderStatus", "status", nullable=True)
    elif event_type == "nothingChanged":
        need(isinstance(p["sinceTime"], int), "sinceTime")
    elif event_type == "goalCompleted":
        need(bool(GOAL.match(p["goalId"])), f"goalId={p['goalId']!r}")
        numeric(p["value"], "value")
        text(p["currency"], 1, 10, "currency")
    elif event_type == "eventOccurred":
        text(p["name"], 1, 50, "name", nullable=False)
        details = p["details"]
        need(isinstance(details, dict) and len(details) <= 10, "details")
        for key, value in details.items():
            need(IDENT.match(key) is not None and len(key) <= 20, f"details key {key!r}")
            need(value is None or isinstance(value, int | float | bool) or len(value) <= 300, key)
    elif event_type == "slotPersonalized":
        personalization = p["personalization"]
        for key in ("audienceId", "slotId", "experienceId", "contentId"):
            need(bool(UUID.match(personalization[key])), key)
        for value in (personalization.get("slotVersion") or {}).values():
            numeric(value, "slotVersion")
        variant = personalization["assignedVariant"]
        need(variant is None or set(variant) == {"experimentId", "variantId"}, "variant")
        need(len(p["metadata"]) == 7, "metadata keys")
    elif event_type == "leadGenerated":
        text(p.get("leadId"), 1, 100, "leadId")
        text(p.get("currency"), 1, 10, "currency")
        numeric(p.get("value"), "value")
    elif event_type == "audienceMatched":
        key = "audiences" if dialect == "0.8.0" else "audienceIds"
        for audience in p.get(key) or []:
            need(set(audience) == {"id", "name", "customId"} and bool(audience["id"]), "audience")
    elif event_type == "userClicked":
        point(p.get("point"), "point", nullable=False)
        point(p.get("surfaceSize"), "surfaceSize", nullable=True)
    elif event_type == "userScrolled":
        point(p.get("end"), "end", nullable=False)
        for key in ("start", "surfaceSize", "viewportSize"):
            point(p.get(key), key, nullable=True)
    return issues
