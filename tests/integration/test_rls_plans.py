"""How row-level security is evaluated on the tables members aggregate over: the policy's
membership check runs once per statement, not once per row (a per-row security-definer
call cost most of a month's usage report: 2 s for 30,000 calls)."""

from __future__ import annotations

import json
from typing import Any

from guildstack.adapters.postgres.database import PostgresDatabase
from tests.fixtures.postgres import MakeUser, claims_for, create_workspace


def filters(plan: Any) -> list[str]:
    """Every row filter in an EXPLAIN (FORMAT JSON) plan."""
    found: list[str] = []
    if isinstance(plan, dict):
        found += [str(v) for k, v in plan.items() if k == "Filter"]
        for value in plan.values():
            found += filters(value)
    elif isinstance(plan, list):
        for value in plan:
            found += filters(value)
    return found


async def test_given_a_member_reading_usage_then_membership_is_not_checked_per_row(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    owner = await make_user()
    ws = await create_workspace(database, owner)
    async with database.transaction(claims_for(owner)) as conn:
        cur = await conn.execute(
            "explain (format json) select count(*), sum(cost_usd) from public.usage"
            " where workspace_id = %s",
            (ws,),
        )
        row = await cur.fetchone()
    assert row is not None
    plan = row["QUERY PLAN"]
    plan = json.loads(plan) if isinstance(plan, str) else plan

    assert not [f for f in filters(plan) if "has_workspace_role" in f], filters(plan)
