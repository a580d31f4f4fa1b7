"""The hot event feed on Upstash Redis: one capped stream per run or conversation.

An event is a stream entry whose id is `<seq>-0`, so `XREAD ... <after>-0` returns the
events after `after` in number order, and an append that arrives after a newer one is
refused by Redis (ids only grow): the feed never holds events out of order, at worst it
misses some, which readers notice as a gap. Readers block in `XREAD BLOCK` (the REST API
holds the request), on a client of their own so that waiting streams never queue the
requests of the rate limiter and the caches behind them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from guildstack.domain.runs import Event
from guildstack.observability import logger

if TYPE_CHECKING:
    from guildstack.adapters.upstash import UpstashClientFactory

# One round trip for a batch: each entry added unless its id is not above the last one's
# (a transaction that committed earlier but published later), then the key's time to live.
_PUBLISH = """
local key, cap, ttl = KEYS[1], ARGV[1], tonumber(ARGV[2])
local added = 0
for i = 3, #ARGV, 2 do
  local ok = redis.pcall('XADD', key, 'MAXLEN', '~', cap, ARGV[i], 'e', ARGV[i + 1])
  if type(ok) ~= 'table' then added = added + 1 end
end
redis.call('EXPIRE', key, ttl)
return added
"""
_PUBLISH_SHA = hashlib.sha1(_PUBLISH.encode()).hexdigest()  # noqa: S324 - Redis's script id

# Events a reader takes at once; more wait for its next read.
BATCH = 200
# Seconds a publish may take before it is given up (the events are in Postgres).
PUBLISH_TIMEOUT_SECONDS = 2.0
# A blocked read's HTTP request may outlast its BLOCK by this much before it is abandoned.
READ_GRACE_SECONDS = 2.0


class UpstashEventFeed:
    """Streams `<prefix>:<log>` of at most about `cap` entries, kept `ttl_seconds` after their
    last append (a finished run's feed expires; its events stay in Postgres)."""

    def __init__(
        self,
        writer: UpstashClientFactory,
        reader: UpstashClientFactory,
        *,
        prefix: str = "gs:ev",
        cap: int = 1000,
        ttl_seconds: int = 3600,
    ) -> None:
        self._writer = writer
        self._reader = reader
        self._prefix = prefix
        self._cap = cap
        self._ttl = ttl_seconds
        self._reachable = True

    def forget_connections(self) -> None:
        self._writer.forget_connections()
        self._reader.forget_connections()

    def _key(self, log: str) -> str:
        return f"{self._prefix}:{log}"

    async def publish(self, log: str, events: Sequence[Event]) -> None:
        if not events:
            return
        args = [str(self._cap), str(self._ttl)]
        for event in events:
            args += [f"{event.seq}-0", _encode(event)]
        client = self._writer.client()
        keys = [self._key(log)]

        async def run() -> Any:
            try:
                return await client.evalsha(_PUBLISH_SHA, keys, args)
            except Exception as exc:
                if "NOSCRIPT" not in str(exc):
                    raise
                return await client.eval(_PUBLISH, keys, args)

        try:
            await asyncio.wait_for(run(), PUBLISH_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - the events are committed; readers poll Postgres
            self._report(exc)
        else:
            self._report(None)

    async def wait(self, log: str, after: int, seconds: float) -> list[Event] | None:
        command: list[Any] = ["XREAD", "COUNT", str(BATCH)]
        if seconds > 0:  # BLOCK 0 would wait forever
            command += ["BLOCK", str(max(1, int(seconds * 1000)))]
        command += ["STREAMS", self._key(log), f"{after}-0"]
        try:
            reply: Any = await asyncio.wait_for(
                self._reader.client().execute(command), max(seconds, 0) + READ_GRACE_SECONDS
            )
        except Exception as exc:  # noqa: BLE001 - an unreachable feed means "read Postgres"
            self._report(exc)
            return None
        self._report(None)
        if not reply:
            return []
        events: list[Event] = []
        for entry_id, fields in reply[0][1]:
            if int(str(entry_id).split("-", 1)[0]) != after + len(events) + 1:
                break  # a gap: what follows must come from Postgres
            events.append(_decode(int(str(entry_id).split("-", 1)[0]), fields))
        return events or None

    def _report(self, failure: Exception | None) -> None:
        """Log when the feed stops answering, and when it answers again (not every read)."""
        if (failure is None) != self._reachable:
            self._reachable = failure is None
            if failure is None:
                logger.info("event feed answers again")
            else:
                logger.warning(
                    "event feed unreachable; streams read Postgres until it answers",
                    exc_info=failure,
                )


def _encode(event: Event) -> str:
    return json.dumps(
        {"type": event.type, "payload": dict(event.payload), "at": event.created_at.isoformat()},
        default=str,
    )


def _decode(seq: int, fields: Sequence[Any]) -> Event:
    values = dict(zip(fields[::2], fields[1::2], strict=True))
    body = json.loads(values["e"])
    return Event(seq, body["type"], body["payload"], datetime.fromisoformat(body["at"]))
