"""Warm vs cold: what the hourly warm-up fills and the response cache — the workspace's
agent list (`GET /agents`' read), this month's usage summary by agent (`GET /usage`: 30,000
calls on closed days, 1,000 today), the company codex, a memory search, and a deterministic
model call — each with the cache cold (a miss: the database or the provider, then a store)
and warm (a hit), on the embedded PostgreSQL and a local Redis behind the Upstash REST
bridge. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path

import psycopg
from pydantic import SecretStr

from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.bootstrap import build
from guildstack.config import LOCAL_UPSTASH_TOKEN, Settings
from guildstack.devstack.redis import RedisServer
from guildstack.devstack.servers import ServerThread
from guildstack.devstack.upstash_bridge import create_bridge_app
from guildstack.domain.cache import CacheType
from guildstack.domain.identity import Principal
from guildstack.domain.memory import Collection, MemoryScope
from guildstack.domain.models import CallContext, ChatMessage, ModelRequest
from guildstack.domain.onboarding import ONBOARDING_STEPS
from guildstack.domain.vocabulary import GroupBy
from guildstack.observability import logger
from tests.bench.model_call import _workspace
from tests.bench.support import bench_database

REPO = Path(__file__).resolve().parents[2]


async def paired(
    cold: Callable[[], Awaitable[object]],
    warm: Callable[[], Awaitable[object]],
    runs: int,
    before: Callable[[], Awaitable[object]] | None = None,
) -> tuple[list[float], list[float]]:
    """A cold call then a warm one, `runs` times: a busy machine slows both alike."""
    colds, warms = [], []
    for n in range(runs + 5):
        if before is not None:
            await before()  # not measured: makes the next call a miss
        samples = []
        for call in (cold, warm):
            started = time.perf_counter()
            await call()
            samples.append((time.perf_counter() - started) * 1000)
        if n >= 5:  # the first calls warm the pools
            colds.append(samples[0])
            warms.append(samples[1])
    return colds, warms


def _request(text: str) -> ModelRequest:
    return ModelRequest(
        system="You are the core assistant.",
        messages=(ChatMessage("user", text),),
        temperature=0,
        max_tokens=256,
    )


async def _plant(url: str, user: uuid.UUID, workspace: uuid.UUID) -> None:
    """Usage on the closed days of this month and today, and a completed onboarding."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            """
            insert into public.usage (workspace_id, user_id, agent_code, provider, model,
                input_tokens, output_tokens, cost_usd, latency_ms, attempts, status, created_at)
            select %(ws)s, %(user)s, (array['seo_agent','design_agent','nicole_core'])[1 + i %% 3],
                'offline', 'offline', 100, 200, 0.001, 50, 1, 'succeeded',
                case when i <= 30000
                     then greatest(date_trunc('month', now()), date_trunc('day', now())
                          - interval '1 day') + (i %% 80000) * interval '1 second'
                     else now() - (i %% 3000) * interval '1 second' end
            from generate_series(1, 31000) i
            """,
            {"ws": workspace, "user": user},
        )
        cur = await conn.execute(
            "insert into public.runs (workspace_id, created_by, kind, title, input, status)"
            " values (%s, %s, 'onboarding', 'Onboarding', 'Acme', 'succeeded') returning id",
            (workspace, user),
        )
        row = await cur.fetchone()
        assert row is not None
        for position, spec in enumerate(ONBOARDING_STEPS):
            await conn.execute(
                "insert into public.steps (run_id, key, workspace_id, position, agent_code,"
                " status, output) values (%s, %s, %s, %s, %s, 'succeeded', %s)",
                (row[0], spec.key, workspace, position, spec.agent,
                 json.dumps({"summary": f"{spec.title} of Acme.", "findings": []})),
            )  # fmt: skip


async def run(url: str, upstash_url: str, runs: int) -> list[tuple[str, list[float]]]:
    user, workspace = await _workspace(url)
    await _plant(url, user, workspace)
    database = PostgresDatabase(url, max_size=4)
    settings = Settings(
        stage="test",
        database_url=SecretStr(url),
        upstash_redis_rest_url=upstash_url,
        upstash_redis_rest_token=SecretStr(LOCAL_UPSTASH_TOKEN),
    )
    container = build(settings, database=database)
    cache = container.cache
    assert cache is not None
    me = Principal(user, None, {"sub": str(user), "role": "authenticated"})
    context = CallContext(workspace_id=workspace, user_id=user, agent_code="nicole_core")
    agents = container.agents

    async def invalidate() -> None:
        await cache.invalidate(CacheType.AGENT_CATALOG, workspace)

    def listed() -> Awaitable[object]:
        return agents.list(me, workspace)

    def same() -> Awaitable[object]:
        return container.model.complete(_request("The same question"), context)

    def fresh() -> Awaitable[object]:
        return container.model.complete(_request(f"Question {uuid.uuid4()}"), context)

    def usage() -> Awaitable[object]:
        return container.usage.report(me, workspace, None, None, GroupBy.AGENT)

    async def forget(kind: CacheType) -> None:
        await cache.invalidate(kind, workspace)

    async def codex() -> object:
        async with container.uow(me) as tx:
            return await container.codex.text(tx, workspace)

    memory = container.memory
    search_cache = container.search_cache
    assert search_cache is not None
    for n in range(200):
        await memory.remember(
            me,
            workspace,
            content=f"Fact {n}: the launch plan item {n}.",
            collection=Collection.BUSINESS,
            scope=MemoryScope.WORKSPACE,
        )

    def search() -> Awaitable[object]:
        return memory.search(me, workspace, "launch plan", count=False)

    async def stale_searches() -> None:
        await search_cache.bump(workspace, None)

    try:
        cold_list, warm_list = await paired(listed, listed, runs, before=invalidate)
        cold_usage, warm_usage = await paired(
            usage, usage, runs, before=lambda: forget(CacheType.USAGE_SUMMARY)
        )
        cold_codex, warm_codex = await paired(
            codex, codex, runs, before=lambda: forget(CacheType.CODEX)
        )
        cold_search, warm_search = await paired(search, search, runs, before=stale_searches)
        await same()  # the answer is cached from here on
        cold_call, warm_call = await paired(fresh, same, runs)
    finally:
        await memory.drain()
        await database.close()
    return [
        ("agent list, cold (Postgres, then stored)", cold_list),
        ("agent list, warm (cache hit)", warm_list),
        ("usage summary by agent, cold (every row of the month)", cold_usage),
        ("usage summary by agent, warm (closed days cached, today live)", warm_usage),
        ("company codex, cold (the onboarding run, then stored)", cold_codex),
        ("company codex, warm (cache hit)", warm_codex),
        ("memory search, cold (embed, vector and text search, rank)", cold_search),
        ("memory search, warm (cache hit)", warm_search),
        ("deterministic model call, cold (provider, then stored)", cold_call),
        ("deterministic model call, warm (cache hit, zero-cost ledger row)", warm_call),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    logger.setLevel("WARNING")
    calls = max(50, args.runs * 20)
    with ExitStack() as stack, bench_database() as url:
        redis = RedisServer(REPO / ".devstack" / "bench-redis")
        redis_url = redis.start()
        stack.callback(redis.stop)
        bridge = ServerThread(create_bridge_app(redis_url, LOCAL_UPSTASH_TOKEN), name="upstash")
        upstash_url = bridge.start()
        stack.callback(bridge.stop)
        rows = asyncio.run(run(url, upstash_url, calls))
    print(f"## Caches: cold vs warm ({calls} calls each, Redis behind the local REST bridge)\n")
    print("| path | median ms | p95 ms |")
    print("|---|---:|---:|")
    for label, samples in rows:
        p95 = statistics.quantiles(samples, n=20)[-1]
        print(f"| {label} | {statistics.median(samples):.2f} | {p95:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
