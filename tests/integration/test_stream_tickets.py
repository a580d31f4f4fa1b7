"""Stream tickets in real Redis: what is stored cannot be replayed, and it expires."""

from __future__ import annotations

import uuid

from upstash_redis.asyncio import Redis as AsyncRedis

from guildstack.adapters.stream_tickets import UpstashStreamTickets
from guildstack.adapters.upstash import UpstashClientFactory
from guildstack.domain.principal import Principal
from guildstack.ports.tickets import StreamGrant
from tests.fixtures.redis import UpstashEndpoint


def grant() -> StreamGrant:
    user = uuid.uuid4()
    principal = Principal(user, "a@example.com", {"sub": str(user), "role": "authenticated"}, "s1")
    return StreamGrant.of(principal, uuid.uuid4(), f"run:{uuid.uuid4()}")


async def test_given_a_ticket_then_it_redeems_to_its_grant_and_redis_holds_only_a_hash(
    upstash: UpstashEndpoint,
) -> None:
    prefix = f"tk-test:{uuid.uuid4().hex[:8]}"
    tickets = UpstashStreamTickets(UpstashClientFactory(upstash.url, upstash.token), prefix=prefix)
    given = grant()

    ticket = await tickets.issue(given, ttl_seconds=60)

    assert await tickets.redeem(ticket) == given
    redis = AsyncRedis(url=upstash.url, token=upstash.token, allow_telemetry=False)
    keys = await redis.keys(f"{prefix}:*")
    assert len(keys) == 1
    assert ticket not in keys[0]
    assert ticket not in str(await redis.get(keys[0]))
    assert 55 <= await redis.ttl(keys[0]) <= 60


async def test_given_an_unknown_or_expired_ticket_then_nothing(upstash: UpstashEndpoint) -> None:
    prefix = f"tk-test:{uuid.uuid4().hex[:8]}"
    tickets = UpstashStreamTickets(UpstashClientFactory(upstash.url, upstash.token), prefix=prefix)
    ticket = await tickets.issue(grant(), ttl_seconds=60)
    redis = AsyncRedis(url=upstash.url, token=upstash.token, allow_telemetry=False)
    (key,) = await redis.keys(f"{prefix}:*")

    await redis.delete(key)  # what expiry does

    assert await tickets.redeem(ticket) is None
    assert await tickets.redeem("not a ticket") is None
    assert await tickets.redeem(ticket[:-1] + ("A" if ticket[-1] != "A" else "B")) is None
