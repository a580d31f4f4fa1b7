"""`PostgresUsageLedger`: budget reservations, the usage ledger and usage reports.

Reservations and settlements run in system transactions (bookkeeping, never a user's
write); reports run under the caller's RLS. Every reservation first locks the workspace's
spend row for the month, so concurrent checks in one workspace happen one at a time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from guildstack.adapters.postgres.database import Connection, returned_row
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


class PostgresUsageLedger:
    def __init__(self, conn: Connection, *, reservation_ttl_seconds: int = 900) -> None:
        self._conn = conn
        self._ttl = timedelta(seconds=reservation_ttl_seconds)

    async def remaining(self, context: CallContext) -> Decimal | None:
        return _left(await self._budget(context, lock=False), context)

    async def reserve(self, context: CallContext, amount_usd: Decimal) -> Reservation:
        left = _left(await self._budget(context, lock=True), context)
        if left is not None and amount_usd > left:
            raise BudgetExceeded(
                f"The budget cannot cover this model call (USD {left:.4f} left, "
                f"USD {amount_usd:.4f} needed)."
            )
        cur = await self._conn.execute(
            "insert into public.budget_reservations (workspace_id, run_id, amount_usd, expires_at)"
            " values (%s, %s, %s, now() + %s) returning id",
            (context.workspace_id, context.run_id, amount_usd, self._ttl),
        )
        row = await returned_row(cur)
        return Reservation(row["id"], context.workspace_id, amount_usd)

    async def settle(self, reservation: Reservation, record: UsageRecord) -> None:
        context, completion = record.context, record.completion
        usage = completion.usage
        await self._conn.execute(
            f"""
            with released as (
                delete from public.budget_reservations where id = %(reservation)s
            ),
            recorded as (
                insert into public.usage (
                    workspace_id, user_id, agent_code, run_id, step_key, provider, model,
                    tier, requested_tier, input_tokens, output_tokens, cache_read_tokens,
                    cache_write_tokens, cost_usd, latency_ms, attempts, status)
                values (%(ws)s, %(user)s, %(agent)s, %(run)s, %(step)s, %(provider)s,
                    %(model)s, %(tier)s, %(requested)s, %(input)s, %(output)s,
                    %(cache_read)s, %(cache_write)s, %(cost)s, %(latency)s, %(attempts)s,
                    %(status)s)
            )
            insert into public.workspace_spend (workspace_id, month, spent_usd)
            values (%(ws)s, {_MONTH}, %(cost)s)
            on conflict (workspace_id, month)
            do update set spent_usd = public.workspace_spend.spent_usd + excluded.spent_usd
            """,  # noqa: S608 - constant expression
            {
                "reservation": reservation.id,
                "ws": context.workspace_id,
                "user": context.user_id,
                "agent": context.agent_code,
                "run": context.run_id,
                "step": context.step_key,
                "provider": completion.provider,
                "model": completion.model,
                "tier": completion.tier,
                "requested": completion.downgraded_from or completion.tier,
                "input": usage.input_tokens,
                "output": usage.output_tokens,
                "cache_read": usage.cache_read_tokens,
                "cache_write": usage.cache_write_tokens,
                "cost": completion.cost_usd,
                "latency": round(completion.latency_ms),
                "attempts": completion.attempts,
                "status": record.status,
            },
        )

    async def release(self, reservation: Reservation) -> None:
        await self._conn.execute(
            "delete from public.budget_reservations where id = %s", (reservation.id,)
        )

    async def report(
        self, workspace_id: UUID, start: datetime, end: datetime, group_by: GroupBy | None
    ) -> UsageReport:
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

    async def _budget(self, context: CallContext, *, lock: bool) -> Row:
        """The workspace's budget, this month's spend, what is reserved (and, for a capped
        run, the run's own spend and reservations), in one statement. With `lock`, the
        month's spend row is locked first, so reservations of one workspace queue up."""
        params = {"ws": context.workspace_id, "run": context.run_id}
        query = _BUDGET.format(
            join="join" if lock else "left join", lock="for update of s" if lock else ""
        )
        cur = await self._conn.execute(query, params)
        row = await cur.fetchone()
        if row is None and lock:
            # The month's first reservation: make the spend row to lock, then lock it.
            await self._conn.execute(
                f"insert into public.workspace_spend (workspace_id, month)"  # noqa: S608
                f" values (%(ws)s, {_MONTH}) on conflict do nothing",
                params,
            )
            cur = await self._conn.execute(query, params)
            row = await cur.fetchone()
        if row is None:
            raise NotFound("Workspace not found.")
        return row


_BUDGET = f"""
    select w.monthly_budget_usd, coalesce(s.spent_usd, 0) as spent_usd,
        (select coalesce(sum(amount_usd), 0) from public.budget_reservations
         where workspace_id = w.id and expires_at > now()) as held,
        (select coalesce(sum(amount_usd), 0) from public.budget_reservations
         where workspace_id = w.id and run_id = %(run)s and expires_at > now()) as run_held,
        (select coalesce(sum(cost_usd), 0) from public.usage
         where %(run)s::uuid is not null and run_id = %(run)s) as run_spent
    from public.workspaces w
    {{join}} public.workspace_spend s on s.workspace_id = w.id and s.month = {_MONTH}
    where w.id = %(ws)s
    {{lock}}
"""  # noqa: S608 - constant expressions


def _left(row: Row, context: CallContext) -> Decimal | None:
    """min(monthly budget, run budget) minus what is spent and reserved; None: no limit."""
    limits: list[Decimal] = []
    if row["monthly_budget_usd"] is not None:
        limits.append(row["monthly_budget_usd"] - row["spent_usd"] - row["held"])
    if context.run_budget_usd is not None and context.run_id is not None:
        limits.append(context.run_budget_usd - row["run_spent"] - row["run_held"])
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
