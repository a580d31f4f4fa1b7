"""Budgets against the real ledger: concurrent calls racing a nearly spent budget, refusal
without a provider request, and the cheaper tier chosen when the wanted one is too dear."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from guildstack.adapters.models.anthropic import AnthropicProvider
from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.bootstrap import Container, build
from guildstack.config import Settings
from guildstack.domain.errors import BudgetExceeded
from guildstack.domain.models import CallContext, ChatMessage, ModelRequest, Tier
from guildstack.domain.principal import Principal
from guildstack.services.failover import FailoverChain
from tests.fakes import wire
from tests.fakes.wire import ScriptedTransport
from tests.fixtures.postgres import MakeUser, claims_for, create_workspace

# claude-haiku-4-5: 1.00 in / 5.00 out per million. 1,000 output tokens ≈ USD 0.005 a call.
REQUEST = ModelRequest(
    system="Summarize.",
    messages=(ChatMessage("user", "The quarterly numbers, briefly."),),
    tier=Tier.FAST,
    max_tokens=1000,
)


async def _setup(
    database: PostgresDatabase, make_user: MakeUser, budget: float, reply: wire.Reply
) -> tuple[Container, ScriptedTransport, CallContext]:
    user = await make_user()
    workspace = await create_workspace(database, user, monthly_budget_usd=budget)
    transport = ScriptedTransport([reply])
    chain = FailoverChain({"anthropic": AnthropicProvider("k", http_client=transport.client())})
    container = build(Settings(stage="test"), database=database, failover=chain)
    return container, transport, CallContext(workspace_id=workspace, user_id=user)


async def _spent(database: PostgresDatabase, context: CallContext) -> Decimal:
    async with database.service_transaction("test") as conn:
        cur = await conn.execute(
            "select coalesce(sum(cost_usd), 0) as total from public.usage where workspace_id = %s",
            (context.workspace_id,),
        )
        row = await cur.fetchone()
    assert row is not None
    return Decimal(row["total"])


async def test_given_concurrent_calls_racing_a_budget_then_spend_stays_within_one_estimate(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    reply = wire.anthropic_message("ok", input_tokens=40, output_tokens=950)
    container, transport, context = await _setup(database, make_user, 0.03, reply)
    plan = await container.model.plan(REQUEST, context)  # type: ignore[attr-defined]

    outcomes = await asyncio.gather(
        *(container.model.complete(REQUEST, context) for _ in range(16)), return_exceptions=True
    )

    succeeded = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BudgetExceeded)]
    assert len(succeeded) + len(refused) == 16  # nothing else went wrong
    assert succeeded and refused
    spent = await _spent(database, context)
    assert spent <= Decimal("0.03") + plan.estimate_usd
    assert len(transport.requests) == len(succeeded)


async def test_given_an_exhausted_budget_when_calling_then_refused_without_a_provider_request(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    reply = wire.anthropic_message("ok", input_tokens=40, output_tokens=950)
    container, transport, context = await _setup(database, make_user, 0.01, reply)
    for _ in range(2):
        await container.model.complete(REQUEST, context)
    sent = len(transport.requests)

    with pytest.raises(BudgetExceeded):
        await container.model.complete(REQUEST, context)
    with pytest.raises(BudgetExceeded):
        async for _ in container.model.stream(REQUEST, context):
            pass

    assert len(transport.requests) == sent == 2


async def test_given_a_budget_too_small_for_the_strong_tier_then_a_cheaper_tier_is_chosen(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    # opus-4-6 (25.00 out) cannot afford 1,000 output tokens with USD 0.02 left; haiku can.
    container, transport, context = await _setup(
        database, make_user, 0.02, wire.anthropic_message("ok", output_tokens=10)
    )
    request = ModelRequest(
        system="Plan.", messages=(ChatMessage("user", "A strategy."),), tier=Tier.STRONG
    )

    result = await container.model.complete(request, context)

    assert transport.bodies()[0]["model"] in {"claude-sonnet-4-6", "claude-haiku-4-5"}
    assert result.downgraded_from is Tier.STRONG and result.tier is not Tier.STRONG
    async with database.service_transaction("test") as conn:
        cur = await conn.execute(
            "select tier, requested_tier from public.usage where workspace_id = %s",
            (context.workspace_id,),
        )
        row = await cur.fetchone()
    assert row is not None and (row["tier"], row["requested_tier"]) == (result.tier, "strong")


async def test_given_a_run_budget_when_it_is_spent_then_the_run_is_refused_but_not_the_workspace(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    import uuid
    from dataclasses import replace

    reply = wire.anthropic_message("ok", input_tokens=40, output_tokens=950)
    container, transport, context = await _setup(database, make_user, 5, reply)
    run = replace(context, run_id=uuid.uuid4(), run_budget_usd=Decimal("0.008"))

    await container.model.complete(REQUEST, run)
    with pytest.raises(BudgetExceeded):
        await container.model.complete(REQUEST, run)
    await container.model.complete(REQUEST, context)  # the workspace still has money

    assert len(transport.requests) == 2


async def test_given_a_member_then_the_budget_left_is_read_in_their_own_transaction(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    """A member's look at the budget (before a chat turn) reads it without the system's
    lock on the month's spend: the row-level security of their transaction applies."""
    reply = wire.anthropic_message("ok", input_tokens=40, output_tokens=950)
    container, _, context = await _setup(database, make_user, 0.5, reply)
    await container.model.complete(REQUEST, context)
    spent = await _spent(database, context)
    assert context.user_id is not None
    member = Principal(context.user_id, None, claims_for(context.user_id))

    async with container.uow(member) as tx:
        left = await tx.ledger.remaining(context)

    assert left == Decimal("0.5") - spent
