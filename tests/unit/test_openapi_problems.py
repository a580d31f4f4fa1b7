"""Each API function's OpenAPI document declares the problem+json answers its routes give
(the fuzz step in tests/fuzz fails on any status or content type a document leaves out)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from guildstack.bootstrap import build
from guildstack.config import Settings
from guildstack.http.openapi import PROBLEM_JSON

APPS = ["functions.auth.app", "functions.agents.app", "functions.runs.app",
        "functions.tools.app", "functions.chat.app", "functions.memory.app",
        "functions.stream.app"]  # fmt: skip


def document(module: str) -> dict[str, Any]:
    app = importlib.import_module(module).create(build(Settings(stage="test")))
    openapi: dict[str, Any] = app.openapi()
    return openapi


def responses(module: str, method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = document(module)["paths"][path][method]
    return dict(operation["responses"])


@pytest.mark.parametrize("module", APPS)
def test_every_operation_declares_the_shared_problems_as_problem_json(module: str) -> None:
    for path, operations in document(module)["paths"].items():
        for method, operation in operations.items():
            declared = operation["responses"]
            for status in ("400", "404", "422", "429", "431", "503"):
                assert status in declared, (method, path, status)
            for status, response in declared.items():
                if int(status) >= 400:
                    assert list(response["content"]) == [PROBLEM_JSON], (method, path, status)


def test_given_routes_with_a_token_then_401_and_403_and_writes_409() -> None:
    listed = responses("functions.agents.app", "get", "/agents")
    created = responses("functions.agents.app", "post", "/agents")
    assert {"401", "403"} <= set(listed) and "409" not in listed
    assert {"401", "403", "409", "413"} <= set(created)
    health = responses("functions.auth.app", "get", "/health")
    assert "401" not in health and "413" not in health


def test_given_credentials_checked_by_the_route_then_401_is_declared() -> None:
    for path in ("/auth/login", "/auth/refresh"):
        assert "401" in responses("functions.auth.app", "post", path)


def test_given_a_route_that_calls_a_model_then_402_and_502_are_declared() -> None:
    for module, path in [
        ("functions.runs.app", "/agents/{code}/invoke"),
        ("functions.agents.app", "/agents/{code}/test"),
        ("functions.runs.app", "/runs"),
        ("functions.chat.app", "/conversations/{conversation_id}/messages"),
        ("functions.stream.app", "/chat/message"),
    ]:
        assert {"402", "502"} <= set(responses(module, "post", path)), path


def test_given_an_event_stream_then_its_success_is_text_event_stream() -> None:
    for method, path in [
        ("get", "/runs/{run_id}/stream"),
        ("post", "/chat/message"),
        ("get", "/conversations/{conversation_id}/stream"),
    ]:
        ok = responses("functions.stream.app", method, path)["200"]
        assert list(ok["content"]) == ["text/event-stream"], path
