"""`MeteredModel`: the model port services use. Picks the tier the budget allows, reserves
the call's worst-case cost (one system transaction), calls through the failover chain, then
records what it cost (another, or the caller's own when it settles the call itself)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from decimal import Decimal

from guildstack.domain.cache import CacheType, response_key
from guildstack.domain.errors import BudgetExceeded
from guildstack.domain.metrics import call_dimensions
from guildstack.domain.models import (
    OFFLINE,
    CallContext,
    CallPlan,
    Completion,
    Delta,
    ModelRef,
    ModelRequest,
    Reservation,
    StreamItem,
    Ticket,
    Tier,
    Usage,
    tier_for,
)
from guildstack.domain.pricing import ModelBook
from guildstack.domain.usage import UsageRecord
from guildstack.observability import call_metrics, logger
from guildstack.ports.uow import UnitOfWork
from guildstack.ports.usage import UsageLedger
from guildstack.services.cache import CacheService
from guildstack.services.failover import FailoverChain

OFFLINE_REF = ModelRef(OFFLINE, OFFLINE)


class MeteredModel:
    def __init__(
        self,
        chain: FailoverChain,
        book: ModelBook,
        uow: UnitOfWork,
        *,
        clock: Callable[[], float] = time.perf_counter,
        guilds: Callable[[], Mapping[str, str]] | None = None,
        cache: CacheService | None = None,
    ) -> None:
        self._chain = chain
        self._book = book
        self._uow = uow
        self._clock = clock
        # The built-in agents' guilds by code: metric dimensions name only these (bounded).
        self._guilds = guilds or dict
        # Deterministic requests' answers (temperature 0), per workspace.
        self._cache = cache

    async def plan(self, request: ModelRequest, context: CallContext) -> CallPlan:
        """The models to try and the most the call may cost: the requested tier when the
        budget affords it, else the next cheaper tier; `BudgetExceeded` when none fits."""
        async with self._uow.system("budget check") as tx:
            return await self._plan(tx.ledger, request, context)

    async def reserve(
        self, ledger: UsageLedger, request: ModelRequest, context: CallContext
    ) -> Ticket:
        """Plan and reserve the call in the caller's transaction (`BudgetExceeded` when the
        budget cannot cover it), to make it later with `ticket=`."""
        plan = await self._plan(ledger, request, context)
        return Ticket(plan, await ledger.reserve(context, plan.estimate_usd))

    async def complete(
        self,
        request: ModelRequest,
        context: CallContext,
        *,
        settle: bool = True,
        ticket: Ticket | None = None,
    ) -> Completion:
        plan, reservation = await self._ticket(ticket, request, context)
        started = self._clock()
        key = self._cache_key(request, context)
        hit = await self._cached(key, context, started)
        if hit is not None:
            return await self._priced(reservation, plan, context, hit, started, settle)
        try:
            result = await self._chain.complete(plan.chain, request)
        except BaseException:
            self._failed(context, plan)
            await self._release(reservation)
            raise
        await self._remember(key, context, result)
        return await self._priced(reservation, plan, context, result, started, settle)

    async def stream(
        self,
        request: ModelRequest,
        context: CallContext,
        *,
        settle: bool = True,
        ticket: Ticket | None = None,
    ) -> AsyncIterator[StreamItem]:
        plan, reservation = await self._ticket(ticket, request, context)
        started = self._clock()
        key = self._cache_key(request, context)
        hit = await self._cached(key, context, started)
        if hit is not None:
            yield Delta(hit.text)
            yield await self._priced(reservation, plan, context, hit, started, settle)
            return
        done = False
        try:
            async for item in self._chain.stream(plan.chain, request):
                if isinstance(item, Delta):
                    yield item
                else:
                    await self._remember(key, context, item)
                    completion = await self._priced(
                        reservation, plan, context, item, started, settle
                    )
                    done = True
                    yield completion
        finally:
            if not done:
                self._failed(context, plan)
                await self._release(reservation)

    async def _plan(
        self, ledger: UsageLedger, request: ModelRequest, context: CallContext
    ) -> CallPlan:
        remaining = await ledger.remaining(context)
        cap = context.spend_cap_usd
        if cap is not None:
            remaining = cap if remaining is None else min(remaining, cap)
        input_tokens = request.estimated_input_tokens()
        if request.model is not None:
            chain: tuple[ModelRef, ...] = (ModelRef.parse(request.model),)
            estimate = self._estimate(chain, input_tokens, request.max_tokens)
            _check_affordable(estimate, remaining)
            return CallPlan(chain, estimate, None, None)
        wanted = tier_for(request.task_type, request.tier)
        tier: Tier | None = wanted
        while tier is not None:
            chain = self._book.chain(tier, self._chain.available) or self._offline()
            estimate = self._estimate(chain, input_tokens, request.max_tokens)
            if remaining is None or estimate <= remaining:
                downgraded = wanted if tier != wanted else None
                return CallPlan(chain, estimate, tier, downgraded)
            tier = tier.cheaper()
        raise _over_budget(remaining)

    async def _ticket(
        self, ticket: Ticket | None, request: ModelRequest, context: CallContext
    ) -> tuple[CallPlan, Reservation]:
        if ticket is None:
            async with self._uow.system("budget reservation") as tx:
                ticket = await self.reserve(tx.ledger, request, context)
        return ticket.plan, ticket.reservation

    async def _release(self, reservation: Reservation) -> None:
        async with self._uow.system("budget release") as tx:
            await tx.ledger.release(reservation)

    async def _priced(
        self,
        reservation: Reservation,
        plan: CallPlan,
        context: CallContext,
        result: Completion,
        started: float,
        settle: bool,
    ) -> Completion:
        ref = ModelRef(result.provider, result.model)
        completion = replace(
            result,
            cost_usd=self._book.price(ref).cost(result.usage),
            tier=plan.tier,
            downgraded_from=plan.downgraded_from,
            latency_ms=round((self._clock() - started) * 1000, 3),
        )
        if settle:
            async with self._uow.system("usage settlement") as tx:
                await tx.ledger.settle(reservation, UsageRecord.of(context, completion))
        else:
            completion = replace(completion, unsettled=reservation)
        _emit_metrics(context, completion, self._dimensions(context, ref))
        return completion

    def _cache_key(self, request: ModelRequest, context: CallContext) -> str | None:
        return response_key(request, context.workspace_id) if self._cache else None

    async def _cached(
        self, key: str | None, context: CallContext, started: float
    ) -> Completion | None:
        """A deterministic request's earlier answer: no provider request, no tokens, no cost."""
        if key is None or self._cache is None:
            return None
        raw = await self._cache.get(CacheType.AGENT_RESPONSE, context.workspace_id, key)
        if raw is None:
            return None
        try:
            saved = json.loads(raw)
            return Completion(
                str(saved["text"]),
                Usage(),
                str(saved["provider"]),
                str(saved["model"]),
                latency_ms=round((self._clock() - started) * 1000, 3),
                stop_reason=saved.get("stop_reason"),
                attempts=0,
                cached=True,
            )
        except (ValueError, KeyError, TypeError):
            return None  # an entry this version cannot read: ask the model

    async def _remember(self, key: str | None, context: CallContext, result: Completion) -> None:
        if key is None or self._cache is None:
            return
        saved = {
            "text": result.text,
            "provider": result.provider,
            "model": result.model,
            "stop_reason": result.stop_reason,
        }
        await self._cache.put(
            CacheType.AGENT_RESPONSE, context.workspace_id, key, json.dumps(saved)
        )

    def _dimensions(self, context: CallContext, ref: ModelRef | None) -> dict[str, str]:
        return call_dimensions(context.agent_code, ref, self._guilds(), self._book)

    def _failed(self, context: CallContext, plan: CallPlan) -> None:
        call_metrics(self._dimensions(context, plan.chain[0] if plan.chain else None), ok=False)

    def _estimate(self, chain: tuple[ModelRef, ...], input_tokens: int, output: int) -> Decimal:
        # Failover may land on any model of the chain: reserve for the dearest.
        return max(self._book.price(ref).estimate(input_tokens, output) for ref in chain)

    def _offline(self) -> tuple[ModelRef, ...]:
        return (OFFLINE_REF,) if OFFLINE in self._chain.available else ()


async def settle_in(ledger: UsageLedger, context: CallContext, completion: Completion) -> None:
    """Record a call made with `settle=False` in the caller's transaction."""
    if completion.unsettled is not None:
        await ledger.settle(completion.unsettled, UsageRecord.of(context, completion))


def _check_affordable(estimate: Decimal, remaining: Decimal | None) -> None:
    if remaining is not None and estimate > remaining:
        raise _over_budget(remaining)


def _over_budget(remaining: Decimal | None) -> BudgetExceeded:
    left = f"{remaining:.4f}" if remaining is not None else "0"
    return BudgetExceeded(
        f"The budget cannot cover this model call (USD {left} left); raise the workspace's "
        "monthly budget or the run's budget."
    )


def _emit_metrics(context: CallContext, completion: Completion, dimensions: dict[str, str]) -> None:
    logger.info(
        "model call",
        extra={
            "model": f"{completion.provider}/{completion.model}",
            "agent": context.agent_code,
            "input_tokens": completion.usage.input_tokens,
            "output_tokens": completion.usage.output_tokens,
            "cost_usd": str(completion.cost_usd),
            "latency_ms": completion.latency_ms,
            "attempts": completion.attempts,
            "downgraded_from": completion.downgraded_from,
        },
    )
    call_metrics(
        dimensions,
        ok=True,
        tokens=completion.usage.input_tokens + completion.usage.output_tokens,
        cost_usd=completion.cost_usd,
        latency_ms=completion.latency_ms,
    )
