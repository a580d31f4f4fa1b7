"""`workspace_member(min_role)`: the X-Workspace-Id rules every later function relies on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends

from guildstack.bootstrap import build
from guildstack.config import Settings
from guildstack.domain.identity import Principal, Role
from guildstack.http.app import create_app
from guildstack.http.auth import WorkspaceContext, workspace_member
from tests.fakes.identity import StaticTokenVerifier
from tests.fakes.workspaces import InMemoryWorkspaceStore

router = APIRouter()


@router.get("/operate")
async def operate(
    ctx: Annotated[WorkspaceContext, Depends(workspace_member(Role.OPERATOR))],
) -> dict[str, str]:
    return {"workspace_id": str(ctx.workspace_id), "role": ctx.role.value}


@pytest.fixture
async def setup() -> AsyncIterator[tuple[httpx.AsyncClient, InMemoryWorkspaceStore]]:
    store = InMemoryWorkspaceStore()
    container = build(
        Settings(stage="test"),
        token_verifier=StaticTokenVerifier(),
        workspace_store=store,
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
    setup: tuple[httpx.AsyncClient, InMemoryWorkspaceStore],
) -> None:
    client, _ = setup
    assert (await client.get("/operate", headers=auth(uuid.uuid4()))).status_code == 400
    bad = await client.get("/operate", headers=auth(uuid.uuid4(), "not-a-uuid"))
    assert bad.status_code == 400


async def test_given_roles_then_member_rules_apply(
    setup: tuple[httpx.AsyncClient, InMemoryWorkspaceStore],
) -> None:
    client, store = setup
    owner = uuid.uuid4()
    ws = await store.create(Principal(owner, None, {}), "w", "w", None)
    viewer = store.register("v@example.com")
    await store.add_member(Principal(owner, None, {}), ws.id, "v@example.com", Role.VIEWER)

    ok = await client.get("/operate", headers=auth(owner, str(ws.id)))
    assert ok.status_code == 200 and ok.json()["role"] == "owner"
    assert (await client.get("/operate", headers=auth(viewer, str(ws.id)))).status_code == 403
    stranger = await client.get("/operate", headers=auth(uuid.uuid4(), str(ws.id)))
    assert stranger.status_code == 404
    unknown = await client.get("/operate", headers=auth(owner, str(uuid.uuid4())))
    assert unknown.status_code == 404
