"""Upstash Redis: the rate limiter and the health probe, clients built on first use."""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from guildstack.ports.ratelimit import RateDecision, RateLimiter

if TYPE_CHECKING:
    from upstash_redis.asyncio import Redis


# How long a request-path call (a limit, a cache read, a ticket) may wait for Upstash:
# the SDK itself waits forever, so an unreachable-but-silent Redis would hold every request.
REQUEST_TIMEOUT_SECONDS = 1.0


class UpstashClientFactory:
    """One async Upstash client per container, created when first needed. Its HTTP calls
    give up after `timeout_seconds` (None: never, for blocking reads that bound themselves)."""

    def __init__(
        self, url: str, token: str, *, timeout_seconds: float | None = REQUEST_TIMEOUT_SECONDS
    ) -> None:
        self._url = url
        self._token = token
        self._timeout = timeout_seconds
        self._client: Redis | None = None

    def forget_connections(self) -> None:
        """Drop the client (made again on first use)."""
        self._client = None

    def client(self) -> Redis:
        if self._client is None:
            from upstash_redis.asyncio import Redis

            # One quick retry: on the request path a slow retry costs more than a miss.
            self._client = Redis(
                url=self._url,
                token=self._token,
                rest_retries=1,
                rest_retry_interval=0.05,
                allow_telemetry=False,
            )
            if self._timeout is not None:
                import httpx

                # The SDK's own HTTP client has no timeout; give it one (nothing is open yet).
                self._client._http._client = httpx.AsyncClient(timeout=self._timeout)
        return self._client


# An exact sliding log: the request times of the last window in a sorted set. Unlike the
# two-window approximation, a burst that straddles a window boundary cannot slip through.
# ARGV[5] hits admitted earlier by this container alone (see `UpstashRateLimiter`) are
# written first, whatever the answer; `ticket:1..n` name them.
_SLIDING_LOG = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
for i = 1, tonumber(ARGV[5]) do redis.call('ZADD', key, now, ARGV[4] .. ':' .. i) end
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, window)
  return {1, limit - count - 1, 0}
end
redis.call('PEXPIRE', key, window)
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window - now}
"""
_SLIDING_LOG_SHA = hashlib.sha1(_SLIDING_LOG.encode()).hexdigest()  # noqa: S324 - Redis's script id

# The same for several logs at once, all or none: {0, 0, remaining...} when every log has
# room (the request is counted in each), else {i, wait_ms} for the first full log i. Per
# log: window, limit and the earlier hits to write first.
_SLIDING_LOGS = """
local now, ticket = tonumber(ARGV[1]), ARGV[2]
for i = 1, #KEYS do
  local window = tonumber(ARGV[3 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  for j = 1, tonumber(ARGV[3 * i + 2]) do
    redis.call('ZADD', KEYS[i], now, ticket .. ':' .. j)
  end
  redis.call('PEXPIRE', KEYS[i], window)
end
for i = 1, #KEYS do
  local window, limit = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  if redis.call('ZCARD', KEYS[i]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    return {i, tonumber(oldest[2]) + window - now}
  end
end
local reply = {0, 0}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[3 * i + 1])
  redis.call('ZADD', KEYS[i], now, ticket)
  reply[#reply + 1] = limit - redis.call('ZCARD', KEYS[i])
end
return reply
"""
_SLIDING_LOGS_SHA = hashlib.sha1(_SLIDING_LOGS.encode()).hexdigest()  # noqa: S324

# Local-first limits (see `UpstashRateLimiter`): the container's view of a count is used
# while it is at most this old.
LOCAL_SYNC_SECONDS = 0.2
# Keys whose count a container remembers (the least recently used are forgotten).
LOCAL_KEYS = 10_000


@dataclass
class _Tally:
    """A key's count as Redis last said (`known`, at `synced`) and the hits admitted here
    since, not yet written (`pending`)."""

    known: int
    synced: float
    pending: int = 0


class UpstashRateLimiter:
    """At most `limit` requests per key in any `window_seconds` (one script call per hit).

    With `local_share`, the limit is local-first: while this container's view of a key's
    count (what Redis said at the last sync, plus the hits it admitted since) is under
    `local_share` of the limit and no older than `sync_seconds`, a hit is admitted here
    without a round trip; otherwise it goes to Redis with those local hits written first,
    which is also the sync. Nothing is lost (every admitted hit is written by the next
    sync) and above the share every hit is exact; what other containers admitted since
    their last sync (at most `sync_seconds` of their traffic) is what a count can miss.
    Without `local_share` every hit is exact.
    """

    def __init__(
        self,
        redis: UpstashClientFactory,
        *,
        limit: int,
        window_seconds: int,
        prefix: str,
        local_share: float | None = None,
        sync_seconds: float = LOCAL_SYNC_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._limit = limit
        self._window_ms = window_seconds * 1000
        self._prefix = prefix
        self._local = int(limit * local_share) if local_share else 0
        self._sync_seconds = sync_seconds
        self._clock = clock
        self._tallies: OrderedDict[str, _Tally] = OrderedDict()

    def _local_view(self, key: str) -> bool:
        """Whether a hit on `key` would be admitted here (nothing counted)."""
        tally = self._tallies.get(key) if self._local else None
        return (
            tally is not None
            and self._clock() - tally.synced <= self._sync_seconds
            and tally.known + tally.pending + 1 <= self._local
        )

    def _admitted_here(self, key: str) -> RateDecision | None:
        """The hit admitted without Redis, when the local view allows it (counted here)."""
        if not self._local_view(key):
            return None
        tally = self._tallies[key]
        tally.pending += 1
        self._tallies.move_to_end(key)
        return RateDecision(True, self._limit, self._limit - tally.known - tally.pending, 0)

    def _take_pending(self, key: str) -> int:
        tally = self._tallies.get(key)
        if tally is None:
            return 0
        pending, tally.pending = tally.pending, 0
        return pending

    def _synced(self, key: str, known: int, synced: float) -> None:
        """Redis's count for `key` as of `synced` (only remembered when limits are local)."""
        if not self._local:
            return
        self._tallies[key] = _Tally(known, synced, self._tallies.get(key, _Tally(0, 0)).pending)
        self._tallies.move_to_end(key)
        while len(self._tallies) > LOCAL_KEYS:
            self._tallies.popitem(last=False)

    def _unsent(self, key: str, pending: int) -> None:
        """Local hits whose write failed: sent with the next sync."""
        if pending and (tally := self._tallies.get(key)) is not None:
            tally.pending += pending

    async def hit(self, key: str) -> RateDecision:
        if (local := self._admitted_here(key)) is not None:
            return local
        keys = [f"{self._prefix}:{key}"]
        ticket = uuid.uuid4().hex
        pending, started = self._take_pending(key), self._clock()
        args = [str(int(time.time() * 1000)), str(self._window_ms), str(self._limit), ticket,
                str(pending)]  # fmt: skip
        try:
            reply = await self._eval(_SLIDING_LOG_SHA, _SLIDING_LOG, keys, args)
        except BaseException:
            self._unsent(key, pending)
            raise
        allowed, remaining, wait_ms = (int(part) for part in reply)
        self._synced(key, self._limit - remaining if allowed else self._limit, started)
        return RateDecision(
            allowed=bool(allowed),
            limit=self._limit,
            remaining=remaining,
            retry_after_seconds=0 if allowed else max(1, math.ceil(wait_ms / 1000)),
            ticket=ticket if allowed else "",
        )

    async def hit_with(
        self, key: str, others: Sequence[tuple[RateLimiter, str]]
    ) -> list[RateDecision]:
        """One script call for all the logs when every limiter is one of these on the same
        Redis (none at all when each admits the hit locally); otherwise each in turn (and
        released again unless all allow)."""
        pairs: list[tuple[RateLimiter, str]] = [(self, key), *others]
        limiters = [limiter for limiter, _ in pairs]
        if not all(
            isinstance(limiter, UpstashRateLimiter) and limiter._redis is self._redis
            for limiter in limiters
        ):
            return await _one_by_one(pairs)
        own = [limiter for limiter in limiters if isinstance(limiter, UpstashRateLimiter)]
        keys = [k for _, k in pairs]
        if all(limiter._local_view(k) for limiter, k in zip(own, keys, strict=True)):
            admitted = [limiter._admitted_here(k) for limiter, k in zip(own, keys, strict=True)]
            return [decision for decision in admitted if decision is not None]
        ticket = uuid.uuid4().hex
        pending = [limiter._take_pending(k) for limiter, k in zip(own, keys, strict=True)]
        started = self._clock()
        args = [str(int(time.time() * 1000)), ticket]
        for limiter, sent in zip(own, pending, strict=True):
            args += [str(limiter._window_ms), str(limiter._limit), str(sent)]
        redis_keys = [f"{limiter._prefix}:{k}" for limiter, k in zip(own, keys, strict=True)]
        try:
            raw = await self._eval(_SLIDING_LOGS_SHA, _SLIDING_LOGS, redis_keys, args)
        except BaseException:
            for limiter, k, sent in zip(own, keys, pending, strict=True):
                limiter._unsent(k, sent)
            raise
        reply = [int(part) for part in raw]
        refused, wait_ms = reply[0], reply[1]
        if refused:
            wait = max(1, math.ceil(wait_ms / 1000))
            for index, (limiter, k) in enumerate(zip(own, keys, strict=True)):
                # A full log is known to be full; the others' counts are not known.
                if index + 1 == refused:
                    limiter._synced(k, limiter._limit, started)
            return [
                RateDecision(i + 1 != refused, limiter._limit, 0, wait if i + 1 == refused else 0)
                for i, limiter in enumerate(own)
            ]
        for limiter, k, remaining in zip(own, keys, reply[2:], strict=True):
            limiter._synced(k, limiter._limit - remaining, started)
        return [
            RateDecision(True, limiter._limit, remaining, 0, ticket)
            for limiter, remaining in zip(own, reply[2:], strict=True)
        ]

    async def _eval(self, sha: str, script: str, keys: list[str], args: list[str]) -> Any:
        client = self._redis.client()
        try:
            return await client.evalsha(sha, keys, args)
        except Exception as exc:
            if "NOSCRIPT" not in str(exc):
                raise
            return await client.eval(script, keys, args)

    async def release(self, key: str, ticket: str) -> None:
        """Un-count a hit. A hit admitted here (no ticket) is not given back: until the
        next sync it counts, which errs on the safe side."""
        if ticket:
            await self._redis.client().zrem(f"{self._prefix}:{key}", ticket)


async def _one_by_one(pairs: Sequence[tuple[RateLimiter, str]]) -> list[RateDecision]:
    decisions = []
    for limiter, key in pairs:
        decision = await limiter.hit(key)
        decisions.append(decision)
        if not decision.allowed:
            for (counted, k), d in zip(pairs, decisions, strict=False):
                if d.allowed:
                    await counted.release(k, d.ticket)
            break
    return decisions


class UpstashProbe:
    name = "redis"
    critical = False

    def __init__(self, redis: UpstashClientFactory) -> None:
        self._redis = redis

    async def check(self) -> bool:
        try:
            return bool(await self._redis.client().ping())
        except Exception:  # noqa: BLE001 - a probe reports, it never raises
            return False


# Recent searches per workspace, counted for the warm-up: kept a day, the top few hundred.
FREQUENT_QUERIES_SECONDS = 24 * 3600
FREQUENT_QUERIES_KEPT = 300


class UpstashSearchCache:
    """Memory search results in Redis, invalidated by per-scope generation counters."""

    def __init__(self, redis: UpstashClientFactory, *, prefix: str = "gs:mem") -> None:
        self._redis = redis
        self._prefix = prefix

    def _generation_keys(self, workspace_id: object, user_id: object) -> tuple[str, str]:
        return f"{self._prefix}:gen:{workspace_id}", f"{self._prefix}:gen:{workspace_id}:{user_id}"

    async def generations(self, workspace_id: object, user_id: object) -> tuple[int, int]:
        shared, own = await self._redis.client().mget(*self._generation_keys(workspace_id, user_id))
        return int(shared or 0), int(own or 0)

    async def get(self, key: str) -> str | None:
        value = await self._redis.client().get(f"{self._prefix}:q:{key}")
        return str(value) if value is not None else None

    async def put(self, key: str, value: str, ttl_seconds: int) -> None:
        await self._redis.client().set(f"{self._prefix}:q:{key}", value, ex=ttl_seconds)

    async def bump(self, workspace_id: object, user_id: object | None) -> None:
        shared, own = self._generation_keys(workspace_id, user_id)
        await self._redis.client().incr(own if user_id is not None else shared)

    async def count_query(self, workspace_id: object, entry: str) -> None:
        """One round trip: count it, keep the set a day, drop all but the top entries."""
        key = f"{self._prefix}:freq:{workspace_id}"
        pipe = self._redis.client().pipeline()
        pipe.zincrby(key, 1, entry)
        pipe.expire(key, FREQUENT_QUERIES_SECONDS)
        pipe.zremrangebyrank(key, 0, -(FREQUENT_QUERIES_KEPT + 1))
        await pipe.exec()

    async def frequent_queries(self, workspace_id: object, limit: int) -> list[str]:
        found = await self._redis.client().zrange(
            f"{self._prefix}:freq:{workspace_id}", 0, limit - 1, rev=True
        )
        return [str(entry) for entry in found]


class UpstashCache:
    """Typed cache entries `<prefix>:<type>:<workspace>:<generation>:<key>`; a write bumps
    the type's generation in the workspace (`<prefix>:gen:<type>:<workspace>`), so old
    entries are never read again and expire by their TTL."""

    def __init__(
        self, redis: UpstashClientFactory, *, prefix: str = "gs:c", max_remembered: int = 10_000
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        # The generation this container last saw per (type, workspace): a lookup asks for it
        # and the entry under it at once, and asks again only when it has moved.
        self._seen: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._max_remembered = max_remembered

    def _generation_key(self, kind: object, workspace_id: object) -> str:
        return f"{self._prefix}:gen:{kind}:{workspace_id}"

    def _entry_key(self, kind: object, workspace_id: object, generation: int, key: str) -> str:
        return f"{self._prefix}:{kind}:{workspace_id}:{generation}:{key}"

    async def generation(self, kind: object, workspace_id: object) -> int:
        value = await self._redis.client().get(self._generation_key(kind, workspace_id))
        return int(value or 0)

    async def get(
        self, kind: object, workspace_id: object, generation: int, key: str
    ) -> str | None:
        entry = self._entry_key(kind, workspace_id, generation, key)
        value = await self._redis.client().get(entry)
        return str(value) if value is not None else None

    async def lookup(self, kind: object, workspace_id: object, key: str) -> tuple[int, str | None]:
        """One MGET of the generation and the entry under the generation last seen here;
        a second read only when the generation moved since (a write invalidated)."""
        seen_key = (str(kind), str(workspace_id))
        guess = self._seen.get(seen_key, 0)
        generation_key = self._generation_key(kind, workspace_id)
        current, value = await self._redis.client().mget(
            generation_key, self._entry_key(kind, workspace_id, guess, key)
        )
        generation = int(current or 0)
        if generation != guess:
            value = await self.get(kind, workspace_id, generation, key)
        self._seen[seen_key] = generation
        self._seen.move_to_end(seen_key)
        while len(self._seen) > self._max_remembered:
            self._seen.popitem(last=False)
        return generation, str(value) if value is not None else None

    async def put(
        self,
        kind: object,
        workspace_id: object,
        generation: int,
        key: str,
        value: str,
        ttl_seconds: int,
    ) -> None:
        entry = self._entry_key(kind, workspace_id, generation, key)
        await self._redis.client().set(entry, value, ex=ttl_seconds)

    async def invalidate(self, kind: object, workspace_id: object) -> None:
        await self._redis.client().incr(self._generation_key(kind, workspace_id))
