"""What Croct's servers add to a session: location, client, audiences and personalized slots.

Each function builds one payload from the visitor and the catalog, drawing from the session's
random source in a fixed order so a seed always gives the same store.

Examples
--------
>>> import random
>>> from croct_pandas.emulator.catalog import CLIENTS, LOCATIONS
>>> user = User(random.Random(3), LOCATIONS[0], CLIENTS[0])
>>> client(user)["device"]["category"] == CLIENTS[0].category
True
"""

from __future__ import annotations

import random
from typing import Any

from croct_pandas.emulator.catalog import Catalog
from croct_pandas.emulator.visitors import User

__all__ = ["audience_matched", "client", "location", "slot_personalized"]

_SOURCES = ("IP",) * 16 + ("BROWSER", "BROWSER", "GPS", "INPUT")


def location(rng: random.Random, user: User) -> dict[str, Any]:
    """The ``location`` of a ``locationDetected`` event, as detailed as the visitor's level.

    Examples
    --------
    >>> from croct_pandas.emulator.catalog import CLIENTS, LOCATIONS
    >>> user = User(random.Random(3), LOCATIONS[0], CLIENTS[0])
    >>> location(random.Random(1), user)["country"] in (None, LOCATIONS[0].country)
    True
    """
    place, level = user.place, user.level
    if level == "unknown":
        return {
            "continent": None,
            "country": None,
            "region": {"name": None, "code": None},
            "city": None,
            "district": None,
            "timezone": None,
            "coordinates": None,
            "source": rng.choice(("UNKNOWN", None)),
        }
    full = level == "full"
    detected: dict[str, Any] = {
        "continent": place.continent,
        "country": place.country,
        "region": {"name": place.region, "code": place.region_code if full else None},
        "city": place.city if full else None,
        "district": rng.choice(place.districts) if full and place.districts else None,
        "timezone": place.timezone,
        "coordinates": {
            "latitude": round(place.lat + rng.uniform(-0.05, 0.05), 4),
            "longitude": round(place.lon + rng.uniform(-0.05, 0.05), 4),
        }
        if full
        else None,
        "currency": {"name": place.currency[1], "code": place.currency[0]}
        if full or rng.random() < 0.5
        else None,
        "phoneCode": place.phone_code,
        "population": str(place.population) if full else None,
        "postalCode": place.postal_code if full else None,
        "languages": list(place.languages),
    }
    if full and place.tags:
        detected["tags"] = list(place.tags)
    detected["source"] = rng.choice(_SOURCES) if full else "IP"
    return detected


def client(user: User) -> dict[str, Any]:
    """The ``client`` of a ``clientDetected`` event: browser and device of the visitor.

    Examples
    --------
    >>> from croct_pandas.emulator.catalog import CLIENTS, LOCATIONS
    >>> user = User(random.Random(3), LOCATIONS[0], CLIENTS[0])
    >>> client(user)["browser"]["name"] == CLIENTS[0].browser
    True
    """
    browser, version, os_name, os_version = user.client
    kind = user.client_kind
    return {
        "browser": {"name": browser, "version": version, "type": kind.browser_type},
        "device": {
            "name": kind.device,
            "vendor": kind.vendor,
            "category": kind.category,
            "operatingSystem": {"name": os_name, "version": os_version},
        },
    }


def audience_matched(rng: random.Random, catalog: Catalog) -> dict[str, Any]:
    """An ``audienceMatched`` payload: one to three of the catalog's audiences, or none sent.

    Examples
    --------
    >>> from croct_pandas.emulator.catalog import build_catalog
    >>> audience_matched(random.Random(1), build_catalog(1))["@type"]
    'audienceMatched'
    """
    payload: dict[str, Any] = {"@type": "audienceMatched"}
    if rng.random() < 0.9:
        picked = rng.sample(catalog.audiences, rng.randint(1, 3))
        payload["audienceIds"] = [dict(a) for a in picked]
    return payload


def slot_personalized(
    rng: random.Random, catalog: Catalog, locale: str, index: int
) -> dict[str, Any]:
    """A ``slotPersonalized`` payload for the catalog's slot ``index`` and a visitor's locale.

    Examples
    --------
    >>> from croct_pandas.emulator.catalog import build_catalog
    >>> catalog = build_catalog(1)
    >>> event = slot_personalized(random.Random(1), catalog, "en-US", 0)
    >>> event["personalization"]["slotId"] == catalog.slots[0].slot_id
    True
    """
    slot = catalog.slots[index]
    experience = rng.choice(slot.experiences)
    audience = rng.choice(catalog.audiences)
    experiment = experience["experiment"]
    variant = rng.randrange(2) if experiment is not None else None
    personalization: dict[str, Any] = {
        "audienceId": audience["id"],
        "slotId": slot.slot_id,
    }
    r = rng.random()
    if r < 0.7:
        personalization["slotVersion"] = {
            "majorVersion": str(slot.major),
            "minorVersion": str(slot.minor),
        }
    elif r < 0.8:
        personalization["slotVersion"] = {"majorVersion": str(slot.major)}
    elif r < 0.9:
        personalization["slotVersion"] = None
    personalization["experienceId"] = experience["id"]
    personalization["contentId"] = experience["contents"][variant or 0]
    personalization["assignedVariant"] = (
        None
        if experiment is None
        else {"experimentId": experiment["id"], "variantId": experiment["variants"][variant][0]}
    )
    r = rng.random()
    if r < 0.6:
        personalization["locale"] = locale.lower()
    elif r < 0.8:
        personalization["locale"] = None
    # metadata of since-renamed or deleted slots and experiences comes back null
    stale = rng.random() < 0.05
    return {
        "@type": "slotPersonalized",
        "personalization": personalization,
        "metadata": {
            "audienceName": audience["name"],
            "audienceCustomId": audience["customId"],
            "slotName": None if stale else slot.name,
            "slotCustomId": slot.custom_id,
            "experienceName": None if stale else experience["name"],
            "experimentName": None if experiment is None else experiment["name"],
            "variantName": None if variant is None else experiment["variants"][variant][1],
        },
    }
