"""PostgresDatabase against the real server: claims reach RLS, errors become domain errors."""

from __future__ import annotations

import uuid

import pytest

from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.domain.errors import DependencyUnavailable, InvalidInput
from tests.fixtures.postgres import claims_for


async def test_given_claims_when_in_a_transaction_then_auth_uid_and_role_follow(
    database: PostgresDatabase,
) -> None:
    user = uuid.uuid4()
    async with database.transaction(claims_for(user)) as conn:
        cur = await conn.execute("select auth.uid() as uid, auth.role() as role, current_user as r")
        row = await cur.fetchone()
    assert row == {"uid": user, "role": "authenticated", "r": "authenticated"}


async def test_given_a_transaction_when_it_ends_then_claims_do_not_leak_to_the_next(
    database: PostgresDatabase,
) -> None:
    async with database.transaction(claims_for(uuid.uuid4())):
        pass
    async with database.service_transaction("test: check reset") as conn:
        cur = await conn.execute("select auth.uid() as uid, current_user as r")
        row = await cur.fetchone()
    assert row == {"uid": None, "r": "service_role"}


async def test_given_a_service_transaction_then_rls_is_bypassed(
    database: PostgresDatabase, make_user: object
) -> None:
    async with database.service_transaction("test: count workspaces") as conn:
        cur = await conn.execute("select count(*) as n from public.workspaces")
        row = await cur.fetchone()
    assert row is not None and row["n"] >= 0


async def test_given_a_check_violation_then_invalid_input(database: PostgresDatabase) -> None:
    with pytest.raises(InvalidInput):
        async with database.service_transaction("test: bad value") as conn:
            await conn.execute("insert into public.workspaces (name, slug) values ('', 'bad-slug')")


async def test_given_a_new_adapter_then_no_pool_is_opened_until_used() -> None:
    db = PostgresDatabase("postgresql://nobody@127.0.0.1:1/none", connect_timeout=1)
    assert not db.opened
    assert await db.ping() is False
    with pytest.raises(DependencyUnavailable):
        async with db.transaction(claims_for(uuid.uuid4())):
            pass
    await db.close()


async def test_given_connections_forgotten_then_the_next_transaction_opens_a_new_pool(
    database_url: str,
) -> None:
    """What a SnapStart restore does: the pool of the snapshot is dropped, not reused."""
    db = PostgresDatabase(database_url, max_size=2)
    async with db.service_transaction("before") as conn:
        await conn.execute("select 1")
    old_pool = db._pool  # noqa: SLF001

    db.forget_connections()
    assert not db.opened
    async with db.service_transaction("after") as conn:
        cur = await conn.execute("select 2 as two")
        assert (await cur.fetchone()) == {"two": 2}

    assert db._pool is not None and db._pool is not old_pool  # noqa: SLF001
    assert old_pool is not None
    await old_pool.close()
    await db.close()
