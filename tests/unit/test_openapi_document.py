"""The whole API's OpenAPI document: current in the repo, complete, and saying what the
apps do (security, the workspace header, problems, streams)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from guildstack.devstack.gateway import _fastapi_path
from guildstack.devstack.openapi import build_document, render
from guildstack.devstack.template import Template

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = Template.load(REPO / "template.yaml")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document(TEMPLATE)


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, ops in document["paths"].items()
        for method, operation in ops.items()
    ]


def test_the_committed_document_is_the_codes(document: dict[str, Any]) -> None:
    committed = (REPO / "docs" / "openapi.json").read_text()
    assert committed == render(document), "docs/openapi.json is stale: run `guildstack openapi`"


def test_every_route_the_gateway_serves_is_documented_once(document: dict[str, Any]) -> None:
    declared = {
        (route.method, _fastapi_path(route.path))
        for spec in TEMPLATE.functions
        for route in spec.routes
    }
    documented = {(method, path) for method, path, _ in operations(document)}
    assert documented == declared


def test_every_reference_resolves_and_no_framework_default_errors_remain(
    document: dict[str, Any],
) -> None:
    text = json.dumps(document)
    schemas = document["components"]["schemas"]
    refs = {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}
    assert refs <= set(schemas)
    assert "HTTPValidationError" not in text


def test_routes_say_how_they_authenticate(document: dict[str, Any]) -> None:
    by_route = {(m, p): op for m, p, op in operations(document)}

    assert "security" not in by_route[("GET", "/health")]
    assert "security" not in by_route[("POST", "/auth/login")]
    assert by_route[("GET", "/auth/me")]["security"] == [{"bearer": []}]
    runs = by_route[("GET", "/runs")]
    assert runs["security"] == [{"bearer": []}]
    header = next(p for p in runs["parameters"] if p["name"] == "X-Workspace-Id")
    assert header["in"] == "header" and header["required"] is True
    stream = by_route[("GET", "/runs/{run_id}/stream")]
    assert stream["security"] == [{"bearer": []}, {"streamTicket": []}]
    assert not next(p for p in stream["parameters"] if p["name"] == "X-Workspace-Id")["required"]


def test_errors_are_problems_and_streams_are_event_streams(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        responses = operation["responses"]
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert list(response["content"]) == ["application/problem+json"], (method, path)
        if operation.get("security"):
            assert {"401", "429"} <= set(responses), (method, path)
    streamed = {
        (m, p)
        for m, p, op in operations(document)
        if "text/event-stream" in op["responses"].get("200", {}).get("content", {})
    }
    assert streamed == {
        ("GET", "/runs/{run_id}/stream"),
        ("POST", "/chat/message"),
        ("GET", "/conversations/{conversation_id}/stream"),
    }
