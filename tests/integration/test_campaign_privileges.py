"""What members can do to campaigns in SQL with their own JWT (PostgREST-style access):
the same minimums as the API (viewers read, analysts draft while planning, operators
change any, admins delete), never the system's columns (the brief, its run) nor the
council's decisions, and nothing across tenants."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.domain.errors import Forbidden
from tests.fixtures.postgres import MakeUser, claims_for, create_workspace

pytestmark = pytest.mark.integration


async def _execute(db: PostgresDatabase, user: uuid.UUID, query: str, *args: Any) -> int:
    async with db.transaction(claims_for(user)) as conn:
        cur = await conn.execute(query, args)
        return cur.rowcount


async def _campaign(db: PostgresDatabase, workspace: uuid.UUID, status: str) -> uuid.UUID:
    campaign = uuid.uuid4()
    async with db.service_transaction("test") as conn:
        await conn.execute(
            "insert into public.campaigns (id, workspace_id, name, objective_type, status)"
            " values (%s, %s, 'C', 'awareness', %s)",
            (campaign, workspace, status),
        )
    return campaign


@pytest.fixture
async def team(database: PostgresDatabase, make_user: MakeUser) -> dict[str, uuid.UUID]:
    users = {
        role: await make_user() for role in ("owner", "admin", "operator", "analyst", "viewer")
    }
    users["outsider"] = await make_user()
    users["workspace"] = await create_workspace(
        database,
        users["owner"],
        members={users[r]: r for r in ("admin", "operator", "analyst", "viewer")},
    )
    return users


@pytest.mark.parametrize(
    ("actor", "planning", "approved"),
    [("admin", 1, 1), ("operator", 1, 1), ("analyst", 1, 0), ("viewer", 0, 0),
     ("outsider", 0, 0)],
)  # fmt: skip
async def test_given_each_role_when_renaming_in_sql_then_the_policy_decides(
    database: PostgresDatabase, team: dict[str, uuid.UUID], actor: str, planning: int,
    approved: int,
) -> None:  # fmt: skip
    ws = team["workspace"]
    for status, allowed in (("planning", planning), ("approved", approved)):
        campaign = await _campaign(database, ws, status)
        changed = await _execute(
            database, team[actor], "update public.campaigns set name = 'X' where id = %s", campaign
        )
        assert changed == allowed, (actor, status)


async def test_given_an_analyst_when_approving_in_sql_then_denied(
    database: PostgresDatabase, team: dict[str, uuid.UUID]
) -> None:
    campaign = await _campaign(database, team["workspace"], "planning")
    with pytest.raises(Forbidden):
        await _execute(
            database,
            team["analyst"],
            "update public.campaigns set status = 'approved' where id = %s",
            campaign,
        )


@pytest.mark.parametrize(
    "assignment",
    [
        "brief = '{}'::jsonb",
        "brief_run_id = null",
        "created_by = null",
        "workspace_id = workspace_id",
    ],
)
async def test_given_an_owner_when_writing_the_system_s_columns_then_denied(
    database: PostgresDatabase, team: dict[str, uuid.UUID], assignment: str
) -> None:
    campaign = await _campaign(database, team["workspace"], "active")
    with pytest.raises(Forbidden):
        query = f"update public.campaigns set {assignment} where id = %s"  # noqa: S608
        await _execute(database, team["owner"], query, campaign)


async def test_given_members_when_recording_decisions_in_sql_then_denied(
    database: PostgresDatabase, team: dict[str, uuid.UUID]
) -> None:
    campaign = await _campaign(database, team["workspace"], "planning")
    with pytest.raises(Forbidden):
        await _execute(
            database,
            team["owner"],
            "insert into public.campaign_decisions (workspace_id, campaign_id, kind, lord,"
            " summary) values (%s, %s, 'plan', 'LORD-003', 'mine')",
            team["workspace"],
            campaign,
        )


@pytest.mark.parametrize(("actor", "deleted"), [("admin", 1), ("operator", 0), ("outsider", 0)])
async def test_given_each_role_when_deleting_in_sql_then_admins_only(
    database: PostgresDatabase, team: dict[str, uuid.UUID], actor: str, deleted: int
) -> None:
    campaign = await _campaign(database, team["workspace"], "planning")
    changed = await _execute(
        database, team[actor], "delete from public.campaigns where id = %s", campaign
    )
    assert changed == deleted


async def test_given_a_quest_for_another_tenant_s_campaign_then_refused(
    database: PostgresDatabase, team: dict[str, uuid.UUID], make_user: MakeUser
) -> None:
    campaign = await _campaign(database, team["workspace"], "planning")
    other_owner = await make_user()
    other = await create_workspace(database, other_owner)
    with pytest.raises(Exception):  # noqa: B017, PT011 - the foreign key or the policy
        await _execute(
            database,
            other_owner,
            "insert into public.campaign_quests (workspace_id, campaign_id, created_by, title)"
            " values (%s, %s, %s, 'Q')",
            other,
            campaign,
            other_owner,
        )
