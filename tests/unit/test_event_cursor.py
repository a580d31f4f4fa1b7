"""The event cursor: Postgres to resume, to fill a gap and every few seconds; the hot feed in
between; polling Postgres as before when there is no feed or it does not answer. A fake log,
feed and clock: no I/O, no real waiting."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from guildstack.domain.errors import Forbidden
from guildstack.domain.runs import Event
from guildstack.services.event_cursor import EventCursor
from guildstack.services.polling import Poller

AT = datetime(2026, 12, 2, tzinfo=UTC)
LOG = "run:r1"


def event(n: int) -> Event:
    return Event(n, "step.token", {"n": n}, AT)


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Log:
    """Postgres: the committed events; `reads` counts transactions."""

    clock: Clock
    committed: list[Event] = field(default_factory=list)
    reads: list[float] = field(default_factory=list)
    refuse: bool = False

    async def fetch(self, after: int) -> list[Event]:
        self.reads.append(self.clock.now)
        if self.refuse:
            raise Forbidden("You are not a member of this workspace.")
        return [e for e in self.committed if e.seq > after][:200]


@dataclass
class Feed:
    """Redis: what was published; a read with nothing new waits its whole time."""

    clock: Clock
    held: list[Event] = field(default_factory=list)
    down: bool = False
    waits: list[float] = field(default_factory=list)
    # Appended to the log and the feed when a wait starts (an event that commits meanwhile).
    arriving: list[Event] = field(default_factory=list)
    log: Log | None = None

    async def publish(self, log: str, events: Sequence[Event]) -> None:
        self.held.extend(events)

    async def wait(self, log: str, after: int, seconds: float) -> list[Event] | None:
        self.waits.append(seconds)
        if self.arriving:
            arrived, self.arriving = self.arriving, []
            self.held.extend(arrived)
            if self.log is not None:
                self.log.committed.extend(arrived)
        if self.down:
            return None
        later = sorted((e for e in self.held if e.seq > after), key=lambda e: e.seq)
        if not later:
            self.clock.now += seconds
            return []
        run: list[Event] = []
        for e in later:
            if e.seq != after + len(run) + 1:
                break
            run.append(e)
        return run or None


def rig(
    *, feed: bool = True, recheck: float = 5.0, limit: int = 200
) -> tuple[EventCursor, Log, Feed, Clock]:
    clock = Clock()
    log = Log(clock)
    hot = Feed(clock, log=log)
    cursor = EventCursor(
        log.fetch,
        LOG,
        0,
        feed=hot if feed else None,
        poller=Poller(clock.sleep, clock, 0.05, 0.5),
        limit=limit,
        recheck_seconds=recheck,
    )
    return cursor, log, hot, clock


async def test_given_a_new_reader_then_it_resumes_from_postgres() -> None:
    cursor, log, hot, _ = rig()
    log.committed = [event(1), event(2)]

    assert await cursor.next(15) == [event(1), event(2)]
    assert cursor.after == 2
    assert len(log.reads) == 1
    assert hot.waits == []


async def test_given_events_through_the_feed_then_postgres_is_not_read_again() -> None:
    cursor, log, hot, _ = rig()
    log.committed = [event(1)]
    await cursor.next(15)

    hot.arriving = [event(2), event(3)]
    assert await cursor.next(15) == [event(2), event(3)]
    hot.arriving = [event(4)]
    assert await cursor.next(15) == [event(4)]

    assert len(log.reads) == 1, "only the resume read Postgres"
    assert cursor.after == 4


async def test_given_a_write_the_feed_lost_then_the_recheck_finds_it_in_time() -> None:
    cursor, log, hot, clock = rig(recheck=5.0)
    assert await cursor.next(15) == []  # nothing yet: the feed, with Postgres every 5 s
    assert log.reads == [100.0, 105.0, 110.0]
    await cursor.next(0)  # (a heartbeat's look: Postgres, as its last read is 5 s old)
    hot.waits.clear()
    started = clock.now
    log.committed = [event(1)]  # committed, never published

    assert await cursor.next(15) == [event(1)]
    assert clock.now - started <= 5.0, "no later than the recheck"
    assert hot.waits == [pytest.approx(5.0)]


async def test_given_a_gap_in_the_feed_then_postgres_fills_it() -> None:
    cursor, log, hot, _ = rig()
    await cursor.next(0)
    log.committed = [event(1), event(2), event(3)]
    hot.held = [event(2), event(3)]  # 1 was published late and refused

    assert await cursor.next(15) == [event(1), event(2), event(3)]
    assert len(log.reads) == 2


async def test_given_a_busy_feed_then_postgres_is_still_read_every_recheck() -> None:
    cursor, log, hot, clock = rig(recheck=5.0)
    await cursor.next(0)
    for n in range(1, 40):
        hot.arriving = [event(n)]
        clock.now += 0.5  # an event every half second
        assert await cursor.next(15) == [event(n)]

    # 19.5 s of events: the resume, then a read at least every 5 s.
    assert len(log.reads) in (4, 5)
    assert all(b - a <= 5.5 for a, b in zip(log.reads, log.reads[1:], strict=False))


async def test_given_a_reader_who_lost_access_then_the_next_read_refuses_it() -> None:
    cursor, log, hot, clock = rig(recheck=5.0)
    await cursor.next(0)
    log.refuse = True
    hot.arriving = [event(1)]
    assert await cursor.next(15) == [event(1)], "within the recheck the feed still serves"

    clock.now += 5.0
    hot.arriving = [event(2)]
    with pytest.raises(Forbidden):
        await cursor.next(15)


async def test_given_the_feed_down_then_the_reader_polls_postgres_backing_off() -> None:
    cursor, log, hot, clock = rig()
    hot.down = True
    await cursor.next(0)
    started = clock.now

    assert await cursor.next(3) == []

    assert clock.now - started == pytest.approx(3.0)
    gaps = [b - a for a, b in zip(log.reads[1:], log.reads[2:], strict=False)]
    assert gaps[:4] == pytest.approx([0.05, 0.1, 0.2, 0.4])
    assert max(gaps) <= 0.5
    log.committed = [event(1)]
    assert await cursor.next(3) == [event(1)]


async def test_given_no_feed_then_the_reader_polls_as_before() -> None:
    cursor, log, _, clock = rig(feed=False)
    assert await cursor.next(2) == []
    assert len(log.reads) > 5
    log.committed = [event(1)]
    assert await cursor.next(2) == [event(1)]


async def test_given_a_page_limit_then_the_feed_hands_over_no_more() -> None:
    cursor, _, hot, _ = rig(limit=2)
    await cursor.next(0)
    hot.arriving = [event(1), event(2), event(3)]

    assert await cursor.next(15) == [event(1), event(2)]
    assert await cursor.next(15) == [event(3)]


async def test_given_no_wait_then_one_look_and_back() -> None:
    cursor, log, hot, clock = rig()
    await cursor.next(0)
    started = clock.now

    assert await cursor.next(0) == []
    assert clock.now == started
    assert hot.waits == [0]
