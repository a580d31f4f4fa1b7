"""`CacheService`: the typed cache with its per-type TTLs, never in the way.

A cache that fails (Redis down, a timeout) is a miss, logged; no request fails because of
it. Hits and misses are counted per type (`CacheHits` / `CacheMisses`, dimension
`cache_type`), which gives the hit ratio of each.

Read-through of data that writes invalidate: `lookup` (the value, or a miss that remembers
the generation it saw) before reading the database, `store` the database's answer under
that generation afterwards. A write that bumped the generation in between makes the stored
value unreachable, so a stale read is never served.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from guildstack.domain.cache import TTL_SECONDS, CacheType
from guildstack.observability import cache_metric, logger
from guildstack.ports.cache import Cache

UNKNOWN = -1  # the generation could not be read: nothing will be stored


@dataclass(frozen=True)
class Lookup:
    value: str | None
    generation: int


class CacheService:
    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    async def lookup(self, kind: CacheType, workspace_id: UUID, key: str) -> Lookup:
        try:
            generation, value = await self._cache.lookup(kind, workspace_id, key)
        except Exception:  # noqa: BLE001 - a cache that fails is a miss
            logger.warning("cache read failed", extra={"cache_type": kind.value}, exc_info=True)
            generation, value = UNKNOWN, None
        cache_metric(kind.value, hit=value is not None)
        return Lookup(value, generation)

    async def store(
        self,
        kind: CacheType,
        workspace_id: UUID,
        key: str,
        value: str,
        generation: int,
        ttl: int | None = None,
    ) -> None:
        if generation == UNKNOWN:
            return
        try:
            ttl_seconds = ttl or TTL_SECONDS[kind]
            await self._cache.put(kind, workspace_id, generation, key, value, ttl_seconds)
        except Exception:  # noqa: BLE001 - the next read is a miss, nothing worse
            logger.warning("cache write failed", extra={"cache_type": kind.value}, exc_info=True)

    async def get(self, kind: CacheType, workspace_id: UUID, key: str) -> str | None:
        return (await self.lookup(kind, workspace_id, key)).value

    async def put(
        self, kind: CacheType, workspace_id: UUID, key: str, value: str, ttl: int | None = None
    ) -> None:
        """Store under the current generation (for data no write invalidates meanwhile)."""
        try:
            generation = await self._cache.generation(kind, workspace_id)
        except Exception:  # noqa: BLE001
            logger.warning("cache write failed", extra={"cache_type": kind.value}, exc_info=True)
            return
        await self.store(kind, workspace_id, key, value, generation, ttl)

    async def invalidate(self, kind: CacheType, workspace_id: UUID) -> None:
        """After a write: the type's entries of the workspace are not read again. A failure
        here is logged loudly (stale entries live until their TTL)."""
        try:
            await self._cache.invalidate(kind, workspace_id)
        except Exception:  # noqa: BLE001 - the write itself succeeded; say so loudly
            logger.exception("cache invalidation failed", extra={"cache_type": kind.value})
