"""The single table of every known field: wire path -> kind -> dtype.

Everything that reads or writes events (the normaliser, ``to_events()``, the cache, the emulator's
validation tests) takes field names, kinds and enum values from here and nowhere else.

A field is a path below ``payload`` (or ``context``) in spec 0.7.1 spelling, and a *kind*:

======================  =====================================  ============================
kind                    wire value                             default dtype
======================  =====================================  ============================
``string``              string                                 ``string`` (pyarrow storage)
``int``                 integer                                ``Int64``
``float``               number                                 ``float64``
``bool``                boolean                                ``boolean``
``time``                epoch milliseconds                     ``datetime64[ms, UTC]``
``enum``                one of :data:`ENUMS` (any case)        ``category``
``numstr_float``        number or numeric string               ``float64``
``numstr_int``          integer or numeric string              ``Int64``
``langs``               string, or list of strings (joined)    ``string``
``list``                array, each element kept whole         ``ArrowDtype(list<...>)``
``map``                 free-form object: a column per key     by the map's value kind
======================  =====================================  ============================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache

import pyarrow as pa

__all__ = [
    "CONTEXT_FIELDS",
    "CORE_COLUMNS",
    "ENUMS",
    "EVENT_TYPES",
    "PAYLOAD_FIELDS",
    "RAW_COLUMN",
    "RENAMES_0_8",
    "Field",
    "arrow_type",
    "column_order",
    "fields_for",
    "normalize_enum",
    "storage_schema",
]

#: The 25 event types of spec 0.7.1, in the spec's order.
EVENT_TYPES: tuple[str, ...] = (
    "userSignedUp",
    "userSignedIn",
    "userSignedOut",
    "tabOpened",
    "tabUrlChanged",
    "tabVisibilityChanged",
    "locationDetected",
    "clientDetected",
    "pageOpened",
    "pageLoaded",
    "productAbandoned",
    "productViewed",
    "cartAbandoned",
    "cartViewed",
    "cartModified",
    "checkoutStarted",
    "orderPlaced",
    "nothingChanged",
    "goalCompleted",
    "eventOccurred",
    "slotPersonalized",
    "leadGenerated",
    "audienceMatched",
    "userClicked",
    "userScrolled",
)

#: Enum value lists, normalised: lowercase with ``-`` for ``_`` for values Croct spells in two
#: cases; codes (continents) as sent.
ENUMS: dict[str, tuple[str, ...]] = {
    "visibility": ("visible", "hidden"),
    "orderStatus": ("placed", "paid", "completed"),
    "browserType": ("web", "in-app", "crawler", "other", "unknown"),
    "deviceCategory": ("desktop", "tablet", "mobile", "bot", "other", "unknown"),
    "locationSource": ("unknown", "ip", "input", "browser", "gps"),
    "continent": ("AF", "AN", "AS", "EU", "NA", "OC", "SA"),
}

#: Enums whose values are codes and keep the case they are sent in.
CODE_ENUMS = frozenset({"continent"})


def normalize_enum(enum: str, value: str) -> str:
    """Normalise a wire enum value: ``IN_APP`` -> ``in-app``; codes stay as sent.

    Examples
    --------
    >>> normalize_enum("browserType", "IN_APP"), normalize_enum("continent", "SA")
    ('in-app', 'SA')
    """
    if enum in CODE_ENUMS:
        return value
    return value.lower().replace("_", "-")


def wire_enum(enum: str, value: str) -> str:
    """The export's spelling of a normalised enum value: ``in-app`` -> ``IN_APP``."""
    if enum in CODE_ENUMS:
        return value
    return value.upper().replace("-", "_")


@dataclass(frozen=True)
class Field:
    """One leaf of the wire tree, below ``payload`` or ``context``."""

    path: tuple[str, ...]
    kind: str
    enum: str | None = None
    #: for ``list``: the Arrow list type; for ``map``: the kind of the values
    element: pa.DataType | str | None = None

    @property
    def name(self) -> str:
        return ".".join(self.path)


def _f(
    path: str, kind: str, enum: str | None = None, element: pa.DataType | str | None = None
) -> Field:
    return Field(tuple(path.split(".")), kind, enum, element)


def _prefixed(prefix: str, fields: Iterable[Field]) -> tuple[Field, ...]:
    head = tuple(prefix.split("."))
    return tuple(Field(head + f.path, f.kind, f.enum, f.element) for f in fields)


# -- shared structures (croct-export-api.md §3.A) ------------------------------------------

PRODUCT: tuple[Field, ...] = (
    _f("productId", "string"),
    _f("sku", "string"),
    _f("name", "string"),
    _f("category", "string"),
    _f("brand", "string"),
    _f("variant", "string"),
    _f("displayPrice", "float"),
    _f("originalPrice", "float"),
    _f("currency", "string"),
    _f("url", "string"),
    _f("imageUrl", "string"),
)

PRODUCT_TYPE = pa.struct(
    [
        ("productId", pa.string()),
        ("sku", pa.string()),
        ("name", pa.string()),
        ("category", pa.string()),
        ("brand", pa.string()),
        ("variant", pa.string()),
        ("displayPrice", pa.float64()),
        ("originalPrice", pa.float64()),
        ("currency", pa.string()),
        ("url", pa.string()),
        ("imageUrl", pa.string()),
    ]
)

#: A cart or order item as one list element (``payload.cart.items``, ``payload.order.items``).
ITEM_TYPE = pa.struct(
    [
        ("index", pa.int64()),
        ("product", PRODUCT_TYPE),
        ("quantity", pa.int64()),
        ("total", pa.float64()),
        ("discount", pa.float64()),
        ("coupon", pa.string()),
    ]
)

CART_ITEM: tuple[Field, ...] = (
    _f("index", "int"),
    *_prefixed("product", PRODUCT),
    _f("quantity", "int"),
    _f("total", "float"),
    _f("discount", "float"),
    _f("coupon", "string"),
)

#: What carts and orders share, in the spec's order.
_TOTALS: tuple[Field, ...] = (
    _f("currency", "string"),
    _f("items", "list", element=pa.list_(ITEM_TYPE)),
    _f("subtotal", "float"),
    _f("shippingPrice", "float"),
    _f("taxes", "map", element="float"),
    _f("costs", "map", element="float"),
    _f("discount", "float"),
    _f("total", "float"),
    _f("coupon", "string"),
)

CART: tuple[Field, ...] = (*_TOTALS, _f("lastUpdateTime", "time"))

ORDER: tuple[Field, ...] = (
    _f("orderId", "string"),
    *_TOTALS,
    _f("paymentMethod", "string"),
    _f("installments", "int"),
    _f("status", "enum", "orderStatus"),
)

LOCATION: tuple[Field, ...] = (
    _f("continent", "enum", "continent"),
    _f("country", "string"),
    _f("region.name", "string"),
    _f("region.code", "string"),
    _f("city", "string"),
    _f("district", "string"),
    _f("timezone", "string"),
    _f("coordinates.latitude", "float"),
    _f("coordinates.longitude", "float"),
    _f("currency.name", "string"),
    _f("currency.code", "string"),
    _f("phoneCode", "string"),
    _f("population", "numstr_int"),
    _f("postalCode", "string"),
    _f("languages", "list", element=pa.list_(pa.string())),
    _f("tags", "list", element=pa.list_(pa.string())),
    _f("source", "enum", "locationSource"),
)

CLIENT: tuple[Field, ...] = (
    _f("browser.name", "string"),
    _f("browser.version", "string"),
    _f("browser.type", "enum", "browserType"),
    _f("device.name", "string"),
    _f("device.vendor", "string"),
    _f("device.category", "enum", "deviceCategory"),
    _f("device.operatingSystem.name", "string"),
    _f("device.operatingSystem.version", "string"),
)

POINT = (_f("x", "float"), _f("y", "float"))
SIZE = (_f("width", "float"), _f("height", "float"))

AUDIENCE_TYPE = pa.struct([("id", pa.string()), ("name", pa.string()), ("customId", pa.string())])

#: ``patch.operations`` of spec 0.8.0: ``value`` is kept as JSON text.
OPERATION_TYPE = pa.struct([("type", pa.string()), ("path", pa.string()), ("value", pa.string())])

PATCH = _f("patch.operations", "list", element=pa.list_(OPERATION_TYPE))

_USER = (_f("externalUserId", "string"),)

#: payload fields per event type, in the table's order (spec 0.7.1 names; 0.8.0 additions last).
PAYLOAD_FIELDS: dict[str, tuple[Field, ...]] = {
    "userSignedUp": (*_USER, PATCH),
    "userSignedIn": _USER,
    "userSignedOut": _USER,
    "tabOpened": (_f("tabId", "string"),),
    "tabUrlChanged": (_f("tabId", "string"), _f("url", "string")),
    "tabVisibilityChanged": (_f("tabId", "string"), _f("visibility", "enum", "visibility")),
    "locationDetected": _prefixed("location", LOCATION),
    "clientDetected": _prefixed("client", CLIENT),
    "pageOpened": (
        _f("url", "string"),
        _f("userAgent", "string"),
        _f("preferredLanguages", "langs"),
        _f("referrer", "string"),
    ),
    "pageLoaded": (_f("url", "string"), _f("title", "string"), _f("lastModifiedTime", "time")),
    "productAbandoned": (*_prefixed("cartItem", CART_ITEM), *_prefixed("cart", CART)),
    "productViewed": _prefixed("product", PRODUCT),
    "cartAbandoned": _prefixed("cart", CART),
    "cartViewed": _prefixed("cart", CART),
    "cartModified": _prefixed("cart", CART),
    "checkoutStarted": (*_prefixed("cart", CART), _f("orderId", "string")),
    "orderPlaced": _prefixed("order", ORDER),
    "nothingChanged": (_f("sinceTime", "time"),),
    "goalCompleted": (
        _f("goalId", "string"),
        _f("value", "numstr_float"),
        _f("currency", "string"),
    ),
    "eventOccurred": (_f("name", "string"), _f("details", "map", element="any")),
    "slotPersonalized": (
        _f("personalization.audienceId", "string"),
        _f("personalization.slotId", "string"),
        _f("personalization.slotVersion.majorVersion", "numstr_int"),
        _f("personalization.slotVersion.minorVersion", "numstr_int"),
        _f("personalization.experienceId", "string"),
        _f("personalization.contentId", "string"),
        _f("personalization.assignedVariant.experimentId", "string"),
        _f("personalization.assignedVariant.variantId", "string"),
        _f("personalization.locale", "string"),
        _f("metadata.audienceName", "string"),
        _f("metadata.audienceCustomId", "string"),
        _f("metadata.slotName", "string"),
        _f("metadata.slotCustomId", "string"),
        _f("metadata.experienceName", "string"),
        _f("metadata.experimentName", "string"),
        _f("metadata.variantName", "string"),
    ),
    "leadGenerated": (
        _f("leadId", "string"),
        _f("currency", "string"),
        _f("value", "numstr_float"),
        PATCH,
    ),
    "audienceMatched": (_f("audienceIds", "list", element=pa.list_(AUDIENCE_TYPE)),),
    "userClicked": (*_prefixed("point", POINT), *_prefixed("surfaceSize", SIZE)),
    "userScrolled": (
        *_prefixed("start", POINT),
        *_prefixed("end", POINT),
        *_prefixed("surfaceSize", SIZE),
        *_prefixed("viewportSize", SIZE),
    ),
}

#: ``context`` fields of the web context (``context.type == "web"``).
CONTEXT_FIELDS: tuple[Field, ...] = (
    _f("type", "string"),
    _f("tabId", "string"),
    _f("url", "string"),
    _f("metadata", "map", element="string"),
)

#: The core columns and their kinds, in frame order (``type`` is a category of event types).
CORE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "string"),
    ("type", "type"),
    ("timestamp", "time"),
    ("sessionId", "string"),
    ("userId", "string"),
    ("systemTimestamp", "time"),
)

#: Keys that spec 0.8.0 renamed, per event type: 0.8.0 path -> 0.7.1 path (below ``payload``).
RENAMES_0_8: dict[str, dict[tuple[str, ...], tuple[str, ...]]] = {
    "audienceMatched": {("audiences",): ("audienceIds",)},
    "locationDetected": {("location", "timeZone"): ("location", "timezone")},
    # the docs' clientDetected example says device.type where the spec says device.category
    "clientDetected": {("client", "device", "type"): ("client", "device", "category")},
}

_SCALAR_ARROW: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "time": pa.timestamp("ms", tz="UTC"),
    "enum": pa.string(),
    "numstr_float": pa.float64(),
    "numstr_int": pa.int64(),
    "langs": pa.string(),
    # a free-form object is stored as JSON text and becomes a column per key in the frame
    "map": pa.string(),
}


def arrow_type(field: Field) -> pa.DataType:
    """The Arrow type a field is stored as (in batches and in the cache)."""
    if field.kind == "list":
        assert isinstance(field.element, pa.DataType)
        return field.element
    return _SCALAR_ARROW[field.kind]


@cache
def fields_for(event_type: str) -> tuple[Field, ...]:
    """The payload fields of a known type (empty for an unknown one)."""
    return PAYLOAD_FIELDS.get(event_type, ())


def column_order(event_types: Iterable[str]) -> list[tuple[str, Field]]:
    """Schema columns (``context.*`` then ``payload.*``) for the given types, first use first.

    Free-form ``map`` fields are left out: their columns are named by the keys found.

    Examples
    --------
    >>> [name for name, _ in column_order(["tabUrlChanged"])]
    ['context.type', 'context.tabId', 'context.url', 'payload.tabId', 'payload.url']
    """
    out: dict[str, Field] = {}
    for f in CONTEXT_FIELDS:
        if f.kind != "map":
            out["context." + f.name] = f
    wanted = set(event_types)
    for event_type in EVENT_TYPES:
        if event_type not in wanted:
            continue
        for f in PAYLOAD_FIELDS[event_type]:
            if f.kind != "map":
                out.setdefault("payload." + f.name, f)
    return list(out.items())


def payload_tree(event_type: str) -> Mapping[str, object]:
    """Known keys of a type's payload as a nested dict (leaf -> its Field)."""
    return _tree(PAYLOAD_FIELDS.get(event_type, ()))


def _tree(fields: Iterable[Field]) -> dict[str, object]:
    root: dict[str, object] = {}
    for f in fields:
        node = root
        for key in f.path[:-1]:
            child = node.setdefault(key, {})
            assert isinstance(child, dict)
            node = child
        node[f.path[-1]] = f
    return root


#: Per row, JSON text of every value that did not fit its column (column -> value as sent).
RAW_COLUMN = "_croct_raw"

_TIME = pa.timestamp("ms", tz="UTC")
_CORE_STORAGE = (
    ("id", pa.string()),
    ("timestamp", _TIME),
    ("sessionId", pa.string()),
    ("userId", pa.string()),
    ("systemTimestamp", _TIME),
)


@cache
def storage_schema(event_type: str) -> pa.Schema:
    """The Arrow schema of every normalised table (and cache file) of ``event_type``.

    The core columns (``type`` lives outside the table), ``context.*``, the type's
    ``payload.*`` fields with their schema types (free-form objects as JSON text), and
    ``_croct_raw``.

    Examples
    --------
    >>> storage_schema("tabOpened").names[-2:]
    ['payload.tabId', '_croct_raw']
    """
    columns = list(_CORE_STORAGE)
    columns += [("context." + f.name, arrow_type(f)) for f in CONTEXT_FIELDS]
    columns += [("payload." + f.name, arrow_type(f)) for f in fields_for(event_type)]
    columns.append((RAW_COLUMN, pa.string()))
    return pa.schema(columns)
