"""Limits per client address use an address the client cannot choose: the invocation's
request context in Lambda, the socket peer elsewhere; never X-Forwarded-For."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mangum import Mangum
from starlette.requests import Request

from functions.auth.app import create
from guildstack.bootstrap import build
from guildstack.config import Settings
from guildstack.http.client import client_address
from tests.fakes.identity import FakeIdentity, StaticTokenVerifier
from tests.fakes.ratelimit import CountingLimiter
from tests.fakes.uow import InMemoryUnitOfWork


def _request(headers: dict[str, str], *, peer: str = "127.0.0.1", event: Any = None) -> Request:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": (peer, 50000),
    }
    if event is not None:
        scope["aws.event"] = event
    return Request(scope)


SPOOFED = {"X-Forwarded-For": "198.51.100.9", "Forwarded": "for=198.51.100.9"}


def test_given_a_peer_and_forwarding_headers_then_the_peer_counts() -> None:
    assert client_address(_request(SPOOFED, peer="127.0.0.1")) == "127.0.0.1"


@pytest.mark.parametrize(
    "context",
    [{"http": {"sourceIp": "203.0.113.7"}}, {"identity": {"sourceIp": "203.0.113.7"}}],
)
def test_given_an_api_gateway_event_then_its_source_ip_counts(context: dict[str, Any]) -> None:
    request = _request(SPOOFED, event={"requestContext": context})
    assert client_address(request) == "203.0.113.7"


def test_given_the_web_adapter_then_its_request_context_header_counts() -> None:
    headers = {
        **SPOOFED,
        "x-amzn-request-context": json.dumps({"http": {"sourceIp": "203.0.113.8"}}),
    }
    assert client_address(_request(headers), behind_web_adapter=True) == "203.0.113.8"
    # Without the adapter in front, the same header is just something a client wrote.
    assert client_address(_request(headers)) == "127.0.0.1"


@pytest.mark.parametrize("raw", ["", "not json", "[]", '{"http": {}}'])
def test_given_an_unreadable_adapter_context_then_unknown(raw: str) -> None:
    request = _request({"x-amzn-request-context": raw} if raw else {})
    assert client_address(request, behind_web_adapter=True) == "unknown"


def _login_event(forwarded_for: str) -> dict[str, Any]:
    body = json.dumps({"email": "nobody@example.com", "password": "wrong-password"})
    return {
        "version": "2.0",
        "routeKey": "POST /auth/login",
        "rawPath": "/auth/login",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "x-forwarded-for": forwarded_for},
        "requestContext": {
            "http": {"method": "POST", "path": "/auth/login", "sourceIp": "203.0.113.7"},
            "requestId": "req-0001",
            "routeKey": "POST /auth/login",
            "stage": "$default",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def test_given_lambda_events_with_rotating_x_forwarded_for_then_one_address_is_limited() -> None:
    limiter = CountingLimiter(limit=3)
    container = build(
        Settings(stage="test"),
        identity=FakeIdentity(),
        token_verifier=StaticTokenVerifier(),
        uow=InMemoryUnitOfWork(),
        public_rate_limiter=limiter,
        login_failure_limiter=None,
    )
    handler = Mangum(create(container), lifespan="off")
    context: Any = None  # Mangum reads nothing from it
    statuses = [handler(_login_event(f"10.0.0.{n}"), context)["statusCode"] for n in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert list(limiter.hits) == ["ip:203.0.113.7"]
