"""A reader's place in an event log (a run's, a conversation's), and how it waits for more.

Postgres is the log; the hot feed (see `ports.event_feed`) is a copy of its newest events.
The cursor reads Postgres to resume, to fill a gap the feed reports, and whenever its last
read is `recheck_seconds` old (each read also checks the reader's access again, and catches
any event the feed lost); between those it waits on the feed, which hands over events as
their transaction commits. Without a feed, or while it does not answer, it polls Postgres,
backing off, as `Poller` does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

from guildstack.domain.authorization import Action
from guildstack.domain.principal import Principal
from guildstack.domain.runs import Event
from guildstack.ports.event_feed import EventFeed
from guildstack.ports.uow import Tx, UnitOfWork
from guildstack.services.access import authorized
from guildstack.services.polling import Poller

# How old a cursor's last Postgres read may grow while it waits on the feed: what a lost
# feed write can delay an event by, and how long a reader who lost access may still see
# events that come through the feed.
FEED_RECHECK_SECONDS = 5.0

Fetch = Callable[[int], Awaitable[list[Event]]]


class EventCursor:
    """`await cursor.next(seconds)`: the events after the last one it returned, waiting up
    to `seconds` for the first; [] when none came. `after` is the last event's number."""

    def __init__(
        self,
        fetch: Fetch,
        log: str,
        after: int,
        *,
        feed: EventFeed | None,
        poller: Poller,
        limit: int = 200,
        recheck_seconds: float = FEED_RECHECK_SECONDS,
    ) -> None:
        self.after = after
        self._fetch = fetch
        self._log = log
        self._feed = feed
        self._poller = poller
        self._limit = limit
        self._recheck = recheck_seconds
        self._read_at: float | None = None

    async def next(self, seconds: float) -> list[Event]:
        if self._feed is None:
            return self._took(await self._poller.until(self._read, bool, seconds))
        clock = self._poller.clock
        deadline = clock() + max(seconds, 0)
        delay = self._poller.first
        while True:
            if self._read_at is None or clock() - self._read_at >= self._recheck:
                items = await self._read()
                if items or clock() >= deadline:
                    return self._took(items)
            read_at = self._read_at if self._read_at is not None else clock()
            wait = min(deadline, read_at + self._recheck) - clock()
            hot = await self._feed.wait(self._log, self.after, max(wait, 0))
            if hot:
                return self._took(hot[: self._limit])
            if hot is None:
                # A gap (the feed holds later events only), or the feed does not answer:
                # Postgres has what comes next; if not yet, poll it as without a feed.
                items = await self._read()
                if items or clock() >= deadline:
                    return self._took(items)
                await self._poller.sleep(min(delay, max(deadline - clock(), 0)))
                delay = min(delay * 2, self._poller.longest)
            elif clock() >= deadline:
                return []

    async def _read(self) -> list[Event]:
        items = await self._fetch(self.after)
        self._read_at = self._poller.clock()
        return items

    def _took(self, items: list[Event]) -> list[Event]:
        if items:
            self.after = items[-1].seq
        return items


@dataclass(frozen=True)
class Following:
    """What a service's cursors share: each read is a member transaction that checks the
    reader may view the workspace, then reads the log."""

    uow: UnitOfWork
    feed: EventFeed | None
    poller: Poller
    recheck_seconds: float = FEED_RECHECK_SECONDS

    def cursor(
        self,
        actor: Principal,
        workspace_id: UUID,
        log: str,
        read: Callable[[Tx, int], Awaitable[list[Event]]],
        *,
        after: int,
        limit: int,
    ) -> EventCursor:
        async def fetch(since: int) -> list[Event]:
            async with self.uow(actor) as tx:
                await authorized(tx, workspace_id, Action.VIEW)
                return await read(tx, since)

        return EventCursor(
            fetch,
            log,
            after,
            feed=self.feed,
            poller=self.poller,
            limit=limit,
            recheck_seconds=self.recheck_seconds,
        )
