"""Overhead of a metered model call: the offline provider alone, then the same call through
`MeteredModel` (budget check, reservation, failover chain, usage row, settlement) on the
embedded PostgreSQL. Prints a markdown table; the difference is what metering costs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
from pydantic import SecretStr

from guildstack.adapters.models.offline import OfflineProvider
from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.bootstrap import build
from guildstack.config import Settings
from guildstack.domain.models import CallContext, ChatMessage, ModelRequest
from guildstack.observability import logger
from tests.bench.support import bench_database

REPO = Path(__file__).resolve().parents[2]
REQUEST = ModelRequest(
    system="You are the core assistant.",
    messages=(ChatMessage("user", "Summarize this week's campaign results in two lines."),),
    max_tokens=256,
)


async def timed(call: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    for _ in range(5):
        await call()  # warm the pool and the caches
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def _workspace(url: str) -> tuple[uuid.UUID, uuid.UUID]:
    user = uuid.uuid4()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "insert into auth.users (id, email, aud, role) values (%s, %s, 'authenticated',"
            " 'authenticated')",
            (user, f"{user}@example.com"),
        )
        await conn.execute("select set_config('request.jwt.claim.sub', %s, false)", (str(user),))
        await conn.execute(
            "select set_config('request.jwt.claims', %s, false)", (f'{{"sub": "{user}"}}',)
        )
        cur = await conn.execute(
            "select id from public.create_workspace('Bench', %s, 1000)", (f"b-{user.hex[:8]}",)
        )
        row = await cur.fetchone()
    assert row is not None
    return user, row[0]


async def run(url: str, runs: int) -> list[tuple[str, list[float]]]:
    user, workspace = await _workspace(url)
    database = PostgresDatabase(url, max_size=4)
    container = build(Settings(stage="test", database_url=SecretStr(url)), database=database)
    context = CallContext(workspace_id=workspace, user_id=user, agent_code="nicole_core")
    offline = OfflineProvider()
    try:
        bare = await timed(lambda: offline.complete("offline", REQUEST), runs)
        metered = await timed(lambda: container.model.complete(REQUEST, context), runs)
    finally:
        await database.close()
    return [("offline provider alone", bare), ("metered (budget + ledger row)", metered)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    logger.setLevel("WARNING")  # one INFO line per call would be measured too
    calls = max(50, args.runs * 20)
    with bench_database() as url:
        rows = asyncio.run(run(url, calls))
    print(f"## Model call through the offline provider ({calls} calls each)\n")
    print("| path | median ms | p95 ms |")
    print("|---|---:|---:|")
    for label, samples in rows:
        p95 = statistics.quantiles(samples, n=20)[-1]
        print(f"| {label} | {statistics.median(samples):.2f} | {p95:.2f} |")
    overhead = statistics.median(rows[1][1]) - statistics.median(rows[0][1])
    print(f"\nmedian metering overhead: {overhead:.2f} ms per call (3 short transactions)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
