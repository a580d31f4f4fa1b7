"""The hot event feed: a copy of the newest events of each run and conversation, for readers
waiting on a stream.

Postgres holds every event and numbers it (`seq`) in the transaction that writes it. After
that transaction commits, the events are also appended to the feed, under the log's name
(`run:<id>`, `conversation:<id>`), in number order and capped. A reader that has seen
event n waits on the feed for n+1, n+2, ...; it reads Postgres to resume, to fill a gap
(a write the feed lost, or trimmed), and at least every few seconds while waiting, so a
lost write delays an event by at most that interval and nothing depends on the feed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from guildstack.domain.runs import Event


def run_log(run_id: UUID) -> str:
    return f"run:{run_id}"


def conversation_log(conversation_id: UUID) -> str:
    return f"conversation:{conversation_id}"


class EventFeed(Protocol):
    async def publish(self, log: str, events: Sequence[Event]) -> None:
        """Append committed events (ascending numbers) to `log`'s feed; events the feed
        already holds or that come after a newer one are dropped (readers fill the gap from
        Postgres). Never raises: an unreachable feed is logged (when it stops and starts
        answering, not on every call) and readers fall back to Postgres."""
        ...

    async def wait(self, log: str, after: int, seconds: float) -> list[Event] | None:
        """The events after `after` that directly follow it (`after`+1, `after`+2, ...),
        waiting up to `seconds` for the first; [] when none came in time. None when the
        feed cannot tell: it holds later events but not the next one (a gap), or it is
        unreachable. Never raises."""
        ...
