"""`CacheService`: the typed cache with its per-type TTLs, never in the way.

A cache that fails (Redis down, a timeout) is a miss, logged; no request fails because of
it. Hits and misses are counted per type (`CacheHits` / `CacheMisses`, dimension
`cache_type`), which gives the hit ratio of each.
"""

from __future__ import annotations

from uuid import UUID

from guildstack.domain.cache import TTL_SECONDS, CacheType
from guildstack.observability import cache_metric, logger
from guildstack.ports.cache import Cache


class CacheService:
    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    async def get(self, kind: CacheType, workspace_id: UUID, key: str) -> str | None:
        try:
            value = await self._cache.get(kind, workspace_id, key)
        except Exception:  # noqa: BLE001 - a cache that fails is a miss
            logger.warning("cache read failed", extra={"cache_type": kind.value}, exc_info=True)
            value = None
        cache_metric(kind.value, hit=value is not None)
        return value

    async def put(
        self, kind: CacheType, workspace_id: UUID, key: str, value: str, ttl: int | None = None
    ) -> None:
        try:
            await self._cache.put(kind, workspace_id, key, value, ttl or TTL_SECONDS[kind])
        except Exception:  # noqa: BLE001 - the next read is a miss, nothing worse
            logger.warning("cache write failed", extra={"cache_type": kind.value}, exc_info=True)

    async def invalidate(self, kind: CacheType, workspace_id: UUID) -> None:
        """After a write: the type's entries of the workspace are not read again. A failure
        here is logged loudly (stale entries live until their TTL)."""
        try:
            await self._cache.invalidate(kind, workspace_id)
        except Exception:  # noqa: BLE001
            logger.error(
                "cache invalidation failed", extra={"cache_type": kind.value}, exc_info=True
            )
