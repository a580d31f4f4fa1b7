"""Waiting for something to happen by asking again, backing off (long-poll, bounded waits)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Poller:
    """`until(fetch, done, seconds)`: `fetch()` again, waiting a little longer each time
    (from `first` to `longest` seconds), until `done` says so or `seconds` have passed."""

    sleep: Sleep = asyncio.sleep
    clock: Callable[[], float] = time.monotonic
    first: float = 0.05
    longest: float = 0.5

    async def until(
        self, fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], seconds: float
    ) -> T:
        deadline = self.clock() + max(seconds, 0)
        delay = self.first
        while True:
            value = await fetch()
            if done(value) or self.clock() >= deadline:
                return value
            await self.sleep(delay)
            delay = min(delay * 2, self.longest)
