"""The spend ledger (reserve, settle, release) and usage reports, bound to a unit of work."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from guildstack.domain.models import CallContext
from guildstack.domain.usage import GroupBy, Reservation, UsageRecord, UsageReport


class UsageLedger(Protocol):
    async def remaining(self, context: CallContext) -> Decimal | None:
        """What the workspace (and the run, if capped) can still spend; None: no limit."""
        ...

    async def reserve(self, context: CallContext, amount_usd: Decimal) -> Reservation:
        """Set `amount_usd` aside, or raise `BudgetExceeded` if what is left cannot cover it.
        Concurrent reservations of one workspace happen one at a time; reservations expire
        on their own, so a crashed caller cannot hold money forever."""
        ...

    async def settle(self, reservation: Reservation, record: UsageRecord) -> None:
        """Replace the reservation by the call's actual cost and its usage row."""
        ...

    async def release(self, reservation: Reservation) -> None:
        """Give the reservation back (the call never completed)."""
        ...

    async def report(
        self, workspace_id: UUID, start: datetime, end: datetime, group_by: GroupBy | None
    ) -> UsageReport:
        """Totals (and groups) of the workspace's usage in [start, end)."""
        ...
