"""What a workspace admin can change in SQL with their own JWT (PostgREST-style access):
only the columns the API changes; and creating a workspace tells nothing about other
tenants' slugs."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.domain.errors import Forbidden
from tests.fixtures.postgres import MakeUser, claims_for, create_workspace


async def _execute(db: PostgresDatabase, user: uuid.UUID, query: str, *args: Any) -> int:
    async with db.transaction(claims_for(user)) as conn:
        cur = await conn.execute(query, args)
        return cur.rowcount


async def _slug(db: PostgresDatabase, workspace_id: uuid.UUID) -> str:
    async with db.service_transaction("test") as conn:
        cur = await conn.execute(
            "select slug from public.workspaces where id = %s", (workspace_id,)
        )
        row = await cur.fetchone()
    assert row is not None
    return str(row["slug"])


@pytest.mark.parametrize(
    "assignment",
    ["created_by = %s", "slug = 'taken-by-me'", "created_at = now() - interval '9 years'"],
)
async def test_given_an_admin_when_rewriting_workspace_bookkeeping_in_sql_then_denied(
    database: PostgresDatabase, make_user: MakeUser, assignment: str
) -> None:
    owner, admin = await make_user(), await make_user()
    workspace = await create_workspace(database, owner, members={admin: "admin"})
    args = (admin, workspace) if "%s" in assignment else (workspace,)
    with pytest.raises(Forbidden):
        query = f"update public.workspaces set {assignment} where id = %s"  # noqa: S608
        await _execute(database, admin, query, *args)


async def test_given_an_admin_when_renaming_or_budgeting_in_sql_then_allowed(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    owner, admin = await make_user(), await make_user()
    workspace = await create_workspace(database, owner, members={admin: "admin"})
    changed = await _execute(
        database,
        admin,
        "update public.workspaces set name = 'Renamed', monthly_budget_usd = 42 where id = %s",
        workspace,
    )
    assert changed == 1


@pytest.mark.parametrize("column", ["user_id", "workspace_id", "created_at"])
async def test_given_an_admin_when_moving_a_membership_in_sql_then_denied(
    database: PostgresDatabase, make_user: MakeUser, column: str
) -> None:
    owner, admin, viewer, stranger = [await make_user() for _ in range(4)]
    workspace = await create_workspace(database, owner, members={admin: "admin", viewer: "viewer"})
    own = await create_workspace(database, admin)
    value = {"user_id": stranger, "workspace_id": own, "created_at": "2000-01-01"}[column]
    with pytest.raises(Forbidden):
        await _execute(
            database,
            admin,
            f"update public.workspace_members set {column} = %s"  # noqa: S608 - test constants
            " where workspace_id = %s and user_id = %s",
            value,
            workspace,
            viewer,
        )


async def test_given_another_tenants_slug_when_creating_a_workspace_then_it_succeeds_with_another(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    ada, eve = await make_user(), await make_user()
    theirs = await create_workspace(database, ada, "Ada's")
    taken = await _slug(database, theirs)

    async with database.transaction(claims_for(eve)) as conn:
        cur = await conn.execute(
            "select id, slug from public.create_workspace('Probe', %s, null)", (taken,)
        )
        row = await cur.fetchone()

    assert row is not None and row["slug"] != taken
    assert row["slug"].startswith(taken.rsplit("-", 1)[0])


@pytest.mark.parametrize("requested", ["", "-", "UPPER case!", "x" * 100, "ok-name"])
async def test_given_any_requested_slug_then_the_stored_one_is_valid_and_suffixed(
    database: PostgresDatabase, make_user: MakeUser, requested: str
) -> None:
    user = await make_user()
    async with database.transaction(claims_for(user)) as conn:
        first = await (
            await conn.execute("select slug from public.create_workspace('A', %s)", (requested,))
        ).fetchone()
        second = await (
            await conn.execute("select slug from public.create_workspace('B', %s)", (requested,))
        ).fetchone()
    assert first is not None and second is not None
    assert first["slug"] != second["slug"]
    for row in (first, second):
        assert 1 <= len(row["slug"]) <= 64
        assert row["slug"] == row["slug"].lower() and not row["slug"].startswith("-")


async def test_given_an_admin_in_sql_then_adding_by_email_is_no_account_oracle(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    owner = await make_user()
    known_email = f"known-{uuid.uuid4().hex[:8]}@example.com"
    await make_user(email=known_email)
    workspace = await create_workspace(database, owner)
    unknown = f"unknown-{uuid.uuid4().hex[:8]}@example.com"

    async def invite(email: str) -> dict[str, Any]:
        async with database.transaction(claims_for(owner)) as conn:
            cur = await conn.execute(
                "select * from public.invite_workspace_member(%s, %s, 'viewer')",
                (workspace, email),
            )
            row = await cur.fetchone()
        assert row is not None
        return dict(row)

    for_known, for_unknown = await invite(known_email), await invite(unknown)
    assert set(for_known) == set(for_unknown) and "user_id" not in for_known
    # The old lookup, which answered null for unknown emails, is gone.
    with pytest.raises(psycopg.errors.UndefinedFunction):
        async with database.transaction(claims_for(owner)) as conn:
            await conn.execute(
                "select public.add_workspace_member(%s, %s, 'viewer')", (workspace, unknown)
            )
