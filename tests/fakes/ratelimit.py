"""An in-memory rate limiter with the production limiter's rules (a sliding log per key)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from guildstack.ports.ratelimit import RateDecision, RateLimiter


@dataclass
class CountingLimiter:
    """At most `limit` counted hits per key (no window: tests never wait one out)."""

    limit: int
    hits: dict[str, list[str]] = field(default_factory=dict)
    down: bool = False  # raise like an unreachable Redis
    together: int = 0  # calls of hit_with (one round trip each in production)

    async def hit(self, key: str) -> RateDecision:
        if self.down:
            raise ConnectionError("redis is down")
        log = self.hits.setdefault(key, [])
        if len(log) >= self.limit:
            return RateDecision(False, self.limit, 0, 60)
        ticket = uuid.uuid4().hex
        log.append(ticket)
        return RateDecision(True, self.limit, self.limit - len(log), 0, ticket)

    async def hit_with(
        self, key: str, others: Sequence[tuple[RateLimiter, str]]
    ) -> list[RateDecision]:
        self.together += 1
        decisions: list[RateDecision] = []
        for limiter, k in [(self, key), *others]:
            decisions.append(await limiter.hit(k))
            if not decisions[-1].allowed:  # all or none
                for (counted, ck), d in zip([(self, key), *others], decisions[:-1], strict=False):
                    await counted.release(ck, d.ticket)
                break
        return decisions

    async def release(self, key: str, ticket: str) -> None:
        if self.down:
            raise ConnectionError("redis is down")
        if ticket in self.hits.get(key, []):
            self.hits[key].remove(ticket)
