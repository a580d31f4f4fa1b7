"""Usage reports: tokens and cost over a window, grouped, with the monthly budget.

A window that starts on a day boundary (the default, the first of the month) is read in two
parts: its closed days from the cache (`usage_summary`), the rest live. Usage rows are only
ever inserted, with the time of the transaction that wrote them; a day counts as closed an
hour after it ended (UTC), once no transaction that began in it can still be writing. So a
closed part, once stored, is what the ledger will always say for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from guildstack.domain.authorization import Action
from guildstack.domain.cache import CacheType
from guildstack.domain.errors import InvalidInput
from guildstack.domain.identity import Principal
from guildstack.domain.usage import GroupBy, UsageGroup, UsageReport, UsageTotals
from guildstack.ports.uow import Tx, UnitOfWork
from guildstack.services.access import authorized
from guildstack.services.cache import CacheService

MAX_WINDOW = timedelta(days=366)
# How long after midnight (UTC) a day's usage may still be written by a transaction that
# began before it.
SETTLING = timedelta(hours=1)


class UsageService:
    def __init__(self, uow: UnitOfWork, cache: CacheService | None = None) -> None:
        self._uow = uow
        self._cache = cache

    async def report(
        self,
        actor: Principal,
        workspace_id: UUID,
        start: datetime | None,
        end: datetime | None,
        group_by: GroupBy | None,
        *,
        now: datetime | None = None,
    ) -> UsageReport:
        """Defaults: from the first of this month (UTC) until now."""
        now = now or datetime.now(UTC)
        end = _aware(end) if end else now
        start = (
            _aware(start)
            if start
            else now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        )
        closed_until = _closed_until(now)
        split = self._cache is not None and _at_midnight(start) and start < closed_until <= end
        key = _closed_key(start, closed_until, group_by)
        found = None
        if split and self._cache is not None:
            found = await self._cache.lookup(CacheType.USAGE_SUMMARY, workspace_id, key)
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.READ_USAGE)
            if start >= end:
                raise InvalidInput(
                    "`from` must be before `to`.",
                    [{"loc": ["query", "from"], "msg": "after to", "type": "value_error"}],
                )
            if end - start > MAX_WINDOW:
                raise InvalidInput("A usage window spans at most 366 days.")
            if not split:
                return await tx.ledger.report(workspace_id, start, end, group_by)
            live = await tx.ledger.report(workspace_id, closed_until, end, group_by)
            if found is not None and found.value is not None:
                closed = _decoded(found.value)
            else:
                closed = await self._closed(tx, workspace_id, start, closed_until, group_by)
                if found is not None and self._cache is not None:
                    await self._cache.store(
                        CacheType.USAGE_SUMMARY, workspace_id, key, _encoded(closed),
                        found.generation,
                    )  # fmt: skip
        return _joined(start, closed, live)

    async def warm(self, workspace_id: UUID, *, now: datetime | None = None) -> int:
        """Pre-fill this month's closed days, ungrouped and by each grouping (the hourly
        warm-up, as the system); how many summaries were stored."""
        if self._cache is None:
            return 0
        now = now or datetime.now(UTC)
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        closed_until = _closed_until(now)
        if start >= closed_until:
            return 0
        stored = 0
        async with self._uow.system("warm the usage summaries") as tx:
            for group_by in (None, *GroupBy):
                key = _closed_key(start, closed_until, group_by)
                found = await self._cache.lookup(CacheType.USAGE_SUMMARY, workspace_id, key)
                if found.value is None:
                    closed = await self._closed(tx, workspace_id, start, closed_until, group_by)
                    await self._cache.store(
                        CacheType.USAGE_SUMMARY, workspace_id, key, _encoded(closed),
                        found.generation,
                    )  # fmt: skip
                    stored += 1
        return stored

    async def _closed(
        self, tx: Tx, workspace_id: UUID, start: datetime, end: datetime, group_by: GroupBy | None
    ) -> Closed:
        report = await tx.ledger.report(workspace_id, start, end, group_by)
        return Closed(report.totals, report.groups)


class Closed:
    """The totals and groups of a window's closed days."""

    def __init__(self, totals: UsageTotals, groups: Sequence[UsageGroup]) -> None:
        self.totals = totals
        self.groups = list(groups)


def _closed_until(now: datetime) -> datetime:
    """The end of the last closed day: midnight (UTC) of the day `SETTLING` ago."""
    return datetime.combine((now - SETTLING).date(), time(), tzinfo=UTC)


def _at_midnight(moment: datetime) -> bool:
    return moment.astimezone(UTC).timetz().replace(tzinfo=None) == time()


def _closed_key(start: datetime, end: datetime, group_by: GroupBy | None) -> str:
    return f"{start.astimezone(UTC):%Y-%m-%d}:{end:%Y-%m-%d}:{group_by or 'none'}"


def _encoded(closed: Closed) -> str:
    return json.dumps(
        {
            "totals": asdict(closed.totals),
            "groups": [{"key": g.key, "totals": asdict(g.totals)} for g in closed.groups],
        },
        default=str,
    )


def _totals(raw: dict[str, Any]) -> UsageTotals:
    return UsageTotals(
        calls=int(raw["calls"]),
        input_tokens=int(raw["input_tokens"]),
        output_tokens=int(raw["output_tokens"]),
        cache_read_tokens=int(raw["cache_read_tokens"]),
        cache_write_tokens=int(raw["cache_write_tokens"]),
        cost_usd=Decimal(str(raw["cost_usd"])),
    )


def _decoded(raw: str) -> Closed:
    value = json.loads(raw)
    groups = [UsageGroup(g["key"], _totals(g["totals"])) for g in value["groups"]]
    return Closed(_totals(value["totals"]), groups)


def _added(a: UsageTotals, b: UsageTotals) -> UsageTotals:
    return UsageTotals(
        calls=a.calls + b.calls,
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        cache_read_tokens=a.cache_read_tokens + b.cache_read_tokens,
        cache_write_tokens=a.cache_write_tokens + b.cache_write_tokens,
        cost_usd=a.cost_usd + b.cost_usd,
    )


def _joined(start: datetime, closed: Closed, live: UsageReport) -> UsageReport:
    """The whole window: the closed days and the live rest, groups added by key and
    ordered as the ledger orders them (cost, highest first; then key, no key last)."""
    merged: dict[str | None, UsageTotals] = {g.key: g.totals for g in closed.groups}
    for group in live.groups:
        merged[group.key] = _added(merged.get(group.key, UsageTotals()), group.totals)
    groups = [UsageGroup(key, totals) for key, totals in merged.items()]
    groups.sort(key=lambda g: (-g.totals.cost_usd, g.key is None, g.key or ""))
    totals = _added(closed.totals, live.totals)
    return replace(live, start=start, totals=totals, groups=groups)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
