"""`in_workspace(pick)` and the services' membership check: the X-Workspace-Id rules every
function relies on (missing or malformed header 400, not a member 404, role too low 403)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends

from guildstack.bootstrap import build
from guildstack.config import Settings
from guildstack.domain.authorization import Action
from guildstack.domain.identity import Principal, Role
from guildstack.http.app import create_app
from guildstack.http.auth import Scoped, in_workspace
from guildstack.ports.uow import UnitOfWork
from guildstack.services.access import authorized
from tests.fakes.identity import StaticTokenVerifier
from tests.fakes.uow import InMemoryUnitOfWork

router = APIRouter()


@router.get("/operate")
async def operate(
    ws: Annotated[Scoped[UnitOfWork], Depends(in_workspace(lambda c: c.uow))],
) -> dict[str, str]:
    async with ws.service(ws.principal) as tx:
        role = await authorized(tx, ws.workspace_id, Action.RUN)
    return {"workspace_id": str(ws.workspace_id), "role": role.value}


class Store:
    """The fake database, used through a transaction as the owner would use the API."""

    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self.uow = uow

    def register(self, email: str) -> uuid.UUID:
        return self.uow.world.register(email)

    async def create(self, owner: Principal, name: str) -> uuid.UUID:
        async with self.uow(owner) as tx:
            return (await tx.workspaces.create(name, name, None)).id

    async def add_member(self, owner: Principal, ws: uuid.UUID, email: str, role: Role) -> None:
        async with self.uow(owner) as tx:
            await tx.workspaces.invite(ws, email, role)
        async with self.uow(Principal(self.uow.world.emails[email], email, {})) as tx:
            await tx.workspaces.accept_invites()


@pytest.fixture
async def setup() -> AsyncIterator[tuple[httpx.AsyncClient, Store]]:
    uow = InMemoryUnitOfWork()
    store = Store(uow)
    container = build(
        Settings(stage="test"),
        token_verifier=StaticTokenVerifier(),
        uow=uow,
        user_rate_limiter=None,
    )
    app = create_app(container.settings, title="t", routers=[router])
    app.state.container = container
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        yield client, store


def auth(user_id: uuid.UUID, workspace: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer access-{user_id}"}
    if workspace is not None:
        headers["X-Workspace-Id"] = workspace
    return headers


async def test_given_no_workspace_header_then_400(
    setup: tuple[httpx.AsyncClient, Store],
) -> None:
    client, _ = setup
    assert (await client.get("/operate", headers=auth(uuid.uuid4()))).status_code == 400
    bad = await client.get("/operate", headers=auth(uuid.uuid4(), "not-a-uuid"))
    assert bad.status_code == 400


async def test_given_roles_then_member_rules_apply(
    setup: tuple[httpx.AsyncClient, Store],
) -> None:
    client, store = setup
    owner = uuid.uuid4()
    ws = await store.create(Principal(owner, None, {}), "w")
    viewer = store.register("v@example.com")
    await store.add_member(Principal(owner, None, {}), ws, "v@example.com", Role.VIEWER)

    ok = await client.get("/operate", headers=auth(owner, str(ws)))
    assert ok.status_code == 200 and ok.json()["role"] == "owner"
    assert (await client.get("/operate", headers=auth(viewer, str(ws)))).status_code == 403
    stranger = await client.get("/operate", headers=auth(uuid.uuid4(), str(ws)))
    assert stranger.status_code == 404
    unknown = await client.get("/operate", headers=auth(owner, str(uuid.uuid4())))
    assert unknown.status_code == 404
