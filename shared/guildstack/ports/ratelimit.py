"""Request rate limits (an exact sliding log in Redis in production)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_seconds: int
    # Names the counted hit (when allowed), for `release`.
    ticket: str = ""


class RateLimiter(Protocol):
    async def hit(self, key: str) -> RateDecision:
        """Count one request against `key` and say whether it may proceed (a refused one is
        not counted)."""
        ...

    async def hit_with(
        self, key: str, others: Sequence[tuple[RateLimiter, str]]
    ) -> list[RateDecision]:
        """Count one request against `key` here and against each `(limiter, key)` of
        `others`, all or none (one round trip where the limiters share a store): the
        decisions in that order, up to the first refusal; when one refuses, nothing is
        counted anywhere."""
        ...

    async def release(self, key: str, ticket: str) -> None:
        """Un-count the hit `ticket` names: an attempt counted up front (so simultaneous
        attempts cannot overshoot the limit) that turned out not to count."""
        ...
