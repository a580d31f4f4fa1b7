"""`PostgresUsageLedger`: budget reservations, the usage ledger and usage reports.

Reservations and settlements run in system transactions (bookkeeping, never a user's
write); reports run under the caller's RLS. Every reservation first locks the workspace's
spend row for the month, so concurrent checks in one workspace happen one at a time.

A ledger belongs to one transaction. The budget figures it read under that lock stay true
until the transaction ends (whoever would change them waits for the lock; a release only
frees money), so the check before a reservation and the reservation itself read them once.
Its writes (reserve, settle, release) return nothing to wait for (a reservation's id is
made here): they are kept in the transaction's list and go to `private.apply_ledger` with
the run graph's save, or alone before the transaction commits or reads the ledger again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from guildstack.adapters.postgres.database import Connection
from guildstack.domain.errors import BudgetExceeded, NotFound
from guildstack.domain.models import CallContext
from guildstack.domain.usage import (
    BudgetStatus,
    GroupBy,
    Reservation,
    UsageGroup,
    UsageRecord,
    UsageReport,
    UsageTotals,
)

_MONTH = "date_trunc('month', now() at time zone 'utc')::date"

_GROUP_KEYS: dict[GroupBy, str] = {
    GroupBy.AGENT: "agent_code",
    GroupBy.MODEL: "provider || '/' || model",
    GroupBy.USER: "user_id::text",
    GroupBy.RUN: "run_id::text",
    GroupBy.DAY: "to_char(created_at at time zone 'utc', 'YYYY-MM-DD')",
}

_TOTALS = """
    count(*) as calls,
    coalesce(sum(input_tokens), 0) as input_tokens,
    coalesce(sum(output_tokens), 0) as output_tokens,
    coalesce(sum(cache_read_tokens), 0) as cache_read_tokens,
    coalesce(sum(cache_write_tokens), 0) as cache_write_tokens,
    coalesce(sum(cost_usd), 0) as cost_usd
"""

Row = dict[str, Any]


@dataclass
class _Budget:
    """A workspace's budget figures, read under its spend row's lock."""

    monthly_budget_usd: Decimal | None
    spent_usd: Decimal
    held: Decimal
    run_held: Decimal
    run_spent: Decimal


_LOOK = f"""
    select w.monthly_budget_usd, coalesce(s.spent_usd, 0) as spent_usd,
        (select coalesce(sum(cost_usd), 0) from public.usage
         where %(run)s::uuid is not null and run_id = %(run)s) as run_spent
    from public.workspaces w
    left join public.workspace_spend s on s.workspace_id = w.id and s.month = {_MONTH}
    where w.id = %(ws)s
"""  # noqa: S608 - constant expressions


async def apply_ledger(conn: Connection, writes: list[dict[str, Any]]) -> None:
    """Send the writes kept (and forget them): one statement, no result to wait for."""
    if writes:
        await conn.execute("select private.apply_ledger(%s::jsonb)", (json.dumps(writes),))
        writes.clear()


class PostgresUsageLedger:
    def __init__(
        self,
        conn: Connection,
        writes: list[dict[str, Any]],
        *,
        reservation_ttl_seconds: int = 900,
        member: bool = False,
    ) -> None:
        self._conn = conn
        self._writes = writes
        # In a member's transaction the ledger can only be looked at (see `remaining`).
        self._member = member
        self._ttl = timedelta(seconds=reservation_ttl_seconds)
        self._locked: dict[tuple[UUID, UUID | None], _Budget] = {}

    async def remaining(self, context: CallContext) -> Decimal | None:
        """What is left. In a system transaction, read under the month's spend lock (what
        is reserved included) and held until commit, as a reservation that follows needs.
        In a member's transaction (a look before a chat turn) without a lock and without
        the reservations, which are the system's bookkeeping and invisible to members."""
        if not self._member:
            return _left(await self._budget(context), context)
        cur = await self._conn.execute(_LOOK, {"ws": context.workspace_id, "run": context.run_id})
        row = await cur.fetchone()
        if row is None:
            raise NotFound("Workspace not found.")
        return _left(_Budget(**row, held=Decimal(0), run_held=Decimal(0)), context)

    async def reserve(self, context: CallContext, amount_usd: Decimal) -> Reservation:
        budget = await self._budget(context)
        left = _left(budget, context)
        if left is not None and amount_usd > left:
            raise BudgetExceeded(
                f"The budget cannot cover this model call (USD {left:.4f} left, "
                f"USD {amount_usd:.4f} needed)."
            )
        reservation = Reservation(uuid4(), context.workspace_id, amount_usd)
        self._writes.append(
            {
                "op": "reserve",
                "id": str(reservation.id),
                "workspace_id": str(context.workspace_id),
                "run_id": _str(context.run_id),
                "amount_usd": str(amount_usd),
                "ttl_seconds": self._ttl.total_seconds(),
            }
        )
        budget.held += amount_usd
        if context.run_id is not None:
            budget.run_held += amount_usd
        return reservation

    async def settle(self, reservation: Reservation, record: UsageRecord) -> None:
        context, completion = record.context, record.completion
        usage = completion.usage
        self._forget(reservation.workspace_id)
        self._writes.append(
            {
                "op": "settle",
                "reservation_id": str(reservation.id),
                "usage": {
                    "workspace_id": str(context.workspace_id),
                    "user_id": _str(context.user_id),
                    "agent_code": context.agent_code,
                    "run_id": _str(context.run_id),
                    "step_key": context.step_key,
                    "provider": completion.provider,
                    "model": completion.model,
                    "tier": _value(completion.tier),
                    "requested_tier": _value(completion.downgraded_from or completion.tier),
                    "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens,
                    "cache_read_tokens": usage.cache_read_tokens,
                    "cache_write_tokens": usage.cache_write_tokens,
                    "cost_usd": str(completion.cost_usd),
                    "latency_ms": round(completion.latency_ms),
                    "attempts": completion.attempts,
                    "status": _value(record.status),
                },
            }
        )

    async def release(self, reservation: Reservation) -> None:
        self._forget(reservation.workspace_id)
        self._writes.append({"op": "release", "id": str(reservation.id)})

    async def report(
        self, workspace_id: UUID, start: datetime, end: datetime, group_by: GroupBy | None
    ) -> UsageReport:
        await apply_ledger(self._conn, self._writes)
        window = "workspace_id = %(ws)s and created_at >= %(start)s and created_at < %(end)s"
        params = {"ws": workspace_id, "start": start, "end": end}
        cur = await self._conn.execute(
            f"select {_TOTALS} from public.usage where {window}",  # noqa: S608
            params,
        )
        totals = _totals(await cur.fetchone())
        groups: list[UsageGroup] = []
        if group_by is not None:
            key = _GROUP_KEYS[group_by]
            cur = await self._conn.execute(
                f"select {key} as key, {_TOTALS} from public.usage where {window}"  # noqa: S608
                " group by 1 order by cost_usd desc, key nulls last",
                params,
            )
            groups = [UsageGroup(r["key"], _totals(r)) for r in await cur.fetchall()]
        cur = await self._conn.execute(
            f"""
            select w.monthly_budget_usd, coalesce(s.spent_usd, 0) as spent_usd
            from public.workspaces w
            left join public.workspace_spend s on s.workspace_id = w.id and s.month = {_MONTH}
            where w.id = %s
            """,  # noqa: S608 - constant expression
            (workspace_id,),
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound("Workspace not found.")
        budget = BudgetStatus(row["monthly_budget_usd"], row["spent_usd"])
        return UsageReport(start, end, totals, groups, budget)

    async def _budget(self, context: CallContext) -> _Budget:
        """The workspace's budget, this month's spend, what is reserved (and, for a capped
        run, the run's own spend and reservations), read once per transaction under the
        month's spend row lock (`private.lock_budget`)."""
        key = (context.workspace_id, context.run_id)
        budget = self._locked.get(key)
        if budget is None:
            await apply_ledger(self._conn, self._writes)
            cur = await self._conn.execute(
                "select * from private.lock_budget(%s, %s)", (context.workspace_id, context.run_id)
            )
            row = await cur.fetchone()
            if row is None:
                raise NotFound("Workspace not found.")
            budget = self._locked[key] = _Budget(**row)
        return budget

    def holding(
        self, workspace_id: UUID, run_id: UUID | None, figures: Mapping[str, str | None] | None
    ) -> None:
        """What `private.lock_budget` returned (as text) to a statement of this transaction
        that called it: the spend row stays locked, so the figures hold until commit."""
        if figures is None:
            return
        monthly = figures["monthly_budget_usd"]
        self._locked[workspace_id, run_id] = _Budget(
            monthly_budget_usd=Decimal(monthly) if monthly is not None else None,
            spent_usd=Decimal(figures["spent_usd"] or 0),
            held=Decimal(figures["held"] or 0),
            run_held=Decimal(figures["run_held"] or 0),
            run_spent=Decimal(figures["run_spent"] or 0),
        )

    def _forget(self, workspace_id: UUID) -> None:
        """Settling or releasing changes the figures: read them again if needed."""
        for key in [k for k in self._locked if k[0] == workspace_id]:
            del self._locked[key]


def _str(value: UUID | None) -> str | None:
    return str(value) if value is not None else None


def _value(value: object) -> str | None:
    """An enum's value (or a plain string) as JSON takes it."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _left(budget: _Budget, context: CallContext) -> Decimal | None:
    """min(monthly budget, run budget) minus what is spent and reserved; None: no limit."""
    limits: list[Decimal] = []
    if budget.monthly_budget_usd is not None:
        limits.append(budget.monthly_budget_usd - budget.spent_usd - budget.held)
    if context.run_budget_usd is not None and context.run_id is not None:
        limits.append(context.run_budget_usd - budget.run_spent - budget.run_held)
    return max(Decimal(0), min(limits)) if limits else None


def _totals(row: Row | None) -> UsageTotals:
    if row is None:
        return UsageTotals()
    return UsageTotals(
        calls=int(row["calls"]),
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        cache_read_tokens=int(row["cache_read_tokens"]),
        cache_write_tokens=int(row["cache_write_tokens"]),
        cost_usd=Decimal(row["cost_usd"]),
    )
