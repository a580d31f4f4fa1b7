"""The Auth function's HTTP edge with in-memory fakes: input handling, errors, role rules."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from functions.auth.app import create
from guildstack.bootstrap import build
from guildstack.config import Settings
from tests.fakes.identity import FakeIdentity, StaticTokenVerifier
from tests.fakes.uow import InMemoryUnitOfWork, World


@dataclass
class Harness:
    http: httpx.AsyncClient
    identity: FakeIdentity
    store: World


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    identity, uow = FakeIdentity(), InMemoryUnitOfWork()
    container = build(
        Settings(stage="test"),
        identity=identity,
        token_verifier=StaticTokenVerifier(),
        uow=uow,
        user_rate_limiter=None,
        public_rate_limiter=None,
    )
    transport = httpx.ASGITransport(app=create(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Harness(http, identity, uow.world)


def bearer(user_id: uuid.UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer access-{user_id}"}


BAD_SIGNUPS = {
    "malformed json": (b'{"email": "a@b.co", "password": ', 400),
    "not an object": (b"[1, 2, 3]", 422),
    "wrong types": (b'{"email": 42, "password": ["x"]}', 422),
    "unknown field": (b'{"email": "a@example.com", "password": "longenough", "admin": true}', 422),
    "bad email": (b'{"email": "not-an-email", "password": "longenough"}', 422),
    "short password": (b'{"email": "a@example.com", "password": "short"}', 422),
    "missing password": (b'{"email": "a@example.com"}', 422),
    "empty body": (b"", 422),
}


@pytest.mark.parametrize("case", sorted(BAD_SIGNUPS))
async def test_given_bad_signup_input_when_posted_then_4xx_problem_and_nothing_written(
    harness: Harness, case: str
) -> None:
    body, expected = BAD_SIGNUPS[case]
    response = await harness.http.post(
        "/auth/signup", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == expected, (case, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert harness.identity.users == {}


async def test_given_an_oversize_body_when_posted_then_413_and_nothing_written(
    harness: Harness,
) -> None:
    big = b'{"email": "a@example.com", "password": "' + b"x" * 1_100_000 + b'"}'
    response = await harness.http.post(
        "/auth/signup", content=big, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["status"] == 413
    assert harness.identity.users == {}


async def test_given_a_chunked_oversize_body_when_posted_then_413(harness: Harness) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 100_000

    response = await harness.http.post(
        "/auth/signup", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


async def test_given_a_request_id_when_calling_then_it_is_echoed(harness: Harness) -> None:
    response = await harness.http.get("/nope", headers={"X-Request-Id": "client-req-12345"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "client-req-12345"
    assert response.json()["request_id"] == "client-req-12345"


async def test_given_signup_when_valid_then_201_with_session(harness: Harness) -> None:
    response = await harness.http.post(
        "/auth/signup", json={"email": "New@Example.com", "password": "longenough"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["user"]["email"] == "new@example.com"
    assert set(body["session"]) == {"access_token", "refresh_token", "expires_in", "token_type"}


async def test_given_duplicate_signup_then_201_with_no_session_and_not_the_account(
    harness: Harness,
) -> None:
    payload = {"email": "dup@example.com", "password": "longenough"}
    first = await harness.http.post("/auth/signup", json=payload)
    again = await harness.http.post("/auth/signup", json=payload)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["session"] is None
    assert again.json()["user"]["id"] != first.json()["user"]["id"]


async def test_given_wrong_password_when_logging_in_then_401(harness: Harness) -> None:
    payload = {"email": "who@example.com", "password": "longenough"}
    await harness.http.post("/auth/signup", json=payload)
    response = await harness.http.post(
        "/auth/login", json={"email": "who@example.com", "password": "wrong-password"}
    )
    assert response.status_code == 401


async def test_given_a_workspace_route_with_a_bad_id_then_422_not_500(harness: Harness) -> None:
    response = await harness.http.get("/workspaces/not-a-uuid", headers=bearer(uuid.uuid4()))
    assert response.status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 121},
        {"name": "ok", "monthly_budget_usd": -1},
        {"name": "ok", "monthly_budget_usd": "lots"},
        {"name": "ok", "extra": 1},
    ],
)
async def test_given_bad_workspace_input_then_422_and_nothing_created(
    harness: Harness, body: dict[str, object]
) -> None:
    response = await harness.http.post("/workspaces", json=body, headers=bearer(uuid.uuid4()))
    assert response.status_code == 422, response.text
    assert harness.store.workspaces == {}


async def test_given_a_bad_cursor_when_listing_then_422(harness: Harness) -> None:
    response = await harness.http.get(
        "/workspaces", params={"cursor": "!!nope"}, headers=bearer(uuid.uuid4())
    )
    assert response.status_code == 422


async def test_given_more_workspaces_than_the_limit_then_cursor_pages_through_all(
    harness: Harness,
) -> None:
    owner = uuid.uuid4()
    created = set()
    for n in range(5):
        response = await harness.http.post(
            "/workspaces", json={"name": f"ws {n}"}, headers=bearer(owner)
        )
        created.add(response.json()["id"])
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await harness.http.get("/workspaces", params=params, headers=bearer(owner))).json()
        seen += [w["id"] for w in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and set(seen) == created
