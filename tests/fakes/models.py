"""In-memory stand-ins for the model ports (unit tests of services only)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

from guildstack.adapters.models.offline import OfflineProvider
from guildstack.domain.errors import BudgetExceeded, GuildstackError
from guildstack.domain.models import (
    CallContext,
    Completion,
    Delta,
    ModelRequest,
    StreamItem,
    Usage,
)
from guildstack.domain.usage import Reservation, UsageRecord


@dataclass
class ScriptedProvider:
    """Plays `script` in order: a string answers, an error is raised (the last repeats)."""

    name: str
    script: list[str | GuildstackError]
    calls: list[tuple[str, ModelRequest]] = field(default_factory=list)

    def _next(self, model: str, request: ModelRequest) -> str:
        self.calls.append((model, request))
        step = self.script[min(len(self.calls), len(self.script)) - 1]
        if isinstance(step, GuildstackError):
            raise step
        return step

    async def complete(self, model: str, request: ModelRequest) -> Completion:
        text = self._next(model, request)
        return Completion(text, Usage(10, len(text)), self.name, model, latency_ms=1.0)

    async def stream(self, model: str, request: ModelRequest) -> AsyncIterator[StreamItem]:
        text = self._next(model, request)
        for word in text.split(" "):
            yield Delta(word)
        yield Completion(text, Usage(10, len(text)), self.name, model, latency_ms=1.0)


@dataclass
class InMemoryLedger:
    """A spend ledger over one workspace's budget, without a database."""

    budget: Decimal | None = None
    spent: Decimal = Decimal(0)
    held: dict[uuid.UUID, Decimal] = field(default_factory=dict)
    records: list[UsageRecord] = field(default_factory=list)

    async def remaining(self, context: CallContext) -> Decimal | None:
        if self.budget is None:
            return None
        return max(Decimal(0), self.budget - self.spent - sum(self.held.values()))

    async def reserve(self, context: CallContext, amount_usd: Decimal) -> Reservation:
        left = await self.remaining(context)
        if left is not None and amount_usd > left:
            raise BudgetExceeded("over budget")
        reservation = Reservation(uuid.uuid4(), context.workspace_id, amount_usd)
        self.held[reservation.id] = amount_usd
        return reservation

    async def settle(self, reservation: Reservation, record: UsageRecord) -> None:
        del self.held[reservation.id]
        self.spent += record.completion.cost_usd
        self.records.append(record)

    async def release(self, reservation: Reservation) -> None:
        del self.held[reservation.id]


class AskingOffline(OfflineProvider):
    """The offline provider, except that a prompt containing `[ask]` makes the agent ask
    the user a question first (and answer normally once the prompt holds the answer)."""

    def answer(self, request: ModelRequest) -> str:
        prompt = request.messages[-1].content if request.messages else ""
        if "[ask]" in prompt and "# The user answered" not in prompt:
            return "QUESTION: Which market should we launch in first?"
        return super().answer(request)
