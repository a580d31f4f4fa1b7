"""Model ports: one provider (an adapter per vendor) and the metered model services call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from guildstack.domain.models import CallContext, Completion, ModelRequest, StreamItem, Ticket
from guildstack.ports.usage import UsageLedger


class ModelProvider(Protocol):
    """One vendor's API. Raises `ProviderFailed` for a failed attempt (retryable or not) and
    `InvalidRequest` when the vendor rejects the request itself. Never retries on its own."""

    name: str

    async def complete(self, model: str, request: ModelRequest) -> Completion: ...

    def stream(self, model: str, request: ModelRequest) -> AsyncIterator[StreamItem]:
        """Text deltas, then exactly one `Completion` (full text and usage) as the last item."""
        ...


class LanguageModel(Protocol):
    """What services call: tier choice, budget check, failover and the usage ledger included."""

    async def reserve(
        self, ledger: UsageLedger, request: ModelRequest, context: CallContext
    ) -> Ticket:
        """Plan the call and reserve its worst-case cost in the caller's transaction;
        `BudgetExceeded` when nothing affordable fits."""
        ...

    async def complete(
        self,
        request: ModelRequest,
        context: CallContext,
        *,
        settle: bool = True,
        ticket: Ticket | None = None,
    ) -> Completion:
        """The answer, priced and recorded; `BudgetExceeded` before any provider call when
        the workspace (or run) cannot afford it; `ProviderUnavailable` when no provider can.
        With `settle=False` the usage row is not written: the completion's `unsettled`
        reservation is for the caller to settle in the transaction that records the result,
        so a result and its cost commit together (or expire together). With a `ticket`
        (from `reserve`) the call uses that plan and reservation."""
        ...

    def stream(
        self,
        request: ModelRequest,
        context: CallContext,
        *,
        settle: bool = True,
        ticket: Ticket | None = None,
    ) -> AsyncIterator[StreamItem]:
        """As `complete`, streaming: deltas, then the priced `Completion` last."""
        ...
