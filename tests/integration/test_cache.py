"""The typed cache on real Redis (through the Upstash REST bridge) and the response cache
with the real ledger on Postgres: per-type TTLs, generation invalidation, failures as
misses; a deterministic request's second call asks no provider and records a zero-cost
`cached` usage row."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import redis

from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.adapters.postgres.uow import PostgresUnitOfWork
from guildstack.adapters.upstash import UpstashCache, UpstashClientFactory
from guildstack.agents.catalog import load_model_book
from guildstack.config import DEFAULT_CATALOG_DIR
from guildstack.domain.cache import TTL_SECONDS, CacheType
from guildstack.domain.models import CallContext, ChatMessage, Completion, Delta, ModelRequest
from guildstack.services.cache import CacheService
from guildstack.services.failover import FailoverChain
from guildstack.services.models import MeteredModel
from tests.fakes.models import ScriptedProvider
from tests.fixtures.postgres import MakeUser, create_workspace
from tests.fixtures.redis import UpstashEndpoint

BOOK = load_model_book(DEFAULT_CATALOG_DIR / "models.yaml")


@pytest.fixture
def cache(upstash: UpstashEndpoint) -> CacheService:
    prefix = f"gs:test:{uuid.uuid4().hex[:8]}"
    return CacheService(
        UpstashCache(UpstashClientFactory(upstash.url, upstash.token), prefix=prefix)
    )


async def test_given_each_type_then_entries_live_for_its_ttl(
    cache: CacheService, redis_url: str
) -> None:
    ws = uuid.uuid4()
    for kind in CacheType:
        await cache.put(kind, ws, "k", f"value of {kind}")
        assert await cache.get(kind, ws, "k") == f"value of {kind}"
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        ttls = {key.split(":")[3]: client.ttl(key) for key in client.scan_iter(match=f"*:{ws}:0:k")}
    finally:
        client.close()
    assert set(ttls) == {kind.value for kind in CacheType}
    for kind in CacheType:
        assert TTL_SECONDS[kind] - 5 <= ttls[kind.value] <= TTL_SECONDS[kind]
    assert TTL_SECONDS[CacheType.AGENT_RESPONSE] in range(24 * 3600, 48 * 3600 + 1)
    assert TTL_SECONDS[CacheType.CAMPAIGN_RESULT] == 365 * 86400


async def test_given_a_write_then_invalidation_hides_that_types_entries_of_that_workspace(
    cache: CacheService,
) -> None:
    ws, other = uuid.uuid4(), uuid.uuid4()
    for workspace in (ws, other):
        await cache.put(CacheType.AGENT_CATALOG, workspace, "list", "agents v1")
        await cache.put(CacheType.PERSONA, workspace, "p", "persona")

    await cache.invalidate(CacheType.AGENT_CATALOG, ws)

    assert await cache.get(CacheType.AGENT_CATALOG, ws, "list") is None
    assert await cache.get(CacheType.AGENT_CATALOG, other, "list") == "agents v1"
    assert await cache.get(CacheType.PERSONA, ws, "p") == "persona"
    await cache.put(CacheType.AGENT_CATALOG, ws, "list", "agents v2")
    assert await cache.get(CacheType.AGENT_CATALOG, ws, "list") == "agents v2"


async def test_given_redis_unreachable_then_reads_miss_and_writes_pass() -> None:
    down = CacheService(UpstashCache(UpstashClientFactory("http://127.0.0.1:9", "token")))
    ws = uuid.uuid4()
    await down.put(CacheType.PERSONA, ws, "p", "x")
    assert await down.get(CacheType.PERSONA, ws, "p") is None
    await down.invalidate(CacheType.PERSONA, ws)


def _request(text: str, temperature: float = 0.0) -> ModelRequest:
    return ModelRequest(
        system="Answer briefly.",
        messages=(ChatMessage("user", text),),
        temperature=temperature,
        max_tokens=200,
    )


async def _usage(database: PostgresDatabase, ws: uuid.UUID) -> list[tuple[str, float, int, int]]:
    async with database.service_transaction("read usage") as conn:
        rows = await (
            await conn.execute(
                "select status, cost_usd, input_tokens + output_tokens as tokens, attempts"
                " from public.usage where workspace_id = %s order by created_at, id",
                (ws,),
            )
        ).fetchall()
    return [(r["status"], float(r["cost_usd"]), r["tokens"], r["attempts"]) for r in rows]


async def test_given_a_deterministic_request_twice_then_the_second_asks_no_provider(
    database: PostgresDatabase, make_user: MakeUser, cache: CacheService
) -> None:
    owner = await make_user()
    ws, other = (
        await create_workspace(database, owner, monthly_budget_usd=10),
        await create_workspace(database, owner, monthly_budget_usd=10),
    )
    provider = ScriptedProvider("anthropic", ["The answer is 42."])
    uow = PostgresUnitOfWork(database)
    model = MeteredModel(FailoverChain({"anthropic": provider}), BOOK, uow, cache=cache)

    first = await model.complete(_request("What is the answer?"), CallContext(ws))
    again = await model.complete(_request("What is the answer?"), CallContext(ws))

    assert len(provider.calls) == 1
    assert again.text == first.text == "The answer is 42."
    assert (again.cached, again.cost_usd, again.provider) == (True, Decimal(0), "anthropic")
    assert first.cost_usd > 0
    usage = await _usage(database, ws)
    assert [row[0] for row in usage] == ["succeeded", "cached"]
    assert usage[1][1:] == (0.0, 0, 0)  # no cost, no tokens, no provider attempt

    # Streamed, the same: one delta with the whole answer, then the completion.
    items = [i async for i in model.stream(_request("What is the answer?"), CallContext(ws))]
    assert [type(i) for i in items] == [Delta, Completion]
    assert len(provider.calls) == 1

    # Another workspace, or a non-deterministic request, asks the provider.
    await model.complete(_request("What is the answer?"), CallContext(other))
    await model.complete(_request("What is the answer?", temperature=0.7), CallContext(ws))
    await model.complete(_request("What is the answer?", temperature=0.7), CallContext(ws))
    assert len(provider.calls) == 4


async def test_given_a_read_before_a_write_then_its_late_store_is_never_served(
    cache: CacheService,
) -> None:
    ws = uuid.uuid4()
    seen = await cache.lookup(CacheType.WORKSPACE_SETTINGS, ws, "s")  # a reader misses...
    await cache.invalidate(CacheType.WORKSPACE_SETTINGS, ws)  # ...a writer commits...
    await cache.store(CacheType.WORKSPACE_SETTINGS, ws, "s", "stale", seen.generation)
    assert await cache.get(CacheType.WORKSPACE_SETTINGS, ws, "s") is None  # ...never served


async def _rename_behind_the_cache(database: PostgresDatabase, ws: uuid.UUID, name: str) -> None:
    async with database.service_transaction("rename") as conn:
        await conn.execute(
            "update public.agents set name = %s where workspace_id = %s and code = 'seo_agent'",
            (name, ws),
        )


async def test_given_the_agent_list_then_it_is_cached_until_an_agent_changes(
    database: PostgresDatabase, make_user: MakeUser, cache: CacheService
) -> None:
    from guildstack.agents.catalog import load_agents
    from guildstack.domain.identity import Principal
    from guildstack.services.agents import AgentRegistry
    from tests.fixtures.postgres import claims_for

    owner = await make_user()
    ws = await create_workspace(database, owner)
    me = Principal(owner, None, claims_for(owner))
    registry = AgentRegistry(
        load_agents(DEFAULT_CATALOG_DIR / "agents.yaml"), PostgresUnitOfWork(database), cache
    )
    await registry.update(me, ws, "seo_agent", {"name": "Searcher"})

    first = {a.code: a for a in await registry.list(me, ws)}
    await _rename_behind_the_cache(database, ws, "Renamed in SQL")
    cached = {a.code: a for a in await registry.list(me, ws)}
    assert first["seo_agent"].spec.name == cached["seo_agent"].spec.name == "Searcher"
    assert cached["seo_agent"] == first["seo_agent"]  # the row survives the round trip

    await registry.update(me, ws, "seo_agent", {"description": "Finds keywords."})
    fresh = {a.code: a for a in await registry.list(me, ws)}
    assert fresh["seo_agent"].spec.name == "Renamed in SQL"  # the write invalidated the list


async def test_given_active_and_quiet_workspaces_then_the_warm_up_fills_the_active_ones(
    database: PostgresDatabase, make_user: MakeUser, cache: CacheService
) -> None:
    from guildstack.agents.catalog import load_agents
    from guildstack.services.agents import ROWS_KEY, AgentRegistry
    from guildstack.services.cache_warm import CacheWarmer

    owner = await make_user()
    active, quiet = await create_workspace(database, owner), await create_workspace(database, owner)
    async with database.service_transaction("activity") as conn:
        await conn.execute(
            "insert into public.usage (workspace_id, user_id, provider, model)"
            " values (%s, %s, 'offline', 'offline')",
            (active, owner),
        )
    uow = PostgresUnitOfWork(database)
    registry = AgentRegistry(load_agents(DEFAULT_CATALOG_DIR / "agents.yaml"), uow, cache)

    result = await CacheWarmer(uow, registry).warm()

    assert result["workspaces"] >= 1 and result["agents"] >= len(registry.catalog())
    assert await cache.get(CacheType.AGENT_CATALOG, active, ROWS_KEY) == "[]"
    assert await cache.get(CacheType.AGENT_CATALOG, quiet, ROWS_KEY) is None
