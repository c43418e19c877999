"""The two wire dialects: spec 0.7.1 (what the generator writes) and spec 0.8.0.

0.8.0 renames ``id`` to ``eventId`` and ``payload["@type"]`` to ``payload["type"]``, adds
``systemTimestamp`` (ingestion time) to every event, renames ``audienceIds`` to ``audiences`` and
``location.timezone`` to ``location.timeZone``, sends numbers where 0.7.1 sends numeric strings,
and may carry a profile ``patch`` on ``userSignedUp`` and ``leadGenerated``
(croct-export-api.md §3.26). Conversions build new dicts where they change something and never
modify their input.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from croct_pandas.errors import InvalidArgumentError

__all__ = ["DIALECTS", "convert", "dialect_of", "event_id", "to_0_7", "to_0_8"]

DIALECTS: tuple[str, ...] = ("0.7.1", "0.8.0")

_FIRST = ("Ana", "Bruno", "Chloé", "David", "Emma", "Felipe", "Grace", "Hiro", "Isabel", "Jonas")
_LAST = ("Silva", "Smith", "Müller", "Dubois", "Santos", "Tanaka", "García", "Brown", "Costa")
_INTERESTS = ("running", "hiking", "coffee", "camping", "yoga", "cycling")


def dialect_of(event: dict[str, Any]) -> str:
    """The dialect an event is written in: ``"0.8.0"`` or ``"0.7.1"``.

    Examples
    --------
    >>> dialect_of({"eventId": "e1", "payload": {"type": "tabOpened"}})
    '0.8.0'
    >>> dialect_of({"id": "e1", "payload": {"@type": "tabOpened"}})
    '0.7.1'
    """
    if "eventId" in event or "systemTimestamp" in event:
        return "0.8.0"
    if "id" in event:
        return "0.7.1"
    payload = event.get("payload")
    if isinstance(payload, dict) and "type" in payload and "@type" not in payload:
        return "0.8.0"
    return "0.7.1"


def event_id(event: dict[str, Any]) -> str:
    """An event's id in either dialect (``""`` when it has none).

    Examples
    --------
    >>> event_id({"eventId": "e1"}), event_id({"id": "e2"}), event_id({})
    ('e1', 'e2', '')
    """
    value = event.get("id", event.get("eventId", ""))
    return value if isinstance(value, str) else str(value)


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value else number
    return value


def _text(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _patch(rng: random.Random, kind: str) -> dict[str, Any]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    email = f"{first.lower()}.{last.lower()}{rng.randrange(100)}@example.com"
    operations: list[dict[str, Any]] = [
        {"type": "set", "path": "firstName", "value": first},
        {"type": "set", "path": "lastName", "value": last},
        {"type": "set", "path": "email", "value": email},
    ]
    if kind == "leadGenerated":
        operations.append({"type": "set", "path": "company", "value": f"{last} & Co"})
    else:
        operations.append({"type": "add", "path": "interests", "value": rng.choice(_INTERESTS)})
        operations.append({"type": "set", "path": "custom.plan", "value": "free"})
    return {"operations": operations}


def to_0_8(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One 0.7.1 event in the 0.8.0 form; ``rng`` draws the ingestion lag and the patches.

    Examples
    --------
    >>> e = {"id": "e1", "sessionId": "s", "userId": "u", "timestamp": 1000, "context": None,
    ...      "payload": {"@type": "goalCompleted", "goalId": "g", "value": "9.90",
    ...                  "currency": "USD"}}
    >>> out = to_0_8(e, random.Random(0))
    >>> out["eventId"], out["payload"]["type"], out["payload"]["value"]
    ('e1', 'goalCompleted', 9.9)
    >>> out["systemTimestamp"] > out["timestamp"]
    True
    """
    # most events arrive within a second; a few arrive minutes or hours late
    late = rng.random() < 0.01
    lag = rng.randint(60_000, 7_200_000) if late else 20 + int(rng.expovariate(1 / 350))
    out: dict[str, Any] = {}
    for key, value in event.items():
        if key == "id":
            out["eventId"] = value
        elif key == "payload":
            out[key] = _payload_0_8(value, rng)
        else:
            out[key] = value
        if key == "timestamp":
            out["systemTimestamp"] = value + lag
    return out


def _payload_0_8(payload: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    kind = payload.get("@type")
    out = _convert_payload(
        payload, kind, "type", ("@type",), _number, ("audienceIds", "audiences"),
        ("timezone", "timeZone"),
    )  # fmt: skip
    if kind in ("userSignedUp", "leadGenerated") and rng.random() < 0.6:
        out["patch"] = _patch(rng, kind)
    return out


def _convert_payload(
    payload: dict[str, Any],
    kind: Any,
    type_key: str,
    skip: tuple[str, ...],
    number: Callable[[Any], Any],
    audiences: tuple[str, str],
    time_zone: tuple[str, str],
) -> dict[str, Any]:
    """A payload with its discriminator, renamed keys and numeric fields in the other dialect:
    ``audiences`` and ``time_zone`` are (from, to) key names, ``number`` converts the values
    that one dialect sends as numbers and the other as numeric strings."""
    out: dict[str, Any] = {type_key: kind}
    for key, value in payload.items():
        if key not in skip:
            out[key] = value
    if kind in ("goalCompleted", "leadGenerated") and "value" in out:
        out["value"] = number(out["value"])
    if kind == "audienceMatched" and audiences[0] in out:
        out[audiences[1]] = out.pop(audiences[0])
    elif kind == "locationDetected" and isinstance(out.get("location"), dict):
        location = {
            (time_zone[1] if k == time_zone[0] else k): v for k, v in out["location"].items()
        }
        if "population" in location:
            location["population"] = number(location["population"])
        out["location"] = location
    elif kind == "slotPersonalized" and isinstance(out.get("personalization"), dict):
        personalization = dict(out["personalization"])
        version = personalization.get("slotVersion")
        if isinstance(version, dict):
            personalization["slotVersion"] = {k: number(v) for k, v in version.items()}
        out["personalization"] = personalization
    return out


def to_0_7(event: dict[str, Any]) -> dict[str, Any]:
    """One 0.8.0 event in the 0.7.1 form (0.8.0-only keys dropped).

    Examples
    --------
    >>> e = {"eventId": "e1", "timestamp": 1000, "systemTimestamp": 1040,
    ...      "payload": {"type": "audienceMatched", "audiences": []}}
    >>> to_0_7(e)
    {'id': 'e1', 'timestamp': 1000, 'payload': {'@type': 'audienceMatched', 'audienceIds': []}}
    """
    out: dict[str, Any] = {}
    for key, value in event.items():
        if key == "eventId":
            out["id"] = value
        elif key == "payload" and isinstance(value, dict):
            out[key] = _payload_0_7(value)
        elif key != "systemTimestamp":
            out[key] = value
    return out


def _payload_0_7(payload: dict[str, Any]) -> dict[str, Any]:
    return _convert_payload(
        payload, payload.get("type", payload.get("@type")), "@type", ("type", "@type", "patch"),
        _text, ("audiences", "audienceIds"), ("timeZone", "timezone"),
    )  # fmt: skip


def convert(
    events: Iterable[dict[str, Any]], dialect: str, *, seed: int = 0
) -> list[dict[str, Any]]:
    """Events of either dialect, each in ``dialect``; events already in it are kept as they are.

    Parameters
    ----------
    events : iterable of dict
        Wire events, in any mix of the two dialects.
    dialect : {"0.7.1", "0.8.0"}
        The dialect to write.
    seed : int
        Seeds the ingestion lags and patches added when converting to 0.8.0.

    Examples
    --------
    >>> events = [{"id": "e1", "timestamp": 5, "payload": {"@type": "tabOpened", "tabId": "t"}}]
    >>> convert(events, "0.8.0")[0]["payload"]
    {'type': 'tabOpened', 'tabId': 't'}
    """
    if dialect not in DIALECTS:
        raise InvalidArgumentError(f"dialect must be one of {DIALECTS}; got {dialect!r}")
    rng = random.Random(f"dialect:{seed}")
    out = []
    for event in events:
        if dialect_of(event) == dialect:
            out.append(event)
        elif dialect == "0.8.0":
            out.append(to_0_8(event, rng))
        else:
            out.append(to_0_7(event))
    return out
