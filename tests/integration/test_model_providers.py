"""The model layer end to end: real anthropic/openai SDKs over a scripted HTTP transport,
the real failover chain, and the real usage ledger in PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from guildstack.adapters.models.anthropic import AnthropicProvider
from guildstack.adapters.models.openai import OpenAIProvider
from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.bootstrap import Container, build
from guildstack.config import Settings
from guildstack.domain.errors import InvalidRequest, ProviderUnavailable
from guildstack.domain.models import (
    CallContext,
    ChatMessage,
    Completion,
    Delta,
    ModelRequest,
    Tier,
)
from guildstack.ports.models import ModelProvider
from guildstack.services.failover import FailoverChain, RetryPolicy
from tests.fakes import wire
from tests.fakes.wire import ScriptedTransport
from tests.fixtures.postgres import MakeUser, create_workspace

QUESTION = ModelRequest(
    system="You are terse.",
    messages=(ChatMessage("user", "Name one prime number."),),
    tier=Tier.FAST,
    max_tokens=200,
)


@dataclass
class Harness:
    container: Container
    anthropic: ScriptedTransport
    openai: ScriptedTransport
    database: PostgresDatabase
    context: CallContext
    slept: list[float] = field(default_factory=list)

    async def usage_rows(self) -> list[dict[str, Any]]:
        async with self.database.service_transaction("test") as conn:
            cur = await conn.execute(
                "select * from public.usage where workspace_id = %s order by created_at",
                (self.context.workspace_id,),
            )
            return list(await cur.fetchall())

    async def reservations(self) -> int:
        async with self.database.service_transaction("test") as conn:
            cur = await conn.execute(
                "select count(*) as n from public.budget_reservations where workspace_id = %s",
                (self.context.workspace_id,),
            )
            row = await cur.fetchone()
        assert row is not None
        return int(row["n"])


async def harness(
    database: PostgresDatabase,
    make_user: MakeUser,
    anthropic: list[wire.Reply],
    openai: list[wire.Reply],
    *,
    budget: float = 10,
) -> Harness:
    user = await make_user()
    workspace = await create_workspace(database, user, monthly_budget_usd=budget)
    a, o = ScriptedTransport(anthropic), ScriptedTransport(openai)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    providers: dict[str, ModelProvider] = {
        "anthropic": AnthropicProvider("test-key", http_client=a.client()),
        "openai": OpenAIProvider("test-key", http_client=o.client()),
    }
    chain = FailoverChain(providers, policy=RetryPolicy(max_attempts=3), sleep=sleep)
    container = build(Settings(stage="test"), database=database, failover=chain)
    context = CallContext(workspace_id=workspace, user_id=user, agent_code="nicole_core")
    return Harness(container, a, o, database, context, slept)


async def test_given_anthropic_answers_when_completing_then_text_usage_and_one_ledger_row(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    h = await harness(database, make_user, [wire.anthropic_message("7", output_tokens=3)], [])

    result = await h.container.model.complete(QUESTION, h.context)

    assert (result.text, result.provider, result.model) == ("7", "anthropic", "claude-haiku-4-5")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (20, 3)
    sent = h.anthropic.bodies()[0]
    assert sent["model"] == "claude-haiku-4-5" and sent["system"] == "You are terse."
    rows = await h.usage_rows()
    assert [(r["provider"], r["agent_code"], r["status"], r["attempts"]) for r in rows] == [
        ("anthropic", "nicole_core", "succeeded", 1)
    ]
    assert await h.reservations() == 0


async def test_given_anthropic_streams_when_streaming_then_deltas_then_completion_with_usage(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    pieces = ["Two ", "is ", "prime."]
    h = await harness(database, make_user, [wire.anthropic_stream(pieces, output_tokens=4)], [])

    items = [item async for item in h.container.model.stream(QUESTION, h.context)]

    deltas = [i.text for i in items if isinstance(i, Delta)]
    final = items[-1]
    assert deltas == pieces
    assert isinstance(final, Completion) and final.text == "Two is prime."
    assert (final.usage.input_tokens, final.usage.output_tokens) == (20, 4)
    assert h.anthropic.bodies()[0]["stream"] is True
    assert len(await h.usage_rows()) == 1


async def test_given_openai_streams_when_streaming_then_usage_comes_from_the_last_chunk(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    h = await harness(
        database,
        make_user,
        [wire.status(401)],  # anthropic misconfigured: fail over at once, no retry
        [
            wire.openai_stream(
                ["Thr", "ee"], prompt_tokens=30, completion_tokens=2, cached_tokens=10
            )
        ],
    )

    items = [item async for item in h.container.model.stream(QUESTION, h.context)]

    final = items[-1]
    assert isinstance(final, Completion)
    assert (final.text, final.provider) == ("Three", "openai")
    assert (final.usage.input_tokens, final.usage.cache_read_tokens) == (20, 10)
    assert len(h.anthropic.requests) == 1
    assert h.openai.bodies()[0]["stream_options"] == {"include_usage": True}


async def test_given_a_429_then_success_when_completing_then_retried_once_and_one_row(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    h = await harness(
        database,
        make_user,
        [wire.status(429, {"retry-after": "2"}), wire.anthropic_message("5")],
        [],
    )

    result = await h.container.model.complete(QUESTION, h.context)

    assert (result.text, result.attempts) == ("5", 2)
    assert len(h.anthropic.requests) == 2
    assert h.slept and h.slept[0] >= 2  # honoured the provider's Retry-After
    rows = await h.usage_rows()
    assert [(r["provider"], r["attempts"]) for r in rows] == [("anthropic", 2)]


async def test_given_the_primary_keeps_failing_with_500_when_completing_then_failover_is_recorded(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    h = await harness(
        database, make_user, [wire.status(500)], [wire.openai_completion("11", model="gpt-5-mini")]
    )

    result = await h.container.model.complete(QUESTION, h.context)

    assert (result.provider, result.model, result.text) == ("openai", "gpt-5-mini", "11")
    assert len(h.anthropic.requests) == 3  # every attempt the policy allows, then failover
    assert result.attempts == 4
    rows = await h.usage_rows()
    assert [(r["provider"], r["model"]) for r in rows] == [("openai", "gpt-5-mini")]


async def test_given_every_provider_down_when_completing_then_unavailable_and_nothing_recorded(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    h = await harness(database, make_user, [wire.status(503)], [wire.status(502)])

    with pytest.raises(ProviderUnavailable):
        await h.container.model.complete(QUESTION, h.context)

    assert (len(h.anthropic.requests), len(h.openai.requests)) == (3, 3)
    assert await h.usage_rows() == []
    assert await h.reservations() == 0  # the reservation was given back


async def test_given_timeouts_when_completing_then_retried_then_failed_over(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    h = await harness(database, make_user, [wire.timeout()], [wire.openai_completion("13")])

    result = await h.container.model.complete(QUESTION, h.context)

    assert result.provider == "openai"
    assert len(h.anthropic.requests) == 3


async def test_given_malformed_json_when_completing_then_treated_as_a_provider_failure(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    h = await harness(database, make_user, [wire.malformed_json()], [wire.malformed_json()])

    with pytest.raises(ProviderUnavailable):
        await h.container.model.complete(QUESTION, h.context)

    assert await h.usage_rows() == []


async def test_given_the_provider_rejects_the_request_when_completing_then_no_failover(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    h = await harness(database, make_user, [wire.status(400)], [wire.openai_completion("x")])

    with pytest.raises(InvalidRequest):
        await h.container.model.complete(QUESTION, h.context)

    assert (len(h.anthropic.requests), len(h.openai.requests)) == (1, 0)
    assert await h.reservations() == 0


async def test_given_a_json_schema_when_completing_with_anthropic_then_output_format_is_sent(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    schema = {"type": "object", "properties": {"agents": {"type": "array"}}}
    h = await harness(database, make_user, [wire.anthropic_message('{"agents": ["seo"]}')], [])
    request = ModelRequest(
        system="Route.", messages=(ChatMessage("user", "rank my site"),), json_schema=schema
    )

    result = await h.container.model.complete(request, h.context)

    assert result.text == '{"agents": ["seo"]}'
    sent = h.anthropic.bodies()[0]
    # The Messages API insists on additionalProperties: false for every object.
    api_schema = {**schema, "additionalProperties": False}
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": api_schema}}
    assert "temperature" not in sent


@pytest.mark.parametrize(
    ("provider", "reply", "price"),
    [
        (
            "anthropic",
            wire.anthropic_message(
                "a", input_tokens=1234, output_tokens=567, cache_read=8901, cache_write=2345
            ),
            # claude-haiku-4-5: input 1.00, output 5.00, cache read 0.10, cache write 1.25
            (
                1234 * Decimal("1.00")
                + 567 * Decimal("5.00")
                + 8901 * Decimal("0.10")
                + 2345 * Decimal("1.25")
            )
            / 1_000_000,
        ),
        (
            "openai",
            wire.openai_completion(
                "o", prompt_tokens=4321, completion_tokens=765, cached_tokens=1000
            ),
            # gpt-5-mini: input 0.25, output 2.00, cached input 0.025
            (3321 * Decimal("0.25") + 765 * Decimal("2.00") + 1000 * Decimal("0.025")) / 1_000_000,
        ),
    ],
)
async def test_given_each_kind_of_token_when_recorded_then_cost_is_tokens_times_price(
    database: PostgresDatabase,
    make_user: MakeUser,
    provider: str,
    reply: wire.Reply,
    price: Decimal,
) -> None:
    script = ([reply], []) if provider == "anthropic" else ([wire.status(401)], [reply])
    h = await harness(database, make_user, *script)

    result = await h.container.model.complete(QUESTION, h.context)

    rows = await h.usage_rows()
    assert result.provider == provider
    assert rows[0]["cost_usd"] == price == result.cost_usd
    assert rows[0]["cost_usd"] > 0


async def test_given_a_local_compatible_model_first_when_it_is_down_then_the_cloud_answers(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    # A local model (Ollama) with cloud fallback, configured through MODEL_TIERS.
    user = await make_user()
    workspace = await create_workspace(database, user)
    local = ScriptedTransport([wire.openai_completion("local answer", model="llama3.1")])
    cloud = ScriptedTransport([wire.anthropic_message("cloud answer")])
    providers: dict[str, ModelProvider] = {
        "compatible": OpenAIProvider(
            "unused",
            name="compatible",
            base_url="http://ollama.local:11434/v1",
            http_client=local.client(),
        ),
        "anthropic": AnthropicProvider("test-key", http_client=cloud.client()),
    }

    async def no_wait(seconds: float) -> None:
        return None

    settings = Settings.from_environ(
        {
            "STAGE": "test",
            "MODEL_TIERS": '{"fast": ["compatible/llama3.1", "anthropic/claude-haiku-4-5"]}',
            # A model server of one's own is free only when configured so.
            "COMPATIBLE_INPUT_PRICE_USD": "0",
            "COMPATIBLE_OUTPUT_PRICE_USD": "0",
        }
    )
    container = build(settings, database=database, failover=FailoverChain(providers, sleep=no_wait))
    context = CallContext(workspace_id=workspace, user_id=user)

    first = await container.model.complete(QUESTION, context)
    local.script[:] = [wire.timeout()]
    second = await container.model.complete(QUESTION, context)

    assert (first.provider, first.model, first.cost_usd) == ("compatible", "llama3.1", Decimal(0))
    sent = local.requests[0]
    assert str(sent.url) == "http://ollama.local:11434/v1/chat/completions"
    assert local.bodies()[0]["max_tokens"] == 200  # compatible servers get max_tokens
    assert (second.provider, second.text) == ("anthropic", "cloud answer")
