"""RLS on runs, steps, handoffs, approvals, questions and events, probed with raw SQL as
each kind of caller: members read their workspace's rows only, operators and up write,
handoffs are the engine's alone, and no row can be filed under another tenant's run."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest

from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.domain.errors import Forbidden, InvalidInput
from tests.fixtures.postgres import MakeUser, claims_for, create_workspace

TABLES = ["runs", "steps", "handoffs", "approvals", "questions", "events"]


@dataclass
class Tenants:
    owner_a: uuid.UUID
    viewer_a: uuid.UUID
    analyst_a: uuid.UUID
    operator_a: uuid.UUID
    owner_b: uuid.UUID
    ws_a: uuid.UUID
    ws_b: uuid.UUID
    run_a: uuid.UUID
    run_b: uuid.UUID


async def _seed_run(db: PostgresDatabase, workspace: uuid.UUID, user: uuid.UUID) -> uuid.UUID:
    async with db.service_transaction("test rows") as conn:
        cur = await conn.execute(
            "insert into public.runs (workspace_id, created_by, kind, title, input)"
            " values (%s, %s, 'single', 'probe', 'x') returning id",
            (workspace, user),
        )
        row = await cur.fetchone()
        assert row is not None
        run = row["id"]
        await conn.execute(
            "insert into public.steps (run_id, key, workspace_id, position, agent_code, status)"
            " values (%s, 'main', %s, 0, 'seo_agent', 'succeeded')",
            (run, workspace),
        )
        await conn.execute(
            "insert into public.handoffs (run_id, step_key, workspace_id, content)"
            " values (%s, 'main', %s, 'secret output')",
            (run, workspace),
        )
        await conn.execute(
            "insert into public.approvals (workspace_id, run_id, step_key) values (%s, %s, 'main')",
            (workspace, run),
        )
        await conn.execute(
            "insert into public.questions (workspace_id, run_id, step_key, question)"
            " values (%s, %s, 'main', 'which?')",
            (workspace, run),
        )
        await conn.execute(
            "insert into public.events (workspace_id, run_id, seq, type)"
            " values (%s, %s, 1, 'run.created')",
            (workspace, run),
        )
    return uuid.UUID(str(run))


@pytest.fixture
async def tenants(database: PostgresDatabase, make_user: MakeUser) -> Tenants:
    owner_a, viewer_a, analyst_a, operator_a, owner_b = [await make_user() for _ in range(5)]
    ws_a = await create_workspace(
        database,
        owner_a,
        "A",
        members={viewer_a: "viewer", analyst_a: "analyst", operator_a: "operator"},
    )
    ws_b = await create_workspace(database, owner_b, "B")
    run_a = await _seed_run(database, ws_a, owner_a)
    run_b = await _seed_run(database, ws_b, owner_b)
    return Tenants(owner_a, viewer_a, analyst_a, operator_a, owner_b, ws_a, ws_b, run_a, run_b)


async def _visible(db: PostgresDatabase, user: uuid.UUID, table: str) -> set[uuid.UUID]:
    column = "id" if table == "runs" else "run_id"
    async with db.transaction(claims_for(user)) as conn:
        cur = await conn.execute(f"select {column} as run from public.{table}")  # noqa: S608
        return {row["run"] for row in await cur.fetchall()}


@pytest.mark.parametrize("table", TABLES)
async def test_given_two_tenants_then_each_member_reads_only_their_own_rows(
    database: PostgresDatabase, tenants: Tenants, table: str
) -> None:
    for user in (tenants.owner_a, tenants.viewer_a, tenants.operator_a):
        seen = await _visible(database, user, table)
        assert tenants.run_a in seen and tenants.run_b not in seen
    assert tenants.run_a not in await _visible(database, tenants.owner_b, table)


@pytest.mark.parametrize("role", ["viewer", "analyst"])
async def test_given_a_member_below_operator_then_they_cannot_start_or_steer_runs(
    database: PostgresDatabase, tenants: Tenants, role: str
) -> None:
    user = tenants.viewer_a if role == "viewer" else tenants.analyst_a
    statements = [
        (
            "insert into public.runs (workspace_id, created_by, kind, title, input)"
            " values (%s, %s, 'single', 't', 'x')",
            (tenants.ws_a, user),
        ),
        (
            "insert into public.events (workspace_id, run_id, seq, type)"
            " values (%s, %s, 99, 'run.status')",
            (tenants.ws_a, tenants.run_a),
        ),
    ]
    for sql, params in statements:
        with pytest.raises(Forbidden):
            async with database.transaction(claims_for(user)) as conn:
                await conn.execute(sql, params)
    for table, column in [("runs", "title"), ("approvals", "comment")]:
        async with database.transaction(claims_for(user)) as conn:
            cur = await conn.execute(
                f"update public.{table} set {column} = 'changed' where workspace_id = %s",  # noqa: S608
                (tenants.ws_a,),
            )
            assert cur.rowcount == 0


async def test_given_an_operator_then_they_update_their_runs_but_never_another_tenants(
    database: PostgresDatabase, tenants: Tenants
) -> None:
    async with database.transaction(claims_for(tenants.operator_a)) as conn:
        mine = await conn.execute(
            "update public.runs set title = 'renamed' where id = %s", (tenants.run_a,)
        )
        theirs = await conn.execute(
            "update public.runs set status = 'cancelled' where id = %s", (tenants.run_b,)
        )
    assert mine.rowcount == 1 and theirs.rowcount == 0


async def test_given_any_user_then_handoffs_are_written_only_by_the_engine(
    database: PostgresDatabase, tenants: Tenants
) -> None:
    with pytest.raises(Forbidden):
        async with database.transaction(claims_for(tenants.owner_a)) as conn:
            await conn.execute(
                "update public.handoffs set content = 'forged' where run_id = %s",
                (tenants.run_a,),
            )


async def test_given_a_step_filed_under_another_tenants_run_then_refused(
    database: PostgresDatabase, tenants: Tenants
) -> None:
    """Even an owner of workspace A cannot attach rows to B's run by naming it."""
    with pytest.raises((InvalidInput, Forbidden)):
        async with database.transaction(claims_for(tenants.owner_a)) as conn:
            await conn.execute(
                "insert into public.steps (run_id, key, workspace_id, position, agent_code)"
                " values (%s, 'sneaky', %s, 1, 'seo_agent')",
                (tenants.run_b, tenants.ws_a),
            )
    with pytest.raises(InvalidInput):
        async with database.service_transaction("test") as conn:
            await conn.execute(
                "insert into public.events (workspace_id, run_id, seq, type, payload)"
                " values (%s, %s, 50, 'run.status', %s)",
                (tenants.ws_a, tenants.run_b, json.dumps({})),
            )
