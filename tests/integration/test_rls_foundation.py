"""Row-level security on the foundation tables, probed with raw SQL as each kind of caller."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.domain.errors import Conflict, Forbidden
from tests.fixtures.postgres import MakeUser, claims_for, create_workspace

ANON = {"role": "anon"}
INSERT_MEMBER = (
    "insert into public.workspace_members (workspace_id, user_id, role) values (%s, %s, '{role}')"
)


@dataclass
class Tenants:
    owner_a: uuid.UUID
    owner_b: uuid.UUID
    viewer_a: uuid.UUID
    admin_a: uuid.UUID
    ws_a: uuid.UUID
    ws_b: uuid.UUID


async def _rows(db: PostgresDatabase, claims: dict[str, Any], query: str, *args: Any) -> list[Any]:
    async with db.transaction(claims) as conn:
        cur = await conn.execute(query, args)
        return list(await cur.fetchall())


async def _rowcount(db: PostgresDatabase, claims: dict[str, Any], query: str, *args: Any) -> int:
    async with db.transaction(claims) as conn:
        cur = await conn.execute(query, args)
        return cur.rowcount


@pytest.fixture(scope="module")
async def tenants(database: PostgresDatabase, make_user: MakeUser) -> Tenants:
    owner_a, owner_b = await make_user(full_name="Owner A"), await make_user(full_name="Owner B")
    viewer_a, admin_a = await make_user(), await make_user()
    ws_a = await create_workspace(database, owner_a, "A")
    ws_b = await create_workspace(database, owner_b, "B")
    for user, role in ((viewer_a, "viewer"), (admin_a, "admin")):
        async with database.transaction(claims_for(owner_a)) as conn:
            await conn.execute(
                "insert into public.workspace_members (workspace_id, user_id, role)"
                " values (%s, %s, %s)",
                (ws_a, user, role),
            )
    return Tenants(owner_a, owner_b, viewer_a, admin_a, ws_a, ws_b)


async def test_given_a_member_of_a_when_selecting_b_then_nothing_is_visible(
    database: PostgresDatabase, tenants: Tenants
) -> None:
    me = claims_for(tenants.owner_a)
    assert (
        await _rows(database, me, "select * from public.workspaces where id = %s", tenants.ws_b)
        == []
    )
    assert (
        await _rows(
            database,
            me,
            "select * from public.workspace_members where workspace_id = %s",
            tenants.ws_b,
        )
        == []
    )
    assert (
        await _rows(database, me, "select * from public.profiles where id = %s", tenants.owner_b)
        == []
    )
    visible = await _rows(database, me, "select id from public.workspaces")
    assert [r["id"] for r in visible] == [tenants.ws_a]


async def test_given_a_member_of_a_when_inserting_into_b_then_refused(
    database: PostgresDatabase, tenants: Tenants, make_user: MakeUser
) -> None:
    intruder = await make_user()
    with pytest.raises(Forbidden):
        await _rowcount(
            database,
            claims_for(tenants.owner_a),
            INSERT_MEMBER.format(role="owner"),
            tenants.ws_b,
            intruder,
        )
    with pytest.raises(Forbidden):
        await _rowcount(
            database,
            claims_for(tenants.owner_a),
            "insert into public.workspaces (name, slug) values ('x', %s)",
            f"x-{uuid.uuid4().hex[:8]}",
        )


async def test_given_a_member_of_a_when_updating_or_deleting_b_then_no_row_changes(
    database: PostgresDatabase, tenants: Tenants
) -> None:
    me = claims_for(tenants.owner_a)
    assert (
        await _rowcount(
            database, me, "update public.workspaces set name = 'pwned' where id = %s", tenants.ws_b
        )
        == 0
    )
    assert (
        await _rowcount(
            database,
            me,
            "update public.workspace_members set role = 'viewer' where workspace_id = %s",
            tenants.ws_b,
        )
        == 0
    )
    assert (
        await _rowcount(
            database,
            me,
            "delete from public.workspace_members where workspace_id = %s",
            tenants.ws_b,
        )
        == 0
    )
    assert (
        await _rowcount(database, me, "delete from public.workspaces where id = %s", tenants.ws_b)
        == 0
    )
    assert (
        await _rowcount(
            database,
            me,
            "update public.profiles set full_name = 'pwned' where id = %s",
            tenants.owner_b,
        )
        == 0
    )
    owner_b = claims_for(tenants.owner_b)
    names = await _rows(
        database, owner_b, "select name from public.workspaces where id = %s", tenants.ws_b
    )
    assert [r["name"] for r in names] == ["B"]


@pytest.mark.parametrize("table", ["workspaces", "workspace_members", "profiles"])
async def test_given_anon_when_reading_any_table_then_refused(
    database: PostgresDatabase, tenants: Tenants, table: str
) -> None:
    with pytest.raises(Forbidden):
        await _rows(database, ANON, f"select * from public.{table}")  # noqa: S608 - fixed names


async def test_given_anon_when_creating_a_workspace_then_refused(
    database: PostgresDatabase,
) -> None:
    with pytest.raises(Forbidden):
        await _rows(database, ANON, "select public.create_workspace('x', 'anon-ws')")


async def test_given_a_viewer_when_changing_membership_then_refused(
    database: PostgresDatabase, tenants: Tenants, make_user: MakeUser
) -> None:
    viewer = claims_for(tenants.viewer_a)
    newcomer = await make_user()
    with pytest.raises(Forbidden):
        await _rowcount(
            database,
            viewer,
            INSERT_MEMBER.format(role="viewer"),
            tenants.ws_a,
            newcomer,
        )
    assert (
        await _rowcount(
            database,
            viewer,
            "update public.workspace_members set role = 'admin'"
            " where workspace_id = %s and user_id = %s",
            tenants.ws_a,
            tenants.viewer_a,
        )
        == 0
    )
    assert (
        await _rowcount(
            database,
            viewer,
            "delete from public.workspace_members where workspace_id = %s and user_id = %s",
            tenants.ws_a,
            tenants.admin_a,
        )
        == 0
    )


async def test_given_an_admin_when_granting_owner_then_refused(
    database: PostgresDatabase, tenants: Tenants, make_user: MakeUser
) -> None:
    newcomer = await make_user()
    with pytest.raises(Forbidden):
        await _rowcount(
            database,
            claims_for(tenants.admin_a),
            INSERT_MEMBER.format(role="owner"),
            tenants.ws_a,
            newcomer,
        )


async def test_given_the_last_owner_when_removed_or_demoted_then_conflict(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    owner = await make_user()
    ws = await create_workspace(database, owner, "Solo")
    me = claims_for(owner)
    with pytest.raises(Conflict):
        await _rowcount(
            database,
            me,
            "update public.workspace_members set role = 'admin' where workspace_id = %s",
            ws,
        )
    with pytest.raises(Conflict):
        await _rowcount(
            database, me, "delete from public.workspace_members where workspace_id = %s", ws
        )
    # Deleting the whole workspace is still possible (the members go with it).
    assert await _rowcount(database, me, "delete from public.workspaces where id = %s", ws) == 1


async def test_given_create_workspace_then_the_caller_is_owner_and_profile_exists(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    user = await make_user(full_name="Grace")
    ws = await create_workspace(database, user, "Mine")
    me = claims_for(user)
    roles = await _rows(
        database, me, "select role from public.workspace_members where workspace_id = %s", ws
    )
    assert [r["role"] for r in roles] == ["owner"]
    profile = await _rows(database, me, "select full_name from public.profiles where id = %s", user)
    assert [r["full_name"] for r in profile] == ["Grace"]
