"""A cache lookup in one round trip: the generation and the entry under the generation
this container last saw, read together; when another container's write moved the
generation, the entry is read again under the new one, so an invalidation is never missed."""

from __future__ import annotations

import uuid

from upstash_redis.asyncio import Redis as AsyncRedis

from guildstack.adapters.upstash import UpstashCache, UpstashClientFactory
from guildstack.domain.cache import CacheType
from tests.fixtures.redis import UpstashEndpoint

KIND = CacheType.AGENT_CATALOG


class Counting(UpstashClientFactory):
    """Counts the REST requests the cache makes."""

    requests = 0
    wrapped: AsyncRedis | None = None

    def client(self) -> AsyncRedis:
        client = super().client()
        if client is self.wrapped:
            return client
        factory, execute = self, client.execute

        async def counted(command: list[object]) -> object:
            factory.requests += 1
            return await execute(command)

        client.execute = counted  # type: ignore[method-assign,assignment]
        self.wrapped = client
        return client


def two_containers(upstash: UpstashEndpoint) -> tuple[UpstashCache, UpstashCache, Counting]:
    prefix = f"gs:test:{uuid.uuid4().hex[:8]}"
    counting = Counting(upstash.url, upstash.token)
    here = UpstashCache(counting, prefix=prefix)
    there = UpstashCache(UpstashClientFactory(upstash.url, upstash.token), prefix=prefix)
    return here, there, counting


async def test_given_a_steady_generation_then_a_lookup_is_one_request(
    upstash: UpstashEndpoint,
) -> None:
    here, _, counting = two_containers(upstash)
    workspace = uuid.uuid4()
    await here.put(KIND, workspace, 0, "rows", "v0", 60)

    before = counting.requests
    assert await here.lookup(KIND, workspace, "rows") == (0, "v0")
    assert await here.lookup(KIND, workspace, "missing") == (0, None)
    assert counting.requests - before == 2


async def test_given_a_write_elsewhere_then_the_next_lookup_sees_the_new_generation(
    upstash: UpstashEndpoint,
) -> None:
    here, there, counting = two_containers(upstash)
    workspace = uuid.uuid4()
    await here.put(KIND, workspace, 0, "rows", "old", 60)
    assert await here.lookup(KIND, workspace, "rows") == (0, "old")

    await there.invalidate(KIND, workspace)  # another container's write
    assert await here.lookup(KIND, workspace, "rows") == (1, None), "the old entry is gone"
    await there.put(KIND, workspace, 1, "rows", "new", 60)

    before = counting.requests
    assert await here.lookup(KIND, workspace, "rows") == (1, "new")
    assert counting.requests - before == 1, "the new generation is the one remembered"
