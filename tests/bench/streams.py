"""Event streams: Postgres transactions per connected stream client per minute, and
commit-to-client latency, with readers polling Postgres (no feed: the design before the
hot feed) and with the hot feed on Redis (behind the local Upstash REST bridge, in a
process of its own as Upstash is a server of its own); plus what the feed costs a writer's
transaction.

Readers follow conversations through `ConversationService.follow` as the Stream function
does (a 15 s heartbeat wait per read). Quiet clients: 20 readers, no writes, for 20 s. Busy
log: one writer appends an event every 20 ms to a conversation 5 readers follow; latency is
from just before the writer's commit to each reader's receipt. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import ExitStack, asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from pydantic import SecretStr

from guildstack.adapters.postgres.database import Connection, PostgresDatabase
from guildstack.bootstrap import Container, build
from guildstack.config import LOCAL_UPSTASH_TOKEN, Settings
from guildstack.devstack.redis import RedisServer
from guildstack.devstack.servers import free_port
from guildstack.domain.conversations import ConversationEvent
from guildstack.domain.identity import Principal
from guildstack.domain.vocabulary import ConversationEventType
from guildstack.observability import logger
from tests.bench.model_call import _workspace
from tests.bench.support import bench_database

REPO = Path(__file__).resolve().parents[2]
HEARTBEAT = 15.0
QUIET_CLIENTS, QUIET_SECONDS = 20, 20.0
BUSY_READERS, BUSY_EVENTS, BUSY_EVERY = 5, 100, 0.02
# Measured before the feed (polling Postgres, 50 ms backing off to 500 ms), for the record.
BEFORE = "polling Postgres"


class CountingDatabase(PostgresDatabase):
    """Counts member transactions (a reader's read is one: access check and events)."""

    transactions = 0

    @asynccontextmanager
    async def begin(
        self, claims: Mapping[str, Any] | None
    ) -> AsyncIterator[tuple[Connection, datetime]]:
        self.transactions += 1
        async with super().begin(claims) as opened:
            yield opened


async def _conversation(container: Container, me: Principal, workspace: UUID) -> UUID:
    conversation = await container.conversations.create(me, workspace, title="Bench")
    return conversation.id


async def quiet(container: Container, db: CountingDatabase, me: Principal, ws: UUID) -> float:
    """Postgres transactions per client per minute while nothing happens."""
    ids = [await _conversation(container, me, ws) for _ in range(QUIET_CLIENTS)]

    async def reader(conversation_id: UUID) -> None:
        cursor = container.conversations.follow(me, ws, conversation_id)
        while True:
            await cursor.next(HEARTBEAT)

    before = db.transactions
    tasks = [asyncio.create_task(reader(c)) for c in ids]
    await asyncio.sleep(QUIET_SECONDS)  # the measured window
    counted = db.transactions - before
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return counted / QUIET_CLIENTS / QUIET_SECONDS * 60


async def write(container: Container, ws: UUID, conversation_id: UUID, n: int) -> float:
    """One event in one system transaction; its ms (the feed's publish included)."""
    started = time.perf_counter()
    async with container.uow.system("bench") as tx:
        payload = {"n": n, "t": time.perf_counter()}
        event = ConversationEvent(ConversationEventType.AGENT_TYPING, payload)
        await tx.conversations.append(ws, conversation_id, [], [event])
        payload["t"] = time.perf_counter()  # just before the commit
    return (time.perf_counter() - started) * 1000


async def busy(container: Container, me: Principal, ws: UUID) -> tuple[list[float], list[float]]:
    """(commit-to-client latencies ms, writer transaction ms) for a log written every 20 ms.
    The writer's cost is taken with no reader in this process (in AWS the worker and the
    Stream function are apart): here readers would share its event loop."""
    conversation_id = await _conversation(container, me, ws)
    writes = [await write(container, ws, conversation_id, -n) for n in range(1, BUSY_EVENTS + 1)]
    latencies: list[float] = []

    async def reader() -> None:
        cursor = container.conversations.follow(me, ws, conversation_id, after=BUSY_EVENTS)
        got = 0
        while got < BUSY_EVENTS:
            for event in await cursor.next(HEARTBEAT):
                latencies.append((time.perf_counter() - event.payload["t"]) * 1000)
                got += 1

    readers = [asyncio.create_task(reader()) for _ in range(BUSY_READERS)]
    await asyncio.sleep(0.5)  # the readers' first (resume) reads are not measured
    for n in range(BUSY_EVENTS):
        await write(container, ws, conversation_id, n)
        await asyncio.sleep(BUSY_EVERY)  # the writer's pace
    await asyncio.wait_for(asyncio.gather(*readers), 60)
    return latencies, writes


async def run(url: str, upstash_url: str) -> dict[str, dict[str, Any]]:
    user, workspace = await _workspace(url)
    me = Principal(user, None, {"sub": str(user), "role": "authenticated"})
    results: dict[str, dict[str, Any]] = {}
    for mode, redis in ((BEFORE, None), ("hot feed on Redis", upstash_url)):
        db = CountingDatabase(url, max_size=10)
        settings = Settings(
            stage="test",
            database_url=SecretStr(url),
            upstash_redis_rest_url=redis,
            upstash_redis_rest_token=SecretStr(LOCAL_UPSTASH_TOKEN) if redis else None,
        )
        container = build(settings, database=db)
        try:
            per_minute = await quiet(container, db, me, workspace)
            latencies, writes = await busy(container, me, workspace)
        finally:
            await db.close()
        results[mode] = {"per_minute": per_minute, "latency": latencies, "writes": writes}
    return results


def _bridge_process(redis_url: str, stack: ExitStack) -> str:
    """The Upstash REST bridge under uvicorn in a child process; its URL once it answers."""
    port = free_port()
    serve = (
        "import sys, uvicorn\n"
        "from guildstack.devstack.upstash_bridge import create_bridge_app\n"
        "uvicorn.run(create_bridge_app(sys.argv[1], sys.argv[2]), host='127.0.0.1',"
        " port=int(sys.argv[3]), log_level='warning')"
    )
    child = subprocess.Popen(  # noqa: S603 - this interpreter, our own arguments
        [sys.executable, "-c", serve, redis_url, LOCAL_UPSTASH_TOKEN, str(port)]
    )
    stack.callback(child.wait, 10)
    stack.callback(child.terminate)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.post(url, json=["PING"], timeout=1)
            return url
        except httpx.TransportError:
            if time.monotonic() > deadline or child.poll() is not None:
                raise RuntimeError("the Upstash bridge did not start") from None
            time.sleep(0.05)  # a child process starting: nothing to wait on but its port


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1, help="(accepted for ./scripts/bench)")
    parser.parse_args(argv)
    logger.setLevel("WARNING")
    with ExitStack() as stack, bench_database() as url:
        redis = RedisServer(REPO / ".devstack" / "bench-redis")
        stack.callback(redis.stop)
        upstash_url = _bridge_process(redis.start(), stack)
        results = asyncio.run(run(url, upstash_url))
    print(
        f"## Event streams: {QUIET_CLIENTS} quiet clients for {QUIET_SECONDS:.0f} s; one log"
        f" written every {BUSY_EVERY * 1000:.0f} ms, followed by {BUSY_READERS} readers\n"
    )
    print(
        "| readers | Postgres transactions per client per minute (quiet)"
        " | commit-to-client p50 ms | p95 ms | writer transaction p50 ms |"
    )
    print("|---|---:|---:|---:|---:|")
    for mode, r in results.items():
        print(
            f"| {mode} | {r['per_minute']:.1f} | {statistics.median(r['latency']):.1f}"
            f" | {_p95(r['latency']):.1f} | {statistics.median(r['writes']):.2f} |"
        )
    print(
        "\nA reader's transaction is one access check and one read of the log. The Stream"
        " function adds one status read per 15 s heartbeat in both modes."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
