"""The self-audit's findings and the rules that turn operational facts into them.

The daily operations audit reads facts (stuck runs, dead steps, queue depth, spend, ...)
through the audit repository; the functions here decide what is worth a finding and how
severe it is. A finding names a workspace (read by that workspace's admins) or none (a
system finding, read by no tenant).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

# The product's target: what serving one active user may cost per month, in US dollars.
COST_PER_USER_TARGET_USD = Decimal(10)
# Budget burn projected to the month's end: a warning from 80 %, critical from 100 %.
BUDGET_WARNING_RATIO = Decimal("0.8")
BUDGET_CRITICAL_RATIO = Decimal(1)
# A provider whose calls needed retries this often (retries / attempts) is reported.
PROVIDER_RETRY_WARNING_RATIO = 0.2
PROVIDER_MIN_CALLS = 5


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AuditKind(StrEnum):
    OPERATIONS = "operations"  # the daily checks
    REFLECTION = "reflection"  # the weekly per-workspace recommendations


class Check(StrEnum):
    STUCK_RUNS = "stuck_runs"
    DEAD_STEPS = "dead_steps"
    DLQ_DEPTH = "dlq_depth"
    FAILED_DOCUMENTS = "failed_documents"
    PROVIDER_FAILURES = "provider_failures"
    OPEN_BREAKERS = "open_breakers"
    BUDGET_BURN = "budget_burn"
    COST_PER_USER = "cost_per_user"
    SCHEMA_DRIFT = "schema_drift"
    WEEKLY_REFLECTION = "weekly_reflection"


@dataclass(frozen=True)
class Finding:
    audit: AuditKind
    check: Check
    severity: Severity
    subject: str
    details: dict[str, Any] = field(default_factory=dict)
    workspace_id: UUID | None = None


@dataclass(frozen=True)
class StoredFinding:
    id: UUID
    finding: Finding
    created_at: datetime


def ops(
    check: Check,
    severity: Severity,
    subject: str,
    details: dict[str, Any],
    workspace_id: UUID | None = None,
) -> Finding:
    return Finding(AuditKind.OPERATIONS, check, severity, subject, details, workspace_id)


def month_elapsed(now: datetime) -> Decimal:
    """How much of `now`'s month has passed, in (0, 1]."""
    days = calendar.monthrange(now.year, now.month)[1]
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    seconds = Decimal(str((now - start).total_seconds()))
    return max(Decimal("0.0001"), min(Decimal(1), seconds / (days * 86_400)))


def budget_burn(
    workspace_id: UUID, spent: Decimal, budget: Decimal, now: datetime
) -> Finding | None:
    """Spend so far projected linearly to the month's end: a warning at 80 % of the budget,
    critical at 100 % (or when the budget is already spent); nothing below."""
    if budget <= 0:
        return None
    spent_ratio = spent / budget
    projected = spent / month_elapsed(now)
    projected_ratio = projected / budget
    ratio = max(spent_ratio, projected_ratio)
    if ratio < BUDGET_WARNING_RATIO:
        return None
    critical = ratio >= BUDGET_CRITICAL_RATIO
    return ops(
        Check.BUDGET_BURN,
        Severity.CRITICAL if critical else Severity.WARNING,
        f"Budget on course to reach {round(projected_ratio * 100)} % by the month's end "
        f"({round(spent_ratio * 100)} % spent)",
        {
            "budget_usd": float(budget),
            "spent_usd": float(spent),
            "spent_ratio": round(float(spent_ratio), 4),
            "projected_usd": round(float(projected), 4),
            "projected_ratio": round(float(projected_ratio), 4),
        },
        workspace_id,
    )


def cost_per_user(
    workspace_id: UUID | None, spent: Decimal, active_users: int, now: datetime
) -> Finding | None:
    """The month's spend per active user, projected to the month's end, against the $10
    target: a warning above it."""
    if active_users <= 0 or spent <= 0:
        return None
    projected = spent / month_elapsed(now) / active_users
    if projected <= COST_PER_USER_TARGET_USD:
        return None
    return ops(
        Check.COST_PER_USER,
        Severity.WARNING,
        f"Cost per active user on course for ${projected:.2f} this month "
        f"(target ${COST_PER_USER_TARGET_USD})",
        {
            "spent_usd": float(spent),
            "active_users": active_users,
            "projected_per_user_usd": round(float(projected), 4),
            "target_usd": float(COST_PER_USER_TARGET_USD),
        },
        workspace_id,
    )


def provider_failures(provider: str, calls: int, attempts: int) -> Finding | None:
    """A provider whose completed calls needed retries in more than 20 % of attempts."""
    if calls < PROVIDER_MIN_CALLS or attempts <= 0:
        return None
    retries = attempts - calls
    ratio = retries / attempts
    if ratio <= PROVIDER_RETRY_WARNING_RATIO:
        return None
    return ops(
        Check.PROVIDER_FAILURES,
        Severity.WARNING,
        f"Provider {provider}: {round(ratio * 100)} % of attempts failed and were retried",
        {"provider": provider, "calls": calls, "attempts": attempts, "retry_ratio": ratio},
    )
