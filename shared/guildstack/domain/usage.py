"""The usage ledger's vocabulary: one record per model call, summaries and budgets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from guildstack.domain.models import CallContext, Completion, Reservation
from guildstack.domain.vocabulary import GroupBy

__all__ = [
    "BudgetStatus",
    "GroupBy",
    "Reservation",
    "UsageGroup",
    "UsageRecord",
    "UsageReport",
    "UsageTotals",
    "month_start",
]


# The ledger's status of a call answered from the response cache (no provider, no cost).
CACHED_USAGE = "cached"


@dataclass(frozen=True)
class UsageRecord:
    """One model call, as the ledger keeps it."""

    context: CallContext
    completion: Completion
    status: str = "succeeded"

    @classmethod
    def of(cls, context: CallContext, completion: Completion) -> UsageRecord:
        if completion.cached:
            return cls(context, completion, CACHED_USAGE)
        return cls(context, completion)


@dataclass(frozen=True)
class UsageTotals:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: Decimal = Decimal(0)


@dataclass(frozen=True)
class UsageGroup:
    key: str | None
    totals: UsageTotals


@dataclass(frozen=True)
class BudgetStatus:
    monthly_usd: Decimal | None
    spent_usd: Decimal

    @property
    def remaining_usd(self) -> Decimal | None:
        if self.monthly_usd is None:
            return None
        return max(Decimal(0), self.monthly_usd - self.spent_usd)


@dataclass(frozen=True)
class UsageReport:
    start: datetime
    end: datetime
    totals: UsageTotals
    groups: list[UsageGroup]
    budget: BudgetStatus


def month_start(day: date) -> date:
    return day.replace(day=1)
