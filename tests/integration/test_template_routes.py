"""template.yaml is the single source of truth: every function serves exactly its routes."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pytest

from guildstack.devstack.gateway import declared_routes, served_routes
from guildstack.devstack.invoke import invoke
from guildstack.devstack.template import Template

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = Template.load(REPO / "template.yaml")
HTTP_FUNCTIONS = sorted(declared_routes(TEMPLATE))


def test_given_the_template_then_it_declares_http_functions() -> None:
    assert "AuthFunction" in HTTP_FUNCTIONS


@pytest.mark.parametrize("logical_id", HTTP_FUNCTIONS)
def test_given_a_function_then_its_app_serves_exactly_the_declared_routes(logical_id: str) -> None:
    spec = TEMPLATE.function(logical_id)
    served = served_routes(importlib.import_module(spec.app_module).app)
    declared = declared_routes(TEMPLATE)[logical_id]
    assert served - declared == set(), (
        f"served but not in template.yaml: {sorted(served - declared)}"
    )
    assert declared - served == set(), (
        f"in template.yaml but not served: {sorted(declared - served)}"
    )


@pytest.mark.parametrize("logical_id", [f.logical_id for f in TEMPLATE.functions])
def test_given_a_function_then_its_handler_imports(logical_id: str) -> None:
    spec = TEMPLATE.function(logical_id)
    if spec.handler.endswith(".sh"):  # a Web Adapter entry script serving the app module
        script = REPO / spec.handler
        assert script.is_file() and os.access(script, os.X_OK)
        assert f"{spec.app_module}:app" in script.read_text()
        importlib.import_module(spec.app_module)
        return
    module = importlib.import_module(spec.handler_module)
    assert callable(getattr(module, spec.handler.rsplit(".", 1)[1]))


def test_given_no_route_is_declared_twice_then_routing_is_unambiguous() -> None:
    seen: dict[tuple[str, str], str] = {}
    for spec in TEMPLATE.functions:
        for route in spec.routes:
            key = (route.method, route.path)
            assert key not in seen, f"{key} declared by {seen[key]} and {spec.logical_id}"
            seen[key] = spec.logical_id


def test_given_the_health_event_when_invoking_auth_function_then_it_answers() -> None:
    event = json.loads((REPO / "tests" / "events" / "apigw_v2_get_health.json").read_text())
    result = invoke(TEMPLATE, "AuthFunction", event)
    # Without DATABASE_URL in this process, health reports Postgres down: 503, still JSON.
    assert result["statusCode"] in (200, 503)
    body = json.loads(result["body"])
    assert set(body) == {"status", "version", "checks"}
    assert result["headers"]["x-request-id"] == event["requestContext"]["requestId"]


def test_given_an_unknown_function_when_invoking_then_the_error_lists_valid_ones() -> None:
    with pytest.raises(KeyError, match="AuthFunction"):
        invoke(TEMPLATE, "NoSuchFunction", {})
