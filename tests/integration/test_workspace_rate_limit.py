"""The per-workspace limit on the production pieces: the sliding log in real Redis and the
membership answer from real Postgres (as the service role reads it)."""

from __future__ import annotations

import uuid

from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.adapters.postgres.uow import PostgresUnitOfWork
from guildstack.adapters.upstash import UpstashClientFactory, UpstashRateLimiter
from guildstack.services.workspace_limits import WorkspaceRateLimit
from tests.fixtures.postgres import MakeUser, create_workspace
from tests.fixtures.redis import UpstashEndpoint


def limit_of(upstash: UpstashEndpoint, database: PostgresDatabase, n: int) -> WorkspaceRateLimit:
    factory = UpstashClientFactory(upstash.url, upstash.token)
    prefix = f"ws-test:{uuid.uuid4().hex[:8]}"
    limiter = UpstashRateLimiter(factory, limit=n, window_seconds=60, prefix=prefix)
    return WorkspaceRateLimit(limiter, PostgresUnitOfWork(database), ttl_seconds=60)


async def test_given_two_members_then_their_requests_share_the_workspace_limit(
    upstash: UpstashEndpoint, database: PostgresDatabase, make_user: MakeUser
) -> None:
    owner, viewer = await make_user(), await make_user()
    ws = await create_workspace(database, owner, members={viewer: "viewer"})
    limit = limit_of(upstash, database, 5)

    decisions = [await limit.hit(who, ws) for who in (owner, viewer) * 3]

    assert [d is not None and d.allowed for d in decisions] == [True] * 5 + [False]
    refused = decisions[-1]
    assert refused is not None and 1 <= refused.retry_after_seconds <= 60
    other = await create_workspace(database, owner)
    assert (second := await limit.hit(owner, other)) is not None and second.allowed


async def test_given_an_outsider_naming_the_workspace_then_nothing_is_counted(
    upstash: UpstashEndpoint, database: PostgresDatabase, make_user: MakeUser
) -> None:
    owner, outsider = await make_user(), await make_user()
    ws = await create_workspace(database, owner)
    limit = limit_of(upstash, database, 3)

    assert [await limit.hit(outsider, ws) for _ in range(10)] == [None] * 10
    assert [await limit.hit(uuid.uuid4(), ws) for _ in range(3)] == [None] * 3

    member = [await limit.hit(owner, ws) for _ in range(4)]
    assert [d is not None and d.allowed for d in member] == [True, True, True, False]
