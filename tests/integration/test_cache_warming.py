"""What the hourly warm-up fills, on real Postgres (RLS on) and Redis: a usage summary's
closed days (today always live), the company codex (keyed by its onboarding run), and the
workspace's most frequent recent memory searches, each re-run as the member who asked it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.bootstrap import Container, build
from guildstack.config import Settings
from guildstack.domain.cache import CacheType
from guildstack.domain.identity import Principal
from guildstack.domain.memory import Collection, MemoryScope
from guildstack.domain.onboarding import ONBOARDING_STEPS
from guildstack.domain.vocabulary import GroupBy
from tests.fixtures.postgres import MakeUser, claims_for, create_workspace
from tests.fixtures.redis import UpstashEndpoint
from tests.integration.test_memory import EMBEDDER

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def settings(upstash: UpstashEndpoint | None) -> Settings:
    return Settings(
        stage="test",
        upstash_redis_rest_url=upstash.url if upstash else None,
        upstash_redis_rest_token=SecretStr(upstash.token) if upstash else None,
    )


@pytest.fixture
def cached(database: PostgresDatabase, upstash: UpstashEndpoint) -> Container:
    return build(settings(upstash), database=database, embedder=EMBEDDER)


@pytest.fixture
def uncached(database: PostgresDatabase) -> Container:
    return build(settings(None), database=database, embedder=EMBEDDER)


def member(user: uuid.UUID) -> Principal:
    return Principal(user, None, claims_for(user))


async def _usage(
    database: PostgresDatabase, ws: uuid.UUID, user: uuid.UUID, at: datetime, agent: str, cost: str
) -> None:
    async with database.service_transaction("plant usage") as conn:
        await conn.execute(
            "insert into public.usage (workspace_id, user_id, agent_code, provider, model,"
            " input_tokens, output_tokens, cost_usd, latency_ms, attempts, status, created_at)"
            " values (%s, %s, %s, 'offline', 'offline', 10, 20, %s, 5, 1, 'succeeded', %s)",
            (ws, user, agent, Decimal(cost), at),
        )


def summary(report: Any) -> tuple[Any, list[tuple[str | None, int, Decimal]]]:
    groups = [(g.key, g.totals.calls, g.totals.cost_usd) for g in report.groups]
    return report.totals, groups


async def test_given_closed_days_then_they_come_from_the_cache_and_today_stays_live(
    database: PostgresDatabase, make_user: MakeUser, cached: Container, uncached: Container
) -> None:
    owner = await make_user()
    ws = await create_workspace(database, owner)
    await _usage(database, ws, owner, datetime(2026, 11, 3, 9, tzinfo=UTC), "seo_agent", "0.5")
    await _usage(database, ws, owner, datetime(2026, 11, 19, 23, tzinfo=UTC), "design_agent", "1")
    await _usage(database, ws, owner, datetime(2026, 11, 20, 8, tzinfo=UTC), "seo_agent", "0.25")
    me = member(owner)

    for group_by in (None, GroupBy.AGENT, GroupBy.DAY):
        live = await uncached.usage.report(me, ws, None, None, group_by, now=NOW)
        assert summary(await cached.usage.report(me, ws, None, None, group_by, now=NOW)) == (
            summary(live)
        ), "split or not, the same report"
    # The three reports stored their closed days; the warm-up stores the other groupings.
    assert await cached.usage.warm(ws, now=NOW) == len(GroupBy) + 1 - 3

    # A row no closed day can get (rows are inserted with their transaction's time): the
    # cached closed days do not see it, which shows they come from the cache.
    await _usage(database, ws, owner, datetime(2026, 11, 4, 9, tzinfo=UTC), "seo_agent", "7")
    await _usage(database, ws, owner, datetime(2026, 11, 20, 11, tzinfo=UTC), "seo_agent", "2")
    report = await cached.usage.report(me, ws, None, None, GroupBy.AGENT, now=NOW)
    fresh = await uncached.usage.report(me, ws, None, None, GroupBy.AGENT, now=NOW)

    assert report.totals.cost_usd == Decimal("3.75"), "closed days cached, today live"
    assert fresh.totals.cost_usd == Decimal("10.75")
    assert [(g.key, g.totals.cost_usd) for g in report.groups] == [
        ("seo_agent", Decimal("2.75")),
        ("design_agent", Decimal("1")),
    ]
    assert report.start == datetime(2026, 11, 1, tzinfo=UTC)
    assert report.budget == fresh.budget


async def test_given_a_window_not_starting_at_midnight_then_it_is_read_live(
    database: PostgresDatabase, make_user: MakeUser, cached: Container
) -> None:
    owner = await make_user()
    ws = await create_workspace(database, owner)
    await _usage(database, ws, owner, datetime(2026, 11, 10, 9, tzinfo=UTC), "seo_agent", "1")
    start = datetime(2026, 11, 10, 8, 30, tzinfo=UTC)
    first = await cached.usage.report(member(owner), ws, start, None, None, now=NOW)
    await _usage(database, ws, owner, datetime(2026, 11, 10, 10, tzinfo=UTC), "seo_agent", "1")

    again = await cached.usage.report(member(owner), ws, start, None, None, now=NOW)

    assert (first.totals.calls, again.totals.calls) == (1, 2)


async def _onboarding(
    database: PostgresDatabase, ws: uuid.UUID, user: uuid.UUID, text: str
) -> None:
    """A succeeded onboarding run whose steps summarize `text`."""
    async with database.service_transaction("plant an onboarding") as conn:
        row = await (
            await conn.execute(
                "insert into public.runs (workspace_id, created_by, kind, title, input, status)"
                " values (%s, %s, 'onboarding', 'Onboarding', 'Acme', 'succeeded') returning id",
                (ws, user),
            )
        ).fetchone()
        assert row is not None
        for position, spec in enumerate(ONBOARDING_STEPS):
            await conn.execute(
                "insert into public.steps (run_id, key, workspace_id, position, agent_code,"
                " status, output, finished_at)"
                " values (%s, %s, %s, %s, %s, 'succeeded', %s, now())",
                (row["id"], spec.key, ws, position, spec.agent,
                 json.dumps({"summary": f"{text} {spec.key}", "findings": []})),
            )  # fmt: skip


async def test_given_a_completed_onboarding_then_its_codex_is_cached_until_the_next_one(
    database: PostgresDatabase, make_user: MakeUser, cached: Container
) -> None:
    owner = await make_user()
    ws = await create_workspace(database, owner)
    assert await cached.codex.warm(ws) is False, "no onboarding yet"
    await _onboarding(database, ws, owner, "First")

    assert await cached.codex.warm(ws) is True
    async with database.service_transaction("spoil the steps") as conn:
        await conn.execute(
            "update public.steps set output = 'changed' where workspace_id = %s", (ws,)
        )
    async with cached.uow.system("read the codex") as tx:
        first = await cached.codex.text(tx, ws)
    assert first is not None and "First" in first and "changed" not in first, "from the cache"

    await _onboarding(database, ws, owner, "Second")
    async with cached.uow.system("read the codex") as tx:
        second = await cached.codex.text(tx, ws)
    assert second is not None and "Second" in second, "a new onboarding is a new key"


async def test_given_frequent_searches_then_the_warm_up_runs_them_as_their_member(
    database: PostgresDatabase, make_user: MakeUser, cached: Container
) -> None:
    owner, analyst, leaver = await make_user(), await make_user(), await make_user()
    ws = await create_workspace(database, owner)
    for user in (analyst, leaver):
        async with database.service_transaction("add a member") as conn:
            await conn.execute(
                "insert into public.workspace_members (workspace_id, user_id, role)"
                " values (%s, %s, 'analyst')",
                (ws, user),
            )
    memory = cached.memory
    await memory.remember(
        member(owner),
        ws,
        content="Pricing: the team plan is 12 dollars a seat.",
        collection=Collection.BUSINESS,
        scope=MemoryScope.WORKSPACE,
    )
    for who, query in ((analyst, "pricing"), (analyst, "pricing"), (owner, "pricing"),
                       (leaver, "launch date")):  # fmt: skip
        await memory.search(member(who), ws, query)
    await memory.drain()
    async with database.service_transaction("remove a member") as conn:
        await conn.execute(
            "delete from public.workspace_members where workspace_id = %s and user_id = %s",
            (ws, leaver),
        )
    search_cache = cached.search_cache
    assert search_cache is not None
    frequent = [json.loads(e)[:2] for e in await search_cache.frequent_queries(ws, 10)]
    assert frequent[0] == [str(analyst), "pricing"]
    assert sorted(map(tuple, frequent)) == sorted(
        [(str(analyst), "pricing"), (str(owner), "pricing"), (str(leaver), "launch date")]
    )
    await search_cache.bump(ws, None)  # a memory write: every cached search is stale

    assert await memory.warm(ws, top=10) == 2, "the leaver's search is skipped"
    await memory.drain()

    assert [json.loads(e)[:2] for e in await search_cache.frequent_queries(ws, 10)] == (frequent), (
        "the warm-up's runs are not counted"
    )
    key = await memory._cache_key(analyst, ws, "pricing", None, 10)
    assert await memory._cached(key) is not None, "the analyst's search is warm again"


async def test_given_active_workspaces_then_the_warmer_fills_every_part(
    database: PostgresDatabase, make_user: MakeUser, cached: Container
) -> None:
    owner = await make_user()
    ws = await create_workspace(database, owner)
    yesterday = datetime.now(UTC) - timedelta(hours=30)
    await _usage(database, ws, owner, yesterday, "seo_agent", "1")
    await _onboarding(database, ws, owner, "Acme")
    await cached.memory.search(member(owner), ws, "pricing")
    await cached.memory.drain()

    counts = await cached.cache_warmer.warm()

    assert counts["workspaces"] >= 1
    assert counts["agents"] > 0 and counts["codex"] >= 1 and counts["searches"] >= 1
    cache = cached.cache
    assert cache is not None
    assert (await cache.lookup(CacheType.AGENT_CATALOG, ws, "rows")).value is not None
