"""Upstash Redis: the rate limiter and the health probe, clients built on first use."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from guildstack.ports.ratelimit import RateDecision

if TYPE_CHECKING:
    from upstash_redis.asyncio import Redis


class UpstashClientFactory:
    """One async Upstash client per container, created when first needed."""

    def __init__(self, url: str, token: str) -> None:
        self._url = url
        self._token = token
        self._client: Redis | None = None

    def client(self) -> Redis:
        if self._client is None:
            from upstash_redis.asyncio import Redis

            # One quick retry: on the request path a slow retry costs more than a miss.
            self._client = Redis(
                url=self._url,
                token=self._token,
                rest_retries=1,
                rest_retry_interval=0.05,
                allow_telemetry=False,
            )
        return self._client


class UpstashRateLimiter:
    """A sliding window per key (`upstash-ratelimit` semantics)."""

    def __init__(
        self, redis: UpstashClientFactory, *, limit: int, window_seconds: int, prefix: str
    ) -> None:
        from upstash_ratelimit import SlidingWindow
        from upstash_ratelimit.asyncio import Ratelimit

        self._limit = limit
        self._ratelimit = Ratelimit(
            redis=redis.client(),
            limiter=SlidingWindow(max_requests=limit, window=window_seconds),
            prefix=prefix,
        )

    async def hit(self, key: str) -> RateDecision:
        response = await self._ratelimit.limit(key)
        retry_after = 0 if response.allowed else max(1, math.ceil(response.reset - time.time()))
        return RateDecision(
            allowed=response.allowed,
            limit=response.limit,
            remaining=response.remaining,
            retry_after_seconds=retry_after,
        )


class UpstashProbe:
    name = "redis"
    critical = False

    def __init__(self, redis: UpstashClientFactory) -> None:
        self._redis = redis

    async def check(self) -> bool:
        try:
            return bool(await self._redis.client().ping())
        except Exception:  # noqa: BLE001 - a probe reports, it never raises
            return False
