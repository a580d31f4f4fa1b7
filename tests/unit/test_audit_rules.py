"""The self-audit's rules: budget burn projected to the month's end, cost per active user
against the target, provider retry rates."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from guildstack.domain.audits import (
    Check,
    Severity,
    budget_burn,
    cost_per_user,
    month_elapsed,
    provider_failures,
)

WS = uuid.uuid4()
LAST_DAY = datetime(2026, 4, 30, 23, 0, tzinfo=UTC)
TENTH = datetime(2026, 4, 10, 0, 0, tzinfo=UTC)  # 9 of 30 days gone


def test_given_the_month_then_the_elapsed_share_is_linear() -> None:
    assert month_elapsed(TENTH) == Decimal("0.3")
    assert month_elapsed(datetime(2026, 4, 1, tzinfo=UTC)) > 0  # never divides by zero


@pytest.mark.parametrize(
    ("spent", "now", "severity"),
    [
        ("85", LAST_DAY, Severity.WARNING),  # 85 % spent, the month nearly over
        ("85", TENTH, Severity.CRITICAL),  # 85 % spent by the tenth: on course for 283 %
        ("27", TENTH, Severity.WARNING),  # on course for 90 %
        ("100", LAST_DAY, Severity.CRITICAL),
        ("20", TENTH, None),  # on course for 67 %
        ("79", LAST_DAY, None),
    ],
)
def test_given_spend_then_budget_burn_warns_at_80_and_is_critical_at_100_percent(
    spent: str, now: datetime, severity: Severity | None
) -> None:
    found = budget_burn(WS, Decimal(spent), Decimal(100), now)
    assert (found.severity if found else None) is severity
    if found:
        assert found.check is Check.BUDGET_BURN and found.workspace_id == WS
        assert found.details["spent_ratio"] == float(Decimal(spent) / 100)


def test_given_no_budget_then_no_burn_finding() -> None:
    assert budget_burn(WS, Decimal(5), Decimal(0), TENTH) is None


def test_given_spend_per_user_then_only_over_ten_dollars_a_month_is_reported() -> None:
    # $3 by the tenth for one user is on course for $10: at the target, not over it.
    assert cost_per_user(WS, Decimal(3), 1, TENTH) is None
    found = cost_per_user(WS, Decimal("3.3"), 1, TENTH)
    assert found is not None and found.severity is Severity.WARNING
    assert found.details["projected_per_user_usd"] == 11.0
    assert cost_per_user(WS, Decimal("3.3"), 2, TENTH) is None
    assert cost_per_user(WS, Decimal(100), 0, TENTH) is None


def test_given_provider_attempts_then_a_retry_rate_over_20_percent_is_reported() -> None:
    assert provider_failures("anthropic", 10, 12) is None  # 17 %
    found = provider_failures("anthropic", 10, 15)  # 33 %
    assert found is not None and found.details["retry_ratio"] == pytest.approx(1 / 3)
    assert provider_failures("anthropic", 2, 6) is None  # too few calls to say
