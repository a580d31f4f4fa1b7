"""The account directory against Supabase's `auth` schema (the local shim): existence,
soft deletion, bans and sessions; and only the service role may ask."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from guildstack.adapters.postgres.accounts import PostgresAccountDirectory
from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.domain.errors import Forbidden
from tests.fixtures.postgres import MakeUser, claims_for


async def _sql(database_url: str, query: str, *args: object) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(query, args)


@pytest.mark.parametrize(
    ("change", "active"),
    [
        (None, True),
        ("delete from auth.users where id = %s", False),
        ("update auth.users set deleted_at = now() where id = %s", False),
        ("update auth.users set banned_until = now() + interval '1 hour' where id = %s", False),
        ("update auth.users set banned_until = now() - interval '1 hour' where id = %s", True),
    ],
)
async def test_given_an_account_then_active_says_whether_it_may_still_act(
    database: PostgresDatabase,
    database_url: str,
    make_user: MakeUser,
    change: str | None,
    active: bool,
) -> None:
    user = await make_user()
    if change:
        await _sql(database_url, change, user)
    assert await PostgresAccountDirectory(database).active(user, None) is active


async def test_given_sessions_then_only_open_ones_of_that_user_count(
    database: PostgresDatabase, database_url: str, make_user: MakeUser
) -> None:
    ada, ben = await make_user(), await make_user()
    open_, expired, bens = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await _sql(database_url, "insert into auth.sessions (id, user_id) values (%s, %s)", open_, ada)
    await _sql(
        database_url,
        "insert into auth.sessions (id, user_id, not_after)"
        " values (%s, %s, now() - interval '1 s')",
        expired,
        ada,
    )
    await _sql(database_url, "insert into auth.sessions (id, user_id) values (%s, %s)", bens, ben)
    directory = PostgresAccountDirectory(database)

    assert await directory.active(ada, open_)
    assert not await directory.active(ada, expired)
    assert not await directory.active(ada, bens)
    assert not await directory.active(ada, uuid.uuid4())


async def test_given_a_member_when_asking_about_accounts_then_permission_is_denied(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    user = await make_user()
    with pytest.raises(Forbidden):
        async with database.transaction(claims_for(user)) as conn:
            await conn.execute("select private.account_active(%s, null)", (uuid.uuid4(),))
