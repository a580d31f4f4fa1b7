"""The hot event feed on real Redis behind the Upstash REST bridge: events in number order,
gaps reported rather than papered over, late appends refused, a cap and a time to live,
blocking reads, and an unreachable feed that never raises."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from upstash_redis.asyncio import Redis as AsyncRedis

from guildstack.adapters.event_feed import UpstashEventFeed
from guildstack.adapters.upstash import UpstashClientFactory
from guildstack.domain.runs import Event
from guildstack.ports.event_feed import run_log
from tests.fixtures.redis import UpstashEndpoint

AT = datetime(2026, 12, 2, 18, 30, 1, 123456, tzinfo=UTC)


def feed_on(upstash: UpstashEndpoint, **options: int) -> tuple[UpstashEventFeed, str]:
    prefix = f"ev-test:{uuid.uuid4().hex[:8]}"
    factory = UpstashClientFactory(upstash.url, upstash.token)
    readers = UpstashClientFactory(upstash.url, upstash.token, timeout_seconds=None)
    return UpstashEventFeed(factory, readers, prefix=prefix, **options), prefix


def events(*numbers: int) -> list[Event]:
    return [Event(n, "step.token", {"step": "A", "text": f"t{n}", "n": n}, AT) for n in numbers]


async def test_given_published_events_then_a_reader_gets_those_after_its_place_as_they_were(
    upstash: UpstashEndpoint,
) -> None:
    feed, _ = feed_on(upstash)
    log = run_log(uuid.uuid4())
    await feed.publish(log, events(1, 2, 3))

    assert await feed.wait(log, 0, 0) == events(1, 2, 3)
    assert await feed.wait(log, 2, 0) == events(3)
    assert await feed.wait(log, 3, 0) == []


async def test_given_a_missing_event_then_the_reader_is_told_to_read_postgres(
    upstash: UpstashEndpoint,
) -> None:
    feed, _ = feed_on(upstash)
    log = run_log(uuid.uuid4())
    await feed.publish(log, events(1, 2))
    await feed.publish(log, events(5, 6))  # 3 and 4 never reached the feed

    assert await feed.wait(log, 0, 0) == events(1, 2), "what directly follows, no further"
    assert await feed.wait(log, 2, 0) is None
    assert await feed.wait(log, 4, 0) == events(5, 6)


async def test_given_a_late_publish_then_it_is_refused_and_the_order_holds(
    upstash: UpstashEndpoint,
) -> None:
    feed, _ = feed_on(upstash)
    log = run_log(uuid.uuid4())
    await feed.publish(log, events(1))
    await feed.publish(log, events(3))  # committed after 2, published before it
    await feed.publish(log, events(2))

    assert await feed.wait(log, 0, 0) == events(1)
    assert await feed.wait(log, 1, 0) is None
    assert await feed.wait(log, 2, 0) == events(3)


async def test_given_a_long_log_then_the_feed_keeps_its_newest_events_for_a_while(
    upstash: UpstashEndpoint,
) -> None:
    feed, prefix = feed_on(upstash, cap=50, ttl_seconds=120)
    log = run_log(uuid.uuid4())
    for start in range(1, 1000, 100):
        await feed.publish(log, events(*range(start, start + 100)))

    redis = AsyncRedis(url=upstash.url, token=upstash.token, allow_telemetry=False)
    key = f"{prefix}:{log}"
    assert 50 <= await redis.xlen(key) < 300, "trimmed to about the cap"
    assert 110 <= await redis.ttl(key) <= 120
    assert await feed.wait(log, 0, 0) is None, "the oldest are gone: Postgres has them"
    assert await feed.wait(log, 997, 0) == events(998, 999, 1000)


async def test_given_a_waiting_reader_then_a_publish_wakes_it(upstash: UpstashEndpoint) -> None:
    """The read blocks for up to 20 s; the publish made while it waits (or just before it
    reaches Redis: XREAD reads by number, so either way) ends it well before that."""
    feed, _ = feed_on(upstash)
    log = run_log(uuid.uuid4())
    await feed.publish(log, events(1))
    waiting = asyncio.create_task(feed.wait(log, 1, 20))

    await feed.publish(log, events(2, 3))

    assert await asyncio.wait_for(waiting, 10) == events(2, 3)


async def test_given_nothing_new_then_a_wait_ends_empty_after_its_time(
    upstash: UpstashEndpoint,
) -> None:
    feed, _ = feed_on(upstash)
    log = run_log(uuid.uuid4())

    assert await feed.wait(log, 0, 0.2) == []


async def test_given_an_unreachable_feed_then_publish_and_wait_do_not_raise() -> None:
    gone = UpstashClientFactory("http://127.0.0.1:9", "token")
    feed = UpstashEventFeed(gone, gone)
    log = run_log(uuid.uuid4())

    await feed.publish(log, events(1))
    assert await feed.wait(log, 0, 1) is None
