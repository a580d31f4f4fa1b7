"""MeteredModel: tier choice by task type and budget, the offline fallback, the ledger calls."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest

from guildstack.adapters.models.offline import OfflineProvider
from guildstack.agents.catalog import load_model_book
from guildstack.config import DEFAULT_CATALOG_DIR
from guildstack.domain.errors import BudgetExceeded, ProviderUnavailable
from guildstack.domain.models import (
    CallContext,
    ChatMessage,
    Completion,
    Delta,
    ModelRequest,
    TaskType,
    Tier,
    tier_for,
)
from guildstack.ports.models import ModelProvider
from guildstack.services.failover import FailoverChain
from guildstack.services.models import MeteredModel
from tests.fakes.models import InMemoryLedger, ScriptedProvider

BOOK = load_model_book(DEFAULT_CATALOG_DIR / "models.yaml")
CONTEXT = CallContext(workspace_id=uuid.uuid4())


def ask(text: str = "hello", **kw: object) -> ModelRequest:
    return ModelRequest(system="Be brief.", messages=(ChatMessage("user", text),), **kw)  # type: ignore[arg-type]


def metered(ledger: InMemoryLedger, *providers: ModelProvider) -> MeteredModel:
    chain = FailoverChain({p.name: p for p in providers})
    return MeteredModel(chain, BOOK, ledger.uow)


@pytest.mark.parametrize(
    ("task", "tier"),
    [
        (TaskType.ROUTING, Tier.FAST),
        (TaskType.CONTENT, Tier.STANDARD),
        (TaskType.STRATEGY, Tier.STRONG),
    ],
)
def test_given_a_task_type_then_its_default_tier(task: TaskType, tier: Tier) -> None:
    assert tier_for(task, None) is tier
    assert tier_for(task, Tier.FAST) is Tier.FAST  # an explicit tier wins


async def test_given_no_provider_configured_then_the_offline_provider_answers_and_is_named() -> (
    None
):
    ledger = InMemoryLedger(budget=Decimal("1"))
    model = metered(ledger, OfflineProvider())

    result = await model.complete(ask("What is Guildstack?"), CONTEXT)

    assert (result.provider, result.model) == ("offline", "offline")
    assert result.cost_usd == Decimal(0)
    assert "offline" in result.text and "What is Guildstack?" in result.text
    assert len(ledger.records) == 1 and ledger.held == {}


async def test_given_the_offline_provider_then_answers_are_deterministic() -> None:
    offline = OfflineProvider()
    first = await offline.complete("offline", ask("same"))
    again = await offline.complete("offline", ask("same"))
    other = await offline.complete("offline", ask("different"))
    assert first.text == again.text != other.text


async def test_given_a_json_schema_then_the_offline_provider_returns_valid_json() -> None:
    schema = {
        "type": "object",
        "properties": {
            "agents": {"type": "array", "items": {"type": "string", "enum": ["seo", "design"]}},
            "confidence": {"type": "number", "minimum": 0.2},
            "count": {"type": "integer"},
            "urgent": {"type": "boolean"},
            "note": {"type": ["string", "null"], "minLength": 20},
        },
        "required": ["agents"],
    }
    result = await OfflineProvider().complete("offline", ask("route me", json_schema=schema))

    value = json.loads(result.text)
    assert value["agents"][0] in {"seo", "design"}
    assert value["confidence"] >= 0.2 and isinstance(value["count"], int)
    assert value["urgent"] is True and len(value["note"]) >= 20


async def test_given_the_offline_provider_when_streaming_then_several_deltas_then_the_result() -> (
    None
):
    items = [i async for i in OfflineProvider().stream("offline", ask("stream please"))]

    deltas = [i.text for i in items if isinstance(i, Delta)]
    final = items[-1]
    assert len(deltas) >= 3
    assert isinstance(final, Completion) and "".join(deltas) == final.text


async def test_given_a_budget_that_affords_only_fast_then_strong_is_downgraded_and_recorded() -> (
    None
):
    # haiku-4-5 at 1,000 output tokens ≈ 0.005; sonnet ≈ 0.015; opus ≈ 0.025
    ledger = InMemoryLedger(budget=Decimal("0.008"))
    provider = ScriptedProvider("anthropic", ["fine"])
    model = metered(ledger, provider)

    result = await model.complete(ask(tier=Tier.STRONG, max_tokens=1000), CONTEXT)

    assert provider.calls[0][0] == "claude-haiku-4-5"
    assert (result.tier, result.downgraded_from) == (Tier.FAST, Tier.STRONG)


async def test_given_no_tier_affordable_then_refused_before_any_provider_call() -> None:
    ledger = InMemoryLedger(budget=Decimal("0.001"))
    provider = ScriptedProvider("anthropic", ["never"])

    with pytest.raises(BudgetExceeded):
        await metered(ledger, provider).complete(ask(max_tokens=1000), CONTEXT)
    assert provider.calls == [] and ledger.held == {}


async def test_given_the_provider_fails_then_the_reservation_is_released() -> None:
    ledger = InMemoryLedger(budget=Decimal("5"))
    provider = ScriptedProvider("anthropic", [ProviderUnavailable("down")])

    with pytest.raises(ProviderUnavailable):
        await metered(ledger, provider).complete(ask(), CONTEXT)
    assert ledger.held == {} and ledger.records == []


async def test_given_a_stream_abandoned_midway_then_the_reservation_is_released() -> None:
    ledger = InMemoryLedger(budget=Decimal("5"))
    stream = metered(ledger, ScriptedProvider("anthropic", ["a b c d"])).stream(ask(), CONTEXT)

    first = await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]

    assert isinstance(first, Delta)
    assert ledger.held == {} and ledger.records == []


async def test_given_an_explicit_model_then_tiers_are_skipped_and_its_price_applies() -> None:
    ledger = InMemoryLedger()
    provider = ScriptedProvider("openai", ["hi"])

    result = await metered(ledger, provider).complete(ask(model="openai/gpt-5"), CONTEXT)

    assert provider.calls[0][0] == "gpt-5"
    assert (
        result.tier is None
        and result.cost_usd == (10 * Decimal("1.25") + 2 * Decimal("10")) / 1_000_000
    )


async def test_given_an_unpriced_compatible_model_then_the_default_price_holds_the_budget() -> None:
    from guildstack.bootstrap import build
    from guildstack.config import Settings

    settings = Settings(
        openai_compatible_base_url="http://models.invalid/v1",
        compatible_input_price_usd=Decimal("3"),
        compatible_output_price_usd=Decimal("15"),
    )
    book = build(settings).model_book
    provider = ScriptedProvider("compatible", ["spent"])
    chain = FailoverChain({provider.name: provider})
    request = ask(model="compatible/meta-llama/llama-3.1-70b", max_tokens=1000)

    # 1,000 output tokens at 15 per million is 0.015: a budget of 0.01 cannot cover it.
    poor = InMemoryLedger(budget=Decimal("0.01"))
    with pytest.raises(BudgetExceeded):
        await MeteredModel(chain, book, poor.uow).complete(request, CONTEXT)
    assert provider.calls == []

    rich = InMemoryLedger(budget=Decimal("1"))
    result = await MeteredModel(chain, book, rich.uow).complete(request, CONTEXT)
    assert result.cost_usd == (10 * Decimal(3) + 5 * Decimal(15)) / 1_000_000 > 0
