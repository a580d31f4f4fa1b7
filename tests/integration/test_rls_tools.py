"""RLS and privileges on tool settings, per-agent switches and MCP servers, probed with raw
SQL as each kind of caller, and the tool repository's run usage (calls and tool spend)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

import pytest

from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.adapters.postgres.tools import PostgresToolRepository
from guildstack.domain.errors import Forbidden
from tests.fixtures.postgres import MakeUser, claims_for, create_workspace

pytestmark = pytest.mark.integration


@dataclass
class Tenants:
    admin_a: uuid.UUID
    operator_a: uuid.UUID
    owner_b: uuid.UUID
    ws_a: uuid.UUID
    ws_b: uuid.UUID


@pytest.fixture
async def tenants(database: PostgresDatabase, make_user: MakeUser) -> Tenants:
    owner_a, admin_a, operator_a, owner_b = [await make_user() for _ in range(4)]
    ws_a = await create_workspace(
        database, owner_a, "A", members={admin_a: "admin", operator_a: "operator"}
    )
    ws_b = await create_workspace(database, owner_b, "B")
    async with database.service_transaction("tool rows") as conn:
        for ws in (ws_a, ws_b):
            tools = PostgresToolRepository(conn)
            await tools.save_settings(
                ws, fetch_hosts=[f"{ws.hex[:6]}.example.com"], max_calls_per_run=5,
                max_spend_per_run_usd=Decimal("0.5"),
            )  # fmt: skip
            await tools.switch(ws, "seo_agent", "web.fetch", True)
            await tools.add_mcp_server(ws, "docs", "https://mcp.example.com/mcp", True)
    return Tenants(admin_a, operator_a, owner_b, ws_a, ws_b)


@pytest.mark.parametrize("table", ["tool_settings", "agent_tools", "mcp_servers"])
async def test_given_a_member_of_a_then_b_rows_are_invisible(
    database: PostgresDatabase, tenants: Tenants, table: str
) -> None:
    async with database.transaction(claims_for(tenants.operator_a)) as conn:
        cur = await conn.execute(f"select workspace_id from public.{table}")  # noqa: S608
        seen = {row["workspace_id"] for row in await cur.fetchall()}
    assert seen == {tenants.ws_a}


async def test_given_an_operator_then_tool_rows_cannot_be_written(
    database: PostgresDatabase, tenants: Tenants
) -> None:
    with pytest.raises(Forbidden):
        async with database.transaction(claims_for(tenants.operator_a)) as conn:
            await PostgresToolRepository(conn).switch(tenants.ws_a, "seo_agent", "web.fetch", False)
    with pytest.raises(Forbidden):
        async with database.transaction(claims_for(tenants.operator_a)) as conn:
            await PostgresToolRepository(conn).add_mcp_server(
                tenants.ws_a, "evil", "https://evil.example.com/", False
            )
    async with database.transaction(claims_for(tenants.operator_a)) as conn:
        cur = await conn.execute(
            "update public.tool_settings set fetch_hosts = '{evil.example.com}'"
            " where workspace_id = %s returning 1",
            (tenants.ws_a,),
        )
        assert await cur.fetchall() == []  # no row is the operator's to change


async def test_given_an_admin_then_only_their_own_workspace_changes(
    database: PostgresDatabase, tenants: Tenants
) -> None:
    async with database.transaction(claims_for(tenants.admin_a)) as conn:
        tools = PostgresToolRepository(conn)
        await tools.switch(tenants.ws_a, "seo_agent", "web.fetch", False)
        cur = await conn.execute(
            "update public.tool_settings set max_calls_per_run = 1 returning workspace_id"
        )
        assert [r["workspace_id"] for r in await cur.fetchall()] == [tenants.ws_a]
    with pytest.raises(Forbidden):
        async with database.transaction(claims_for(tenants.admin_a)) as conn:
            await PostgresToolRepository(conn).switch(tenants.ws_b, "seo_agent", "web.fetch", False)
    async with database.service_transaction("read") as conn:
        tools = PostgresToolRepository(conn)
        ours, theirs = await tools.settings(tenants.ws_a), await tools.settings(tenants.ws_b)
    assert ours.switches == {("seo_agent", "web.fetch"): False} and ours.max_calls_per_run == 1
    assert theirs.switches == {("seo_agent", "web.fetch"): True}
    assert theirs.max_calls_per_run == 5 and theirs.fetch_hosts == (
        f"{tenants.ws_b.hex[:6]}.example.com",
    )


async def test_given_an_admin_then_workspace_ids_of_rows_cannot_be_moved(
    database: PostgresDatabase, tenants: Tenants
) -> None:
    with pytest.raises(Forbidden):
        async with database.transaction(claims_for(tenants.admin_a)) as conn:
            await conn.execute("update public.agent_tools set workspace_id = %s", (tenants.ws_b,))


async def test_given_a_workspace_without_settings_then_the_defaults_apply(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    owner = await make_user()
    ws = await create_workspace(database, owner, "Fresh")
    async with database.transaction(claims_for(owner)) as conn:
        settings = await PostgresToolRepository(conn).settings(ws)
    assert settings.fetch_hosts == () and settings.max_calls_per_run == 30
    assert settings.switches == {}
