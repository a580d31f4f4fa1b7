"""A token is only as good as its account: tokens of deleted or banned users are refused
through the gateway (and, when the setting is on, tokens of ended sessions)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest

from functions.auth.app import create
from guildstack.bootstrap import build
from guildstack.config import Settings
from tests.e2e.conftest import sign_up


async def _sql(database_url: str, query: str, *args: object) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(query, args)


@pytest.mark.parametrize(
    "change",
    [
        "delete from auth.users where id = %s",
        "update auth.users set deleted_at = now() where id = %s",
        "update auth.users set banned_until = now() + interval '1 day' where id = %s",
    ],
)
async def test_given_an_account_gone_when_its_unexpired_token_is_used_then_401(
    api: httpx.AsyncClient, database_url: str, change: str
) -> None:
    ghost = await sign_up(api, "ghost")
    await _sql(database_url, change, ghost.id)

    response = await api.get("/auth/me", headers=ghost.auth)

    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.fixture
async def checking_sessions(stack_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    settings = stack_settings.model_copy(update={"jwt_check_session": True})
    container = build(settings)
    transport = httpx.ASGITransport(app=create(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
        yield client
    await container.database.close()


async def test_given_session_checks_on_when_a_session_ends_then_its_token_is_refused(
    api: httpx.AsyncClient, checking_sessions: httpx.AsyncClient, database_url: str
) -> None:
    user = await sign_up(api, "sessions")
    second = (
        await api.post("/auth/login", json={"email": user.email, "password": user.password})
    ).json()["session"]
    # Every session of the user ends (an admin's "sign out everywhere").
    await _sql(database_url, "delete from auth.sessions where user_id = %s", user.id)

    ended = await checking_sessions.get("/auth/me", headers=user.auth)
    also_ended = await checking_sessions.get(
        "/auth/me", headers={"Authorization": f"Bearer {second['access_token']}"}
    )
    unchecked = await api.get("/auth/me", headers=user.auth)  # the setting is off there

    assert (ended.status_code, also_ended.status_code) == (401, 401)
    assert unchecked.status_code == 200
