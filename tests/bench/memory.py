"""Memory search at scale: 100k memories (384 dimensions) across two workspaces on the
embedded PostgreSQL, searched through `MemoryService` as a member (RLS active, no cache),
and the vector index's recall@10 against exact search for the same filters.

Vectors are synthetic (clustered around 200 topics, as real embeddings cluster) and made
inside Postgres, so seeding takes seconds instead of embedding 100k texts; half of each
workspace's memories belong to its owner, half are shared; collections are mixed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from pydantic import SecretStr

from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.adapters.postgres.memory import vector_literal
from guildstack.bootstrap import build
from guildstack.config import Settings
from guildstack.domain.identity import Principal
from guildstack.observability import logger
from tests.bench.model_call import _workspace
from tests.bench.support import bench_database

REPO = Path(__file__).resolve().parents[2]
DIMENSIONS = 384
TOPICS = 200
MODEL = "bench-synthetic"
P95_TARGET_MS = 25.0
RECALL_TARGET = 0.95


class TopicEmbedder:
    """Query vectors near a random topic centre (the same distribution as the rows)."""

    model_id = MODEL
    dimensions = DIMENSIONS

    def __init__(self, centres: list[list[float]], seed: int = 11) -> None:
        self._centres = centres
        self._rng = random.Random(seed)

    def vector(self) -> list[float]:
        centre = self._rng.choice(self._centres)
        v = [c + self._rng.uniform(-0.3, 0.3) for c in centre]
        norm = sum(x * x for x in v) ** 0.5
        return [x / norm for x in v]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.vector() for _ in texts]


def seed(url: str, workspaces: list[tuple[uuid.UUID, uuid.UUID]], per_workspace: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set maintenance_work_mem = '1GB'")
        conn.execute("set max_parallel_maintenance_workers = 2")
        conn.execute("drop index if exists public.memories_embedding_idx")
        conn.execute(
            "create unlogged table bench_centres as select c, array(select random() - 0.5"
            " from generate_series(1, %s) where c > 0) as v from generate_series(1, %s) c",
            (DIMENSIONS, TOPICS),
        )
        collections = (
            "array['core','documents','business','design_guidelines','codex_knowledge',"
            "'campaign_briefs','competitor_intel','industry_research','user_preferences']"
        )
        for owner, workspace in workspaces:
            conn.execute(
                f"""
                insert into public.memories (workspace_id, scope, owner_id, collection, content,
                    embedding, embedding_model)
                select %s, case when i %% 2 = 0 then 'user' else 'workspace' end,
                       case when i %% 2 = 0 then %s::uuid end,
                       ({collections})[1 + i %% 9],
                       'memory ' || i || ' about topic ' || t.c || ' and its details',
                       (select array_agg(x + (random() - 0.5) * 0.6 order by n)
                        from unnest(t.v) with ordinality as u(x, n))::extensions.vector,
                       %s
                from generate_series(1, %s) as i
                join bench_centres t on t.c = 1 + (i * 7919) %% {TOPICS}
                """,  # noqa: S608 - constants
                (workspace, owner, MODEL, per_workspace),
            )
        conn.execute(
            "create index memories_embedding_idx on public.memories"
            " using hnsw (embedding extensions.vector_cosine_ops)"
            " with (m = 16, ef_construction = 64)"
        )
        conn.execute("analyze public.memories")


def centres(url: str) -> list[list[float]]:
    """The topic centres the rows were drawn around."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("select v from bench_centres order by c").fetchall()
    return [[float(x) for x in v] for (v,) in rows]


async def measure(
    url: str, owner: uuid.UUID, workspace: uuid.UUID, embedder: TopicEmbedder, searches: int
) -> tuple[list[float], float]:
    database = PostgresDatabase(url, max_size=4)
    container = build(
        Settings(stage="test", database_url=SecretStr(url)), database=database, embedder=embedder
    )
    actor = Principal(owner, None, {"sub": str(owner), "role": "authenticated"})
    latencies = []
    try:
        for i in range(searches + 10):
            started = time.perf_counter()
            await container.memory.search(actor, workspace, f"topic question {i}", limit=10)
            if i >= 10:
                latencies.append((time.perf_counter() - started) * 1000)
        recall = await _recall(database, actor, workspace, embedder, 50)
    finally:
        await database.close()
    return latencies, recall


async def _recall(
    database: PostgresDatabase,
    actor: Principal,
    workspace: uuid.UUID,
    embedder: TopicEmbedder,
    queries: int,
) -> float:
    """Share of the exact top 10 (same filters, same RLS) that the index path returns."""
    sql = (
        "select m.id from public.memories m where m.workspace_id = %s and m.embedding_model = %s"
        " order by m.embedding operator(extensions.<=>) %s::extensions.vector limit 10"
    )
    found = 0
    for _ in range(queries):
        vector = vector_literal(embedder.vector())
        async with database.transaction(actor.claims) as conn:
            await conn.execute("select set_config('hnsw.ef_search', '320', true)")
            approx = await _ids(conn, sql, (workspace, MODEL, vector))
        async with database.transaction(actor.claims) as conn:
            await conn.execute("set local enable_indexscan = off")
            exact = await _ids(conn, sql, (workspace, MODEL, vector))
        found += len(approx & exact)
    return found / (queries * 10)


async def _ids(conn: Any, sql: str, params: tuple[object, ...]) -> set[uuid.UUID]:
    return {row["id"] for row in await (await conn.execute(sql, params)).fetchall()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--memories", type=int, default=100_000)
    args = parser.parse_args(argv)
    logger.setLevel("WARNING")
    with bench_database() as url:
        workspaces = [asyncio.run(_workspace(url)) for _ in range(2)]
        started = time.perf_counter()
        seed(url, workspaces, args.memories // 2)
        seeded = time.perf_counter() - started
        embedder = TopicEmbedder(centres(url))
        owner, workspace = workspaces[0]
        latencies, recall = asyncio.run(
            measure(url, owner, workspace, embedder, max(100, args.runs * 20))
        )
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(f"## Memory search over {args.memories:,} memories in 2 workspaces ({DIMENSIONS} dims)\n")
    print(f"seeded and indexed (HNSW m=16, ef_construction=64) in {seeded:.0f} s\n")
    print("| measure | value | target | before (searches counted their hits one by one) |")
    print("|---|---:|---|---:|")
    print(f"| searches (service, RLS on, no cache) | {len(latencies)} | | |")
    print(f"| p50 latency ms | {statistics.median(latencies):.1f} | | 20.2 |")
    verdict = "pass" if p95 <= P95_TARGET_MS else "MISS"
    print(f"| p95 latency ms | {p95:.1f} | ≤ {P95_TARGET_MS:.0f} ({verdict}) | 27.3 |")
    verdict = "pass" if recall >= RECALL_TARGET else "MISS"
    print(
        f"| recall@10 vs exact search, same filters and RLS | {recall:.3f}"
        f" | ≥ {RECALL_TARGET} ({verdict}) | 0.982 |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
