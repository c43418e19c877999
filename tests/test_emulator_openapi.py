"""0.7.1 responses against Croct's own OpenAPI document (spec 0.5.0), with the 0.6–0.7 additions.

The document is read from the shared reference folder, never copied into the project. OpenAPI 3.0
``nullable`` becomes a JSON-schema type union, formats are not checked, and the discriminators
become ``if``/``then`` rules so every payload meets its own type's schema. What spec 0.7.1 added
after 0.5.0 (croct-export-api.md §3.28) is allowed: ``id``, ``userClicked`` and ``userScrolled``
with ``Point``/``Size``, ``ProductDetails.currency``, ``personalization.locale``, and the Audience
shape ``{id, name, customId}``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from croct_pandas.emulator import Emulator
from croct_pandas.schema import EVENT_TYPES

jsonschema = pytest.importorskip("jsonschema")
yaml = pytest.importorskip("yaml")

SPEC = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "reference"
    / "croct-export-openapi-0.5.0.yaml"
)
if not SPEC.is_file():
    pytest.skip(
        f"Croct's OpenAPI document is not at {SPEC} (it is read there, never copied into the "
        "project); these checks need it",
        allow_module_level=True,
    )

KEY = "openapi-key-0123456789"
_DROP = {"format", "discriminator", "example", "x-enum-varnames", "description", "default"}


def _convert(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON schema: nullable becomes a type union, formats are dropped."""
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items() if k not in _DROP and not k.startswith("x-")}
    if out.pop("nullable", False):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        if "type" not in out and "enum" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _dispatch(key: str, mapping: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "if": {"type": "object", "properties": {key: {"const": name}}, "required": [key]},
            "then": {"$ref": target},
        }
        for name, target in mapping.items()
    ]


def _build() -> dict[str, Any]:
    document = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    raw = document["components"]["schemas"]
    schemas = _convert(raw)
    payload_types = dict(raw["EventPayload"]["discriminator"]["mapping"])
    context_types = dict(raw["EventContext"]["discriminator"]["mapping"])
    # §3.28: what 0.6.0 and 0.7.0 added to the 0.5.0 document
    schemas["Event"]["properties"]["id"] = {"type": "string", "minLength": 1}
    schemas["Event"]["required"].append("id")
    schemas["ProductDetails"]["properties"]["currency"] = {"type": ["string", "null"]}
    schemas["SlotPersonalized_personalization"]["properties"]["locale"] = {
        "type": ["string", "null"]
    }
    schemas["Audience"]["required"] = ["id"]
    schemas["Point"] = {
        "type": "object",
        "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
        "required": ["x", "y"],
    }
    schemas["Size"] = {
        "type": "object",
        "properties": {"width": {"type": "number"}, "height": {"type": "number"}},
        "required": ["width", "height"],
    }
    point, size = {"$ref": "#/components/schemas/Point"}, {"$ref": "#/components/schemas/Size"}
    schemas["UserClicked"] = {
        "type": "object",
        "properties": {"point": point, "surfaceSize": size},
        "required": ["point"],
    }
    schemas["UserScrolled"] = {
        "type": "object",
        "properties": {"start": point, "end": point, "surfaceSize": size, "viewportSize": size},
        "required": ["end"],
    }
    payload_types["userClicked"] = "#/components/schemas/UserClicked"
    payload_types["userScrolled"] = "#/components/schemas/UserScrolled"
    assert set(payload_types) == set(EVENT_TYPES)
    payload = schemas["EventPayload"]
    payload["allOf"] = _dispatch("@type", payload_types)
    payload["properties"]["@type"]["enum"] = list(EVENT_TYPES)
    # the discriminated base schemas reference EventPayload/EventContext in their allOf: a copy
    # without the dispatch keeps those references from looping
    schemas["EventPayloadBase"] = {k: v for k, v in payload.items() if k != "allOf"}
    context = schemas["EventContext"]
    schemas["EventContextBase"] = copy.deepcopy(context)
    context["allOf"] = _dispatch("type", context_types)
    for name in [*payload_types.values(), *context_types.values()]:
        for part in schemas[name.rsplit("/", 1)[1]].get("allOf", []):
            ref = part.get("$ref", "")
            if ref.endswith(("/EventPayload", "/EventContext")):
                part["$ref"] = ref + "Base"
    return {"components": {"schemas": schemas}}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return _build()


def validator(document: dict[str, Any], name: str) -> Any:
    schema = {**document, "$ref": f"#/components/schemas/{name}"}
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def responses() -> Iterator[list[dict[str, Any]]]:
    """Pages covering every event type, from a 0.7.1 emulator."""
    with Emulator(users=120, days=2, seed=17, api_key=KEY) as emu, requests.Session() as http:
        http.headers["X-Api-Key"] = KEY
        url = emu.url + "/export/events"
        pages = [http.get(url, params={"pageSize": 200}).json()]
        for event_type in EVENT_TYPES:
            pages.append(http.get(url, params={"events": event_type, "pageSize": 40}).json())
        yield pages


def test_every_type_is_covered(responses: list[dict[str, Any]]) -> None:
    seen = {item["payload"]["@type"] for page in responses for item in page["items"]}
    assert seen == set(EVENT_TYPES)


def test_responses_match_the_event_response_schema(
    document: dict[str, Any], responses: list[dict[str, Any]]
) -> None:
    check = validator(document, "EventResponse")
    problems = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for page in responses
        for error in check.iter_errors(page)
    ]
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: e["payload"].update({"@type": "pageViewed"}),
        lambda e: e.pop("sessionId"),
        lambda e: e.update({"timestamp": "yesterday"}),
        lambda e: e.update({"context": {"type": "web", "url": "https://x.test/"}}),
    ],
)
def test_the_schema_is_not_vacuous(
    document: dict[str, Any], responses: list[dict[str, Any]], damage: Any
) -> None:
    check = validator(document, "EventResponse")
    page = copy.deepcopy(responses[0])
    tracked = next(e for e in page["items"] if e["context"] is not None)
    damage(tracked)
    assert list(check.iter_errors(page))


@pytest.mark.parametrize(
    ("event_type", "damage"),
    [
        ("clientDetected", lambda p: p["client"]["browser"].update({"type": "in-app"})),
        ("orderPlaced", lambda p: p["order"].pop("total")),
        ("tabVisibilityChanged", lambda p: p.update({"visibility": "visible"})),
        ("userScrolled", lambda p: p.pop("end")),
        ("audienceMatched", lambda p: p.update({"audienceIds": [{"name": "no id"}]})),
    ],
)
def test_payloads_are_checked_against_their_own_type(
    document: dict[str, Any], responses: list[dict[str, Any]], event_type: str, damage: Any
) -> None:
    check = validator(document, "Event")
    page = responses[1 + EVENT_TYPES.index(event_type)]
    # audienceIds is optional: take an event that has the list the damage replaces
    event = copy.deepcopy(next(e for e in page["items"] if e["payload"].get("audienceIds", True)))
    assert not list(check.iter_errors(event))
    damage(event["payload"])
    assert list(check.iter_errors(event))


def test_errors_match_the_api_problem_schema(document: dict[str, Any]) -> None:
    check = validator(document, "ApiProblem")
    with Emulator([], api_key=KEY) as emu:
        bad = requests.get(
            emu.url + "/export/events", params={"pageSize": 0}, headers={"X-Api-Key": KEY}
        )
        unauthorized = requests.get(emu.url + "/export/events")
    for response in (bad, unauthorized):
        assert not list(check.iter_errors(response.json()))
