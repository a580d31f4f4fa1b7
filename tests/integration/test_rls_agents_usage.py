"""RLS on agents, usage, spend and reservations, probed with raw SQL as each kind of caller."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.domain.errors import Forbidden
from tests.fixtures.postgres import MakeUser, claims_for, create_workspace

INSERT_AGENT = """
    insert into public.agents (workspace_id, code, source, name, role, guild, description,
        system_prompt, model_tier, temperature, max_tokens)
    values (%s, %s, 'custom', 'Probe', 'assistant', 'core', 'A probe agent.',
        'You are a probe.', 'fast', 0.5, 256)
"""
INSERT_USAGE = """
    insert into public.usage (workspace_id, provider, model, input_tokens, output_tokens, cost_usd)
    values (%s, 'offline', 'offline', 1, 1, 0.5)
"""


@dataclass
class Tenants:
    owner_a: uuid.UUID
    viewer_a: uuid.UUID
    analyst_a: uuid.UUID
    owner_b: uuid.UUID
    ws_a: uuid.UUID
    ws_b: uuid.UUID


@pytest.fixture
async def tenants(database: PostgresDatabase, make_user: MakeUser) -> Tenants:
    owner_a, viewer_a, analyst_a, owner_b = [await make_user() for _ in range(4)]
    ws_a = await create_workspace(
        database, owner_a, "A", members={viewer_a: "viewer", analyst_a: "analyst"}
    )
    ws_b = await create_workspace(database, owner_b, "B")
    async with database.service_transaction("test rows") as conn:
        for ws in (ws_a, ws_b):
            await conn.execute(INSERT_AGENT, (ws, f"probe_{ws.hex[:6]}"))
            await conn.execute(INSERT_USAGE, (ws,))
            await conn.execute(
                "insert into public.workspace_spend (workspace_id, month, spent_usd)"
                " values (%s, date_trunc('month', now())::date, 0.5)",
                (ws,),
            )
            await conn.execute(
                "insert into public.budget_reservations (workspace_id, amount_usd, expires_at)"
                " values (%s, 1, now() + interval '1 hour')",
                (ws,),
            )
    return Tenants(owner_a, viewer_a, analyst_a, owner_b, ws_a, ws_b)


async def _count(db: PostgresDatabase, user: uuid.UUID, table: str) -> dict[uuid.UUID, int]:
    async with db.transaction(claims_for(user)) as conn:
        cur = await conn.execute(
            f"select workspace_id, count(*) as n from public.{table} group by 1"  # noqa: S608
        )
        return {row["workspace_id"]: row["n"] for row in await cur.fetchall()}


@pytest.mark.parametrize("table", ["agents", "usage", "workspace_spend"])
async def test_given_a_member_of_a_when_reading_then_b_is_invisible(
    database: PostgresDatabase, tenants: Tenants, table: str
) -> None:
    seen = await _count(database, tenants.owner_a, table)
    assert tenants.ws_b not in seen and seen.get(tenants.ws_a) == 1


async def test_given_a_viewer_then_agents_are_visible_but_usage_and_spend_are_not(
    database: PostgresDatabase, tenants: Tenants
) -> None:
    assert (await _count(database, tenants.viewer_a, "agents")).get(tenants.ws_a) == 1
    assert await _count(database, tenants.viewer_a, "usage") == {}
    assert await _count(database, tenants.viewer_a, "workspace_spend") == {}
    assert (await _count(database, tenants.analyst_a, "usage")).get(tenants.ws_a) == 1


async def test_given_nobody_but_the_service_role_then_reservations_cannot_be_read(
    database: PostgresDatabase, tenants: Tenants
) -> None:
    with pytest.raises(Forbidden):
        await _count(database, tenants.owner_a, "budget_reservations")


@pytest.mark.parametrize(
    ("actor", "workspace"),
    [("viewer_a", "ws_a"), ("analyst_a", "ws_a"), ("owner_a", "ws_b")],
)
async def test_given_a_non_admin_or_outsider_when_inserting_an_agent_then_refused(
    database: PostgresDatabase, tenants: Tenants, actor: str, workspace: str
) -> None:
    with pytest.raises(Forbidden):
        async with database.transaction(claims_for(getattr(tenants, actor))) as conn:
            await conn.execute(INSERT_AGENT, (getattr(tenants, workspace), "sneaky_agent"))


async def test_given_an_owner_when_writing_usage_or_spend_then_refused(
    database: PostgresDatabase, tenants: Tenants
) -> None:
    with pytest.raises(Forbidden):
        async with database.transaction(claims_for(tenants.owner_a)) as conn:
            await conn.execute(INSERT_USAGE, (tenants.ws_a,))
    with pytest.raises(Forbidden):
        async with database.transaction(claims_for(tenants.owner_a)) as conn:
            await conn.execute("update public.workspace_spend set spent_usd = 0")


async def test_given_an_owner_of_a_when_updating_b_agents_then_no_row_changes(
    database: PostgresDatabase, tenants: Tenants
) -> None:
    async with database.transaction(claims_for(tenants.owner_a)) as conn:
        cur = await conn.execute(
            "update public.agents set status = 'paused' where workspace_id = %s", (tenants.ws_b,)
        )
        assert cur.rowcount == 0
