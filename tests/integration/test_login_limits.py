"""Limits on guessing that hold: the Auth function served by the devstack's uvicorn (as
`guildstack dev` serves it), on the real auth stand-in and Redis. A client cannot pick its
own address with X-Forwarded-For; failed logins are limited per account whatever the
address; requests with invalid tokens are limited per address."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from functions.auth.app import create
from guildstack.bootstrap import build
from guildstack.config import Settings
from guildstack.devstack.servers import ServerThread

Serve = Callable[..., Any]


@pytest.fixture
def serve(stack_settings: Settings) -> Iterator[Serve]:
    """`serve(**settings)`: the Auth function behind uvicorn with those settings changed."""
    servers: list[ServerThread] = []

    @asynccontextmanager
    async def start(**changes: Any) -> AsyncIterator[httpx.AsyncClient]:
        settings = stack_settings.model_copy(
            update={"rate_limit_prefix": f"gs:test:{uuid.uuid4().hex[:8]}", **changes}
        )
        server = ServerThread(create(build(settings)), name="auth-limits")
        servers.append(server)
        url = server.start()
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            yield client

    yield start
    for server in servers:
        server.stop()


async def _sign_up(client: httpx.AsyncClient) -> tuple[str, str]:
    email, password = f"limits-{uuid.uuid4().hex[:10]}@example.com", f"pw-{uuid.uuid4().hex}"
    created = await client.post("/auth/signup", json={"email": email, "password": password})
    assert created.status_code == 201, created.text
    return email, password


async def test_given_rotating_x_forwarded_for_when_logging_in_then_the_address_limit_holds(
    serve: Serve,
) -> None:
    async with serve(public_rate_limit_per_minute=4, login_failures_per_email=100) as client:
        statuses = [
            (
                await client.post(
                    "/auth/login",
                    json={"email": f"nobody-{n}@example.com", "password": "wrong-password"},
                    headers={"X-Forwarded-For": f"10.0.0.{n}"},
                )
            ).status_code
            for n in range(5)
        ]
    assert statuses == [401] * 4 + [429]


async def test_given_failed_logins_from_many_places_then_the_account_is_held_back(
    serve: Serve,
) -> None:
    async with serve(public_rate_limit_per_minute=1000, login_failures_per_email=3) as client:
        email, password = await _sign_up(client)
        failed = [
            (
                await client.post("/auth/login", json={"email": email, "password": f"guess-{n}"})
            ).status_code
            for n in range(3)
        ]
        held = await client.post("/auth/login", json={"email": email, "password": password})
        other_email, other_password = await _sign_up(client)
        other = await client.post(
            "/auth/login", json={"email": other_email, "password": other_password}
        )

    assert failed == [401, 401, 401]
    assert held.status_code == 429, held.text
    assert 1 <= int(held.headers["retry-after"]) <= 900
    assert held.headers["content-type"].startswith("application/problem+json")
    assert other.status_code == 200  # another account is not affected


async def test_given_successful_logins_then_they_do_not_count_against_the_account(
    serve: Serve,
) -> None:
    async with serve(public_rate_limit_per_minute=1000, login_failures_per_email=2) as client:
        email, password = await _sign_up(client)
        statuses = [
            (
                await client.post("/auth/login", json={"email": email, "password": password})
            ).status_code
            for _ in range(4)
        ]
    assert statuses == [200] * 4


async def test_given_invalid_tokens_from_one_address_then_429_after_the_limit(
    serve: Serve,
) -> None:
    async with serve(invalid_token_rate_limit_per_minute=3) as client:
        statuses = [
            (
                await client.get(
                    "/auth/me",
                    headers={
                        "Authorization": f"Bearer forged.{n}.token",
                        "X-Forwarded-For": f"10.1.0.{n}",
                    },
                )
            ).status_code
            for n in range(4)
        ]
        email, password = await _sign_up(client)
        login = await client.post("/auth/login", json={"email": email, "password": password})
        token = login.json()["session"]["access_token"]
        valid = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})

    assert statuses == [401, 401, 401, 429]
    assert valid.status_code == 200  # a valid token still works from that address
