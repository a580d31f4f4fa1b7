"""The production rate limiter (an exact sliding log) against real Redis through the bridge."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

import httpx
import pytest
import redis
from upstash_redis.asyncio import Redis as AsyncRedis

from guildstack.adapters.upstash import UpstashClientFactory, UpstashRateLimiter
from tests.fixtures.redis import UpstashEndpoint


def limiter_for(upstash: UpstashEndpoint, limit: int) -> tuple[UpstashRateLimiter, str]:
    prefix = f"rl-test:{uuid.uuid4().hex[:8]}"
    factory = UpstashClientFactory(upstash.url, upstash.token)
    return UpstashRateLimiter(factory, limit=limit, window_seconds=60, prefix=prefix), prefix


async def test_given_a_limit_of_five_when_six_hits_then_the_sixth_is_refused(
    upstash: UpstashEndpoint,
) -> None:
    limiter, _ = limiter_for(upstash, 5)
    decisions = [await limiter.hit("user-1") for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert 1 <= decisions[-1].retry_after_seconds <= 60
    assert (await limiter.hit("user-2")).allowed


async def test_given_hits_just_inside_the_window_then_refused_and_just_outside_then_allowed(
    upstash: UpstashEndpoint,
) -> None:
    """Requests from 59 s ago still count in full (no two-window approximation)."""
    limiter, prefix = limiter_for(upstash, 3)
    redis = AsyncRedis(url=upstash.url, token=upstash.token, allow_telemetry=False)
    now_ms = int(time.time() * 1000)
    await redis.zadd(f"{prefix}:inside", {f"old-{i}": now_ms - 59_000 for i in range(3)})
    await redis.zadd(f"{prefix}:outside", {f"old-{i}": now_ms - 61_000 for i in range(3)})

    inside = await limiter.hit("inside")
    outside = await limiter.hit("outside")

    assert not inside.allowed and inside.retry_after_seconds <= 2
    assert outside.allowed and outside.remaining == 2
    await redis.close()


async def test_given_redis_forgot_the_script_when_hit_then_it_is_loaded_again(
    upstash: UpstashEndpoint,
) -> None:
    limiter, _ = limiter_for(upstash, 2)
    assert (await limiter.hit("u")).allowed
    redis = AsyncRedis(url=upstash.url, token=upstash.token, allow_telemetry=False)
    await redis.script_flush()
    assert (await limiter.hit("u")).allowed
    assert not (await limiter.hit("u")).allowed
    await redis.close()


async def test_given_a_released_hit_then_it_no_longer_counts(upstash: UpstashEndpoint) -> None:
    limiter, _ = limiter_for(upstash, 2)
    first, second = await limiter.hit("k"), await limiter.hit("k")
    refused = await limiter.hit("k")
    await limiter.release("k", second.ticket)

    assert first.ticket and second.ticket and first.ticket != second.ticket
    assert not refused.allowed and refused.ticket == ""
    assert (await limiter.hit("k")).allowed
    assert not (await limiter.hit("k")).allowed


async def test_given_two_limits_hit_together_then_all_or_none_is_counted(
    upstash: UpstashEndpoint,
) -> None:
    """The user's and the workspace's limits in one script call: when one is full, the
    other is not counted either."""
    factory = UpstashClientFactory(upstash.url, upstash.token)
    prefix = f"rl-test:{uuid.uuid4().hex[:8]}"
    users = UpstashRateLimiter(factory, limit=3, window_seconds=60, prefix=f"{prefix}:u")
    workspaces = UpstashRateLimiter(factory, limit=2, window_seconds=60, prefix=f"{prefix}:w")

    first = await users.hit_with("ada", [(workspaces, "ws")])
    second = await users.hit_with("ada", [(workspaces, "ws")])
    refused = await users.hit_with("ada", [(workspaces, "ws")])

    assert [d.allowed for d in first] == [True, True] and first[0].ticket == first[1].ticket
    assert [(d.remaining) for d in second] == [1, 0]
    assert [d.allowed for d in refused] == [True, False]
    assert 1 <= refused[1].retry_after_seconds <= 60
    # The refused request took nothing from the user's limit: one left.
    assert (await users.hit("ada")).remaining == 0
    assert not (await users.hit("ada")).allowed
    other = UpstashRateLimiter(
        UpstashClientFactory(upstash.url, upstash.token), limit=1, window_seconds=60,
        prefix=f"{prefix}:o",
    )  # fmt: skip
    mixed = await users.hit_with("bob", [(other, "x")])  # another client: one by one
    assert [d.allowed for d in mixed] == [True, True]


async def test_given_a_redis_that_never_answers_then_a_hit_fails_in_bounded_time() -> None:
    """A blackholed Upstash must not hold every request: the call fails (and the limit
    fails open) after the factory's timeout, instead of waiting forever."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections are accepted by the kernel and never answered
    try:
        port = silent.getsockname()[1]
        factory = UpstashClientFactory(f"http://127.0.0.1:{port}", "token", timeout_seconds=0.2)
        limiter = UpstashRateLimiter(factory, limit=5, window_seconds=60, prefix="rl-silent")

        # Its own HTTP timeout, not the test's outer bound (which raises TimeoutError).
        with pytest.raises(httpx.TimeoutException):
            await asyncio.wait_for(limiter.hit("user-1"), 10)
    finally:
        silent.close()


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def local_first(
    upstash: UpstashEndpoint,
    limit: int,
    clock: Clock,
    prefix: str | None = None,
    factory: UpstashClientFactory | None = None,
) -> tuple[UpstashRateLimiter, str]:
    prefix = prefix or f"rl-test:{uuid.uuid4().hex[:8]}"
    factory = factory or UpstashClientFactory(upstash.url, upstash.token)
    limiter = UpstashRateLimiter(factory, limit=limit, window_seconds=60, prefix=prefix,
                                 local_share=0.5, sync_seconds=0.2, clock=clock)  # fmt: skip
    return limiter, prefix


def counted(redis_url: str, key: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.zcard(key))
    finally:
        client.close()


async def test_given_a_local_first_limit_then_hits_under_half_of_it_stay_local_and_none_is_lost(
    upstash: UpstashEndpoint, redis_url: str
) -> None:
    clock = Clock()
    limiter, prefix = local_first(upstash, 10, clock)

    first = [await limiter.hit("u") for _ in range(5)]
    # The first hit asked Redis; the next four were admitted here, not yet written.
    assert all(d.allowed for d in first)
    assert counted(redis_url, f"{prefix}:u") == 1
    assert [d.remaining for d in first] == [9, 8, 7, 6, 5]

    rest = [await limiter.hit("u") for _ in range(6)]
    # Past half the limit every hit is exact, the four local ones written with the first.
    assert [d.allowed for d in rest] == [True] * 5 + [False]
    assert counted(redis_url, f"{prefix}:u") == 10
    assert rest[-1].retry_after_seconds >= 1


async def test_given_a_local_view_older_than_the_sync_interval_then_the_next_hit_syncs(
    upstash: UpstashEndpoint, redis_url: str
) -> None:
    clock = Clock()
    limiter, prefix = local_first(upstash, 100, clock)
    for _ in range(3):
        await limiter.hit("u")
    assert counted(redis_url, f"{prefix}:u") == 1

    clock.now += 0.3
    decision = await limiter.hit("u")

    assert decision.allowed and decision.ticket  # a Redis hit names its ticket
    assert counted(redis_url, f"{prefix}:u") == 4


async def test_given_two_containers_then_each_sees_the_others_hits_once_they_sync(
    upstash: UpstashEndpoint, redis_url: str
) -> None:
    """Limits are shared through Redis: a container admits locally only until its view
    (its own hits plus what Redis said) reaches half the limit, then asks Redis, which
    holds every hit the others synced."""
    clock = Clock()
    a, prefix = local_first(upstash, 8, clock)
    b, _ = local_first(upstash, 8, clock, prefix)

    admitted = [await a.hit("u") for _ in range(4)]  # 1 in Redis, 3 local
    admitted += [await b.hit("u") for _ in range(2)]  # B sees 1, adds 1; 1 local
    clock.now += 0.3  # both views are stale: every hit from here syncs first
    admitted += [await a.hit("u"), await b.hit("u")]
    refused = await a.hit("u")

    assert all(d.allowed for d in admitted) and len(admitted) == 8
    assert not refused.allowed
    assert counted(redis_url, f"{prefix}:u") == 8


async def test_given_local_first_limits_hit_together_then_local_until_one_nears_its_limit(
    upstash: UpstashEndpoint, redis_url: str
) -> None:
    clock = Clock()
    factory = UpstashClientFactory(upstash.url, upstash.token)  # one Redis: one script call
    users, prefix = local_first(upstash, 20, clock, factory=factory)
    workspaces, ws_prefix = local_first(upstash, 6, clock, factory=factory)

    decisions = [await users.hit_with("ada", [(workspaces, "ws")]) for _ in range(3)]
    # The first call asked Redis for both; the next two fit both local shares (the
    # workspace's is 3 of 6), so nothing more is written yet.
    assert all(d.allowed for pair in decisions for d in pair)
    assert counted(redis_url, f"{prefix}:ada") == 1
    assert counted(redis_url, f"{ws_prefix}:ws") == 1

    more = [await users.hit_with("ada", [(workspaces, "ws")]) for _ in range(4)]
    assert [[d.allowed for d in pair] for pair in more] == [[True, True]] * 3 + [[True, False]]
    assert counted(redis_url, f"{ws_prefix}:ws") == 6
    assert counted(redis_url, f"{prefix}:ada") == 6  # the refused request counted nowhere


async def test_given_redis_fails_on_a_sync_then_the_local_hits_are_sent_with_the_next(
    upstash: UpstashEndpoint, redis_url: str
) -> None:
    clock = Clock()
    prefix = f"rl-test:{uuid.uuid4().hex[:8]}"
    factory = UpstashClientFactory(upstash.url, upstash.token)
    limiter = UpstashRateLimiter(factory, limit=100, window_seconds=60, prefix=prefix,
                                 local_share=0.5, sync_seconds=0.2, clock=clock)  # fmt: skip
    for _ in range(4):
        await limiter.hit("u")  # 1 in Redis, 3 local
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        broken = UpstashClientFactory(
            f"http://127.0.0.1:{silent.getsockname()[1]}", "token", timeout_seconds=0.2
        )
        limiter._redis = broken  # the same limiter, its Redis gone silent
        clock.now += 0.3
        with pytest.raises(httpx.TimeoutException):
            await limiter.hit("u")
    finally:
        silent.close()
    limiter._redis = factory

    assert (await limiter.hit("u")).allowed
    assert counted(redis_url, f"{prefix}:u") == 5  # the three local hits and this one
