"""Read-only member transactions (`PostgresUnitOfWork.reading`), pipelined: RLS and the
caller's claims apply as in any member transaction, a refusal surfaces at its read, and
the connection goes back to the pool clean."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.adapters.postgres.uow import PostgresUnitOfWork
from guildstack.domain.authorization import Action
from guildstack.domain.errors import NotFound
from guildstack.domain.paging import PageRequest
from guildstack.domain.principal import Principal
from guildstack.services.access import authorized
from tests.fixtures.postgres import MakeUser, claims_for, create_workspace


def as_member(user: uuid.UUID) -> Principal:
    return Principal(user, None, claims_for(user))


async def test_given_a_reading_transaction_then_it_acts_for_the_caller_under_rls(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    ada, bob = await make_user(), await make_user()
    mine = await create_workspace(database, ada, "Ada's")
    theirs = await create_workspace(database, bob, "Bob's")
    uow = PostgresUnitOfWork(database)

    async with uow.reading(as_member(ada)) as tx:
        page = await tx.workspaces.list_mine(PageRequest(limit=50))
        cur = await tx.conn.execute("select auth.uid() as uid, current_user as r")
        who = await cur.fetchone()
        now = tx.now

    ids = {w.id for w in page.items}
    assert mine in ids and theirs not in ids
    assert who == {"uid": ada, "r": "authenticated"}
    assert abs(now - datetime.now(UTC)) < timedelta(minutes=1)


async def test_given_a_non_member_then_the_refusal_surfaces_at_its_read_and_nothing_leaks(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    owner, outsider = await make_user(), await make_user()
    workspace = await create_workspace(database, owner)
    uow = PostgresUnitOfWork(database)

    with pytest.raises(NotFound):
        async with uow.reading(as_member(outsider)) as tx:
            await authorized(tx, workspace, Action.VIEW)

    # The pooled connection is back, out of the transaction and without its claims.
    async with database.service_transaction("test: after a refused read") as conn:
        cur = await conn.execute("select auth.uid() as uid, current_user as r")
        row = await cur.fetchone()
    assert row == {"uid": None, "r": "service_role"}
    async with uow.reading(as_member(owner)) as tx:
        assert await tx.workspaces.get(workspace) is not None
