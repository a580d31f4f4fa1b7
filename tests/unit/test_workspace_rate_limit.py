"""The per-workspace limit through `in_workspace`: only members' requests count, a refusal
is a 429 problem with Retry-After (and does not use up the caller's own limit), a stream
counts once, membership answers are kept per container for a while."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from guildstack.bootstrap import build
from guildstack.config import Settings
from guildstack.domain.authorization import Action
from guildstack.domain.identity import Principal, Role
from guildstack.http.app import create_app
from guildstack.http.auth import Scoped, in_workspace
from guildstack.ports.uow import UnitOfWork
from guildstack.services.access import authorized
from guildstack.services.workspace_limits import WorkspaceRateLimit
from tests.fakes.identity import StaticTokenVerifier
from tests.fakes.ratelimit import CountingLimiter
from tests.fakes.uow import InMemoryUnitOfWork

router = APIRouter()
Ws = Annotated[Scoped[UnitOfWork], Depends(in_workspace(lambda c: c.uow))]


@router.get("/operate")
async def operate(ws: Ws) -> dict[str, str]:
    async with ws.service(ws.principal) as tx:
        await authorized(tx, ws.workspace_id, Action.VIEW)
    return {"ok": "yes"}


@router.get("/stream")
async def stream(ws: Ws) -> StreamingResponse:
    async def events() -> AsyncIterator[bytes]:
        for n in range(20):
            yield f"id: {n}\ndata: {{}}\n\n".encode()

    return StreamingResponse(events(), media_type="text/event-stream")


class CountedLookups(WorkspaceRateLimit):
    lookups = 0

    async def is_member(self, user_id: uuid.UUID, workspace_id: uuid.UUID) -> bool:
        if self.known(user_id, workspace_id) is None:
            self.lookups += 1
        return await super().is_member(user_id, workspace_id)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    client: httpx.AsyncClient
    uow: InMemoryUnitOfWork
    users: CountingLimiter
    workspaces: CountingLimiter
    limit: CountedLookups
    clock: Clock
    owner: uuid.UUID
    viewer: uuid.UUID
    workspace_id: uuid.UUID

    def headers(self, user_id: uuid.UUID) -> dict[str, str]:
        return {
            "Authorization": f"Bearer access-{user_id}",
            "X-Workspace-Id": str(self.workspace_id),
        }

    async def get(self, user_id: uuid.UUID, path: str = "/operate") -> httpx.Response:
        return await self.client.get(path, headers=self.headers(user_id))


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    uow = InMemoryUnitOfWork()
    owner = uow.world.register("o@example.com")
    viewer = uow.world.register("v@example.com")
    async with uow(Principal(owner, "o@example.com", {})) as tx:
        ws = (await tx.workspaces.create("w", "w", None)).id
        await tx.workspaces.invite(ws, "v@example.com", Role.VIEWER)
    async with uow(Principal(viewer, "v@example.com", {})) as tx:
        await tx.workspaces.accept_invites()
    users, workspaces, clock = CountingLimiter(100), CountingLimiter(4), Clock()
    limit = CountedLookups(workspaces, uow, ttl_seconds=60, clock=clock)
    container = build(
        Settings(stage="test"),
        token_verifier=StaticTokenVerifier(),
        uow=uow,
        user_rate_limiter=users,
        workspace_rate_limit=limit,
    )
    app = create_app(container.settings, title="t", routers=[router])
    app.state.container = container
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield Setup(client, uow, users, workspaces, limit, clock, owner, viewer, ws)


async def test_given_two_members_over_the_workspace_limit_then_429_with_retry_after(
    setup: Setup,
) -> None:
    statuses = [(await setup.get(who)).status_code for who in (setup.owner, setup.viewer) * 2]
    refused = await setup.get(setup.viewer)

    assert statuses == [200] * 4
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.headers["retry-after"] == "60"
    assert "workspace" in refused.json()["detail"]
    # The refused request does not use up the viewer's own limit.
    assert len(setup.users.hits[f"user:{setup.viewer}"]) == 2


async def test_given_an_outsider_naming_the_workspace_then_members_keep_the_whole_limit(
    setup: Setup,
) -> None:
    outsider = setup.uow.world.register("x@example.com")
    outsider_statuses = [(await setup.get(outsider)).status_code for _ in range(10)]

    assert outsider_statuses == [404] * 10
    assert f"ws:{setup.workspace_id}" not in setup.workspaces.hits
    assert [(await setup.get(setup.owner)).status_code for _ in range(5)] == [200] * 4 + [429]


async def test_given_a_known_member_then_both_limits_are_counted_in_one_call(
    setup: Setup,
) -> None:
    assert [(await setup.get(setup.owner)).status_code for _ in range(3)] == [200] * 3

    # The first request asked for the membership (the user's limit counted on its own);
    # the next ones count both limits in one call.
    assert setup.users.together == 2
    assert len(setup.users.hits[f"user:{setup.owner}"]) == 3
    assert len(setup.workspaces.hits[f"ws:{setup.workspace_id}"]) == 3


async def test_given_a_caller_over_their_own_limit_then_no_membership_is_looked_up(
    setup: Setup,
) -> None:
    setup.users.limit = 2
    names = [str(uuid.uuid4()) for _ in range(5)]
    statuses = [
        (await setup.client.get("/operate", headers={**setup.headers(setup.owner),
                                                    "X-Workspace-Id": name})).status_code
        for name in names
    ]  # fmt: skip

    assert statuses == [404, 404, 429, 429, 429]
    assert setup.limit.lookups == 2


async def test_given_an_event_stream_then_it_counts_once(setup: Setup) -> None:
    response = await setup.get(setup.owner, "/stream")

    assert response.status_code == 200 and response.text.count("data:") == 20
    assert len(setup.workspaces.hits[f"ws:{setup.workspace_id}"]) == 1


async def test_given_a_removed_member_then_counted_until_the_answer_expires(
    setup: Setup,
) -> None:
    assert (await setup.get(setup.viewer)).status_code == 200
    del setup.uow.world.members[setup.workspace_id][setup.viewer]

    assert (await setup.get(setup.viewer)).status_code == 404
    assert len(setup.workspaces.hits[f"ws:{setup.workspace_id}"]) == 2
    setup.clock.now += 61
    assert (await setup.get(setup.viewer)).status_code == 404
    assert len(setup.workspaces.hits[f"ws:{setup.workspace_id}"]) == 2


async def test_given_the_limiter_down_then_requests_are_let_through(setup: Setup) -> None:
    setup.workspaces.down = True
    assert [(await setup.get(setup.owner)).status_code for _ in range(6)] == [200] * 6


def test_given_no_redis_then_there_is_no_workspace_limit() -> None:
    assert build(Settings(stage="test")).workspace_rate_limit is None


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    yield
