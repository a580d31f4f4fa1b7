"""`PostgresUsageLedger`: budget reservations, the usage ledger and usage reports.

Reservations and settlements run as the service role (system bookkeeping, never a user's
write); reports run under the caller's RLS. Every reservation first locks the workspace's
spend row for the month, so concurrent checks in one workspace happen one at a time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from guildstack.adapters.postgres.database import Connection, PostgresDatabase, returned_row
from guildstack.domain.errors import BudgetExceeded, NotFound
from guildstack.domain.identity import Principal
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
    def __init__(self, db: PostgresDatabase, *, reservation_ttl_seconds: int = 900) -> None:
        self._db = db
        self._ttl = timedelta(seconds=reservation_ttl_seconds)

    async def remaining(self, context: CallContext) -> Decimal | None:
        async with self._db.service_transaction("budget check") as conn:
            return await _remaining(conn, context, lock=False)

    async def reserve(self, context: CallContext, amount_usd: Decimal) -> Reservation:
        async with self._db.service_transaction("budget reservation") as conn:
            left = await _remaining(conn, context, lock=True)
            if left is not None and amount_usd > left:
                raise BudgetExceeded(
                    f"The budget cannot cover this model call (USD {left:.4f} left, "
                    f"USD {amount_usd:.4f} needed)."
                )
            cur = await conn.execute(
                "insert into public.budget_reservations"
                " (workspace_id, run_id, amount_usd, expires_at)"
                " values (%s, %s, %s, now() + %s) returning id",
                (context.workspace_id, context.run_id, amount_usd, self._ttl),
            )
            row = await returned_row(cur)
        return Reservation(row["id"], context.workspace_id, amount_usd)

    async def settle(self, reservation: Reservation, record: UsageRecord) -> None:
        context, completion = record.context, record.completion
        usage = completion.usage
        async with self._db.service_transaction("usage settlement") as conn:
            await conn.execute(
                "delete from public.budget_reservations where id = %s", (reservation.id,)
            )
            await conn.execute(
                """
                insert into public.usage (
                    workspace_id, user_id, agent_code, run_id, step_key, provider, model,
                    tier, requested_tier, input_tokens, output_tokens, cache_read_tokens,
                    cache_write_tokens, cost_usd, latency_ms, attempts, status)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                """,
                (
                    context.workspace_id,
                    context.user_id,
                    context.agent_code,
                    context.run_id,
                    context.step_key,
                    completion.provider,
                    completion.model,
                    completion.tier,
                    completion.downgraded_from or completion.tier,
                    usage.input_tokens,
                    usage.output_tokens,
                    usage.cache_read_tokens,
                    usage.cache_write_tokens,
                    completion.cost_usd,
                    round(completion.latency_ms),
                    completion.attempts,
                    record.status,
                ),
            )
            await conn.execute(
                f"""
                insert into public.workspace_spend (workspace_id, month, spent_usd)
                values (%s, {_MONTH}, %s)
                on conflict (workspace_id, month)
                do update set spent_usd = public.workspace_spend.spent_usd + excluded.spent_usd
                """,  # noqa: S608 - constant expression
                (context.workspace_id, completion.cost_usd),
            )

    async def release(self, reservation: Reservation) -> None:
        async with self._db.service_transaction("budget release") as conn:
            await conn.execute(
                "delete from public.budget_reservations where id = %s", (reservation.id,)
            )

    async def report(
        self,
        actor: Principal,
        workspace_id: UUID,
        start: datetime,
        end: datetime,
        group_by: GroupBy | None,
    ) -> UsageReport:
        window = "workspace_id = %(ws)s and created_at >= %(start)s and created_at < %(end)s"
        params = {"ws": workspace_id, "start": start, "end": end}
        async with self._db.transaction(actor.claims) as conn:
            cur = await conn.execute(
                f"select {_TOTALS} from public.usage where {window}",  # noqa: S608
                params,
            )
            totals = _totals(await cur.fetchone())
            groups: list[UsageGroup] = []
            if group_by is not None:
                key = _GROUP_KEYS[group_by]
                cur = await conn.execute(
                    f"select {key} as key, {_TOTALS} from public.usage where {window}"  # noqa: S608
                    " group by 1 order by cost_usd desc, key nulls last",
                    params,
                )
                groups = [UsageGroup(r["key"], _totals(r)) for r in await cur.fetchall()]
            cur = await conn.execute(
                f"""
                select w.monthly_budget_usd, coalesce(s.spent_usd, 0) as spent_usd
                from public.workspaces w
                left join public.workspace_spend s
                  on s.workspace_id = w.id and s.month = {_MONTH}
                where w.id = %s
                """,  # noqa: S608 - constant expression
                (workspace_id,),
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound("Workspace not found.")
        budget = BudgetStatus(row["monthly_budget_usd"], row["spent_usd"])
        return UsageReport(start, end, totals, groups, budget)


async def _remaining(conn: Connection, context: CallContext, *, lock: bool) -> Decimal | None:
    """min(monthly budget, run budget) minus what is spent and reserved; None: no limit."""
    if lock:
        await conn.execute(
            f"insert into public.workspace_spend (workspace_id, month) values (%s, {_MONTH})"  # noqa: S608
            " on conflict do nothing",
            (context.workspace_id,),
        )
    cur = await conn.execute(
        f"""
        select w.monthly_budget_usd, coalesce(s.spent_usd, 0) as spent_usd
        from public.workspaces w
        {"join" if lock else "left join"} public.workspace_spend s
          on s.workspace_id = w.id and s.month = {_MONTH}
        where w.id = %s
        {"for update of s" if lock else ""}
        """,  # noqa: S608 - constant expressions
        (context.workspace_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound("Workspace not found.")
    cur = await conn.execute(
        "select coalesce(sum(amount_usd), 0) as held,"
        " coalesce(sum(amount_usd) filter (where run_id = %s), 0) as run_held"
        " from public.budget_reservations where workspace_id = %s and expires_at > now()",
        (context.run_id, context.workspace_id),
    )
    held = await returned_row(cur)
    limits: list[Decimal] = []
    if row["monthly_budget_usd"] is not None:
        limits.append(row["monthly_budget_usd"] - row["spent_usd"] - held["held"])
    if context.run_budget_usd is not None and context.run_id is not None:
        cur = await conn.execute(
            "select coalesce(sum(cost_usd), 0) as spent from public.usage where run_id = %s",
            (context.run_id,),
        )
        run = await returned_row(cur)
        limits.append(context.run_budget_usd - run["spent"] - held["run_held"])
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
