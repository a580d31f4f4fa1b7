"""Warm vs cold: the workspace's agent list (`GET /agents`' read) and a deterministic model
call, each with the cache cold (a miss: the database or the provider, then a store) and
warm (a hit), on the embedded PostgreSQL and a local Redis behind the Upstash REST bridge.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path

from pydantic import SecretStr

from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.bootstrap import build
from guildstack.config import LOCAL_UPSTASH_TOKEN, Settings
from guildstack.devstack.redis import RedisServer
from guildstack.devstack.servers import ServerThread
from guildstack.devstack.upstash_bridge import create_bridge_app
from guildstack.domain.cache import CacheType
from guildstack.domain.identity import Principal
from guildstack.domain.models import CallContext, ChatMessage, ModelRequest
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


async def run(url: str, upstash_url: str, runs: int) -> list[tuple[str, list[float]]]:
    user, workspace = await _workspace(url)
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

    try:
        cold_list, warm_list = await paired(listed, listed, runs, before=invalidate)
        await same()  # the answer is cached from here on
        cold_call, warm_call = await paired(fresh, same, runs)
    finally:
        await database.close()
    return [
        ("agent list, cold (Postgres, then stored)", cold_list),
        ("agent list, warm (cache hit)", warm_list),
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
