"""The protocol edges every function app answers itself (in AWS no devstack gateway stands
in front): HEAD as GET without a body, 405 naming HEAD too, 431 for oversize headers, and
ids only in canonical form."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from functions.auth.app import create
from guildstack.bootstrap import build
from guildstack.config import Settings
from guildstack.http.app import create_app
from tests.fakes.identity import FakeIdentity, StaticTokenVerifier
from tests.fakes.uow import InMemoryUnitOfWork


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    container = build(
        Settings(stage="test"),
        identity=FakeIdentity(),
        token_verifier=StaticTokenVerifier(),
        uow=InMemoryUnitOfWork(),
        user_rate_limiter=None,
        public_rate_limiter=None,
        invalid_token_rate_limiter=None,
    )
    transport = httpx.ASGITransport(app=create(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def bearer(user_id: uuid.UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer access-{user_id}"}


async def test_given_head_then_get_s_status_and_headers_without_a_body(
    http: httpx.AsyncClient,
) -> None:
    owner = uuid.uuid4()
    created = (await http.post("/workspaces", json={"name": "W"}, headers=bearer(owner))).json()
    got = await http.get(f"/workspaces/{created['id']}", headers=bearer(owner))
    head = await http.head(f"/workspaces/{created['id']}", headers=bearer(owner))
    assert (got.status_code, head.status_code) == (200, 200)
    assert head.content == b"" and head.headers["content-length"] == got.headers["content-length"]


async def test_given_an_unserved_method_then_405_problem_allowing_head_too(
    http: httpx.AsyncClient,
) -> None:
    response = await http.delete("/health")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.headers["content-type"] == "application/problem+json"


async def test_given_oversize_headers_then_431_problem(http: httpx.AsyncClient) -> None:
    response = await http.get("/health", headers={"X-Padding": "a" * 17_000})
    assert response.status_code == 431
    assert response.json()["status"] == 431


@pytest.mark.parametrize(
    "spelling",
    [lambda u: u.hex, lambda u: "{" + str(u) + "}", lambda u: f"urn:uuid:{u}"],
    ids=["hex", "braces", "urn"],
)
async def test_given_a_non_canonical_id_in_the_path_then_422_naming_it(
    http: httpx.AsyncClient, spelling: object
) -> None:
    owner = uuid.uuid4()
    created = (await http.post("/workspaces", json={"name": "W"}, headers=bearer(owner))).json()
    raw = spelling(uuid.UUID(created["id"]))  # type: ignore[operator]
    response = await http.get(f"/workspaces/{raw}", headers=bearer(owner))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["type"] == "uuid_not_canonical"
    member = await http.patch(
        f"/workspaces/{created['id']}/members/{owner.hex}",
        json={"role": "admin"},
        headers=bearer(owner),
    )
    assert member.status_code == 422


async def test_given_head_on_an_endless_stream_then_it_ends_at_once() -> None:
    router = APIRouter()

    @router.get("/forever")
    async def forever() -> StreamingResponse:
        async def ticks() -> AsyncIterator[str]:
            while True:
                yield "data: tick\n\n"
                await asyncio.sleep(0.01)

        return StreamingResponse(ticks(), media_type="text/event-stream")

    app = create_app(Settings(stage="test"), title="t", routers=[router])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        head = await asyncio.wait_for(client.head("/forever"), timeout=5)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"].startswith("text/event-stream")


async def test_given_requests_then_one_access_log_line_each_with_the_route_template(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    owner = uuid.uuid4()
    created = (await http.post("/workspaces", json={"name": "W"}, headers=bearer(owner))).json()
    caplog.clear()

    got = await http.get(f"/workspaces/{created['id']}", headers=bearer(owner))
    missing = await http.get(f"/workspaces/{uuid.uuid4()}", headers=bearer(owner))
    huge = await http.get("/health", headers={"x-big": "a" * 20_000})

    lines = [vars(r) for r in caplog.records if r.getMessage() == "request"]
    assert [(line["method"], line["route"], line["status"]) for line in lines] == [
        ("GET", "/workspaces/{workspace_id}", 200),
        ("GET", "/workspaces/{workspace_id}", missing.status_code),
        ("GET", "-", 431),
    ]
    assert [line["request_id"] for line in lines] == [
        r.headers["x-request-id"] for r in (got, missing, huge)
    ]
    assert all(line["latency_ms"] >= 0 for line in lines)
    assert all(created["id"] not in str(line["route"]) for line in lines)
