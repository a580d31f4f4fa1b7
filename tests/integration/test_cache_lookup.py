"""A cache lookup in one round trip: the generation and the entry under the generation
this container last saw, read together; when another container's write moved the
generation, the entry is read again under the new one, so an invalidation is never missed."""

from __future__ import annotations

import uuid

import redis

from guildstack.adapters.upstash import UpstashCache, UpstashClientFactory
from guildstack.domain.cache import CacheType
from tests.fixtures.redis import UpstashEndpoint

KIND = CacheType.AGENT_CATALOG


def reads(redis_url: str) -> int:
    """GET and MGET commands Redis has served so far."""
    stats = redis.Redis.from_url(redis_url).info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("get", "mget"))


def two_containers(upstash: UpstashEndpoint) -> tuple[UpstashCache, UpstashCache]:
    prefix = f"gs:test:{uuid.uuid4().hex[:8]}"
    here = UpstashCache(UpstashClientFactory(upstash.url, upstash.token), prefix=prefix)
    there = UpstashCache(UpstashClientFactory(upstash.url, upstash.token), prefix=prefix)
    return here, there


async def test_given_a_steady_generation_then_a_lookup_is_one_read(
    upstash: UpstashEndpoint, redis_url: str
) -> None:
    here, _ = two_containers(upstash)
    workspace = uuid.uuid4()
    await here.put(KIND, workspace, 0, "rows", "v0", 60)

    before = reads(redis_url)
    assert await here.lookup(KIND, workspace, "rows") == (0, "v0")
    assert await here.lookup(KIND, workspace, "missing") == (0, None)
    assert reads(redis_url) - before == 2


async def test_given_a_write_elsewhere_then_the_next_lookup_sees_the_new_generation(
    upstash: UpstashEndpoint, redis_url: str
) -> None:
    here, there = two_containers(upstash)
    workspace = uuid.uuid4()
    await here.put(KIND, workspace, 0, "rows", "old", 60)
    assert await here.lookup(KIND, workspace, "rows") == (0, "old")

    await there.invalidate(KIND, workspace)  # another container's write
    assert await here.lookup(KIND, workspace, "rows") == (1, None), "the old entry is gone"
    await there.put(KIND, workspace, 1, "rows", "new", 60)

    before = reads(redis_url)
    assert await here.lookup(KIND, workspace, "rows") == (1, "new")
    assert reads(redis_url) - before == 1, "the new generation is the one remembered"
