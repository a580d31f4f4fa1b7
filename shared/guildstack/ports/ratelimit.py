"""Request rate limits (an exact sliding log in Redis in production)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_seconds: int


class RateLimiter(Protocol):
    async def hit(self, key: str) -> RateDecision:
        """Count one request against `key` and say whether it may proceed."""
        ...
