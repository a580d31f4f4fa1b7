"""`PostgresAuditRepository`: the self-audit's facts (read as the system) and its findings.

Statuses travel as parameters from the domain's enums; the schema-drift check reads the
catalog at run time, so a table added without row-level security is found the next day.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from guildstack.adapters.postgres.database import Connection
from guildstack.adapters.postgres.paging import fetch_page
from guildstack.domain.audits import AuditKind, Check, Finding, Severity, StoredFinding
from guildstack.domain.jobs import DocumentStatus
from guildstack.domain.paging import Page, PageRequest
from guildstack.domain.usage import CACHED_USAGE
from guildstack.domain.vocabulary import EventType, RunStatus, StepStatus
from guildstack.ports.audits import (
    Flagged,
    ProviderCalls,
    UnprotectedTable,
    WeekSummary,
    WorkspaceSpend,
)

SAMPLE = 5
_IN_FLIGHT = [RunStatus.QUEUED.value, RunStatus.RUNNING.value]
_FAILED_STEP = [StepStatus.FAILED.value, StepStatus.DEAD.value]


def _flagged(rows: list[DictRow]) -> list[Flagged]:
    return [
        Flagged(r["workspace_id"], int(r["n"]), tuple(str(s) for s in r["sample"] or ()))
        for r in rows
    ]


class PostgresAuditRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def _rows(self, query: str, params: dict[str, Any]) -> list[DictRow]:
        cur = await self._conn.execute(query, params)
        return await cur.fetchall()

    async def stuck_runs(self, quiet_for: timedelta) -> list[Flagged]:
        rows = await self._rows(
            """
            select r.workspace_id, count(*) as n, (array_agg(r.id::text order by r.created_at))
                   [1:%(sample)s] as sample
            from public.runs r
            where r.status = any(%(statuses)s)
              and coalesce((select max(e.created_at) from public.events e where e.run_id = r.id),
                           r.updated_at) < now() - %(quiet)s
            group by r.workspace_id
            """,
            {"statuses": _IN_FLIGHT, "quiet": quiet_for, "sample": SAMPLE},
        )
        return _flagged(rows)

    async def dead_steps(self) -> list[Flagged]:
        rows = await self._rows(
            """
            select s.workspace_id, count(*) as n,
                   (array_agg(s.run_id::text || '/' || s.key order by s.finished_at))
                   [1:%(sample)s] as sample
            from public.steps s join public.runs r on r.id = s.run_id
            where s.status = %(dead_status)s and r.status <> %(cancelled_status)s
            group by s.workspace_id
            """,
            {
                "dead_status": StepStatus.DEAD.value,
                "cancelled_status": RunStatus.CANCELLED.value,
                "sample": SAMPLE,
            },
        )
        return _flagged(rows)

    async def failed_documents(self, within: timedelta) -> list[Flagged]:
        rows = await self._rows(
            """
            select d.workspace_id, count(*) as n,
                   (array_agg(d.id::text order by d.updated_at))[1:%(sample)s] as sample
            from public.documents d
            where d.status = %(failed_status)s and d.updated_at >= now() - %(within)s
            group by d.workspace_id
            """,
            {"failed_status": DocumentStatus.FAILED.value, "within": within, "sample": SAMPLE},
        )
        return _flagged(rows)

    async def deferred_steps(self, within: timedelta) -> list[Flagged]:
        rows = await self._rows(
            """
            select e.workspace_id, count(*) as n,
                   (array_agg(distinct e.run_id::text))[1:%(sample)s] as sample
            from public.events e
            where e.type = %(type)s and e.created_at >= now() - %(within)s
            group by e.workspace_id
            """,
            {"type": EventType.STEP_DEFERRED.value, "within": within, "sample": SAMPLE},
        )
        return _flagged(rows)

    async def provider_calls(self, within: timedelta) -> list[ProviderCalls]:
        rows = await self._rows(
            "select provider, count(*) as calls, sum(attempts) as attempts from public.usage"
            " where created_at >= now() - %(within)s and status <> %(cached)s"
            " group by provider order by provider",
            {"within": within, "cached": CACHED_USAGE},
        )
        return [ProviderCalls(r["provider"], int(r["calls"]), int(r["attempts"])) for r in rows]

    async def spend(self, active_within: timedelta) -> list[WorkspaceSpend]:
        rows = await self._rows(
            """
            select w.id as workspace_id, w.monthly_budget_usd, s.spent_usd,
                   (select count(distinct a.user_id) from (
                        select u.user_id from public.usage u
                        where u.workspace_id = w.id and u.created_at >= now() - %(active)s
                        union select r.created_by from public.runs r
                        where r.workspace_id = w.id and r.created_at >= now() - %(active)s
                        union select c.created_by from public.conversations c
                        where c.workspace_id = w.id and c.updated_at >= now() - %(active)s
                    ) a join public.workspace_members m
                      on m.workspace_id = w.id and m.user_id = a.user_id) as active_users
            from public.workspaces w
            join public.workspace_spend s on s.workspace_id = w.id
             and s.month = date_trunc('month', now() at time zone 'utc')::date
            where s.spent_usd > 0
            order by w.id
            """,
            {"active": active_within},
        )
        return [
            WorkspaceSpend(
                r["workspace_id"],
                r["monthly_budget_usd"],
                Decimal(r["spent_usd"]),
                int(r["active_users"]),
            )
            for r in rows
        ]

    async def unprotected_tables(self, schemas: Sequence[str]) -> list[UnprotectedTable]:
        rows = await self._rows(
            """
            select n.nspname as schema, c.relname as table, c.relrowsecurity as enabled,
                   c.relforcerowsecurity as forced,
                   (select count(*) from pg_policy p where p.polrelid = c.oid) as policies
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = any(%(schemas)s) and c.relkind in ('r', 'p')
            order by n.nspname, c.relname
            """,
            {"schemas": list(schemas)},
        )
        return [
            UnprotectedTable(r["schema"], r["table"], r["enabled"], r["forced"], int(r["policies"]))
            for r in rows
            if not (r["enabled"] and r["forced"] and r["policies"] > 0)
        ]

    async def active_workspaces(self, within: timedelta) -> list[UUID]:
        rows = await self._rows(
            """
            select workspace_id from public.usage where created_at >= now() - %(within)s
            union select workspace_id from public.runs where created_at >= now() - %(within)s
            union select workspace_id from public.conversations
            where updated_at >= now() - %(within)s
            order by 1
            """,
            {"within": within},
        )
        return [r["workspace_id"] for r in rows]

    async def week_summary(self, workspace_id: UUID, within: timedelta) -> WeekSummary:
        params = {"ws": workspace_id, "within": within, "failed_status": _FAILED_STEP}
        runs = await self._rows(
            "select status, count(*) as n from public.runs"
            " where workspace_id = %(ws)s and created_at >= now() - %(within)s group by status",
            params,
        )
        steps = await self._rows(
            "select count(*) as n, (array_agg(left(error, 200)) filter"
            " (where error is not null))[1:3] as errors from public.steps"
            " where workspace_id = %(ws)s and status = any(%(failed_status)s)"
            " and finished_at >= now() - %(within)s",
            params,
        )
        usage = await self._rows(
            "select coalesce(agent_code, '-') as agent, count(*) as calls,"
            " sum(cost_usd) as cost, sum(input_tokens + output_tokens) as tokens"
            " from public.usage where workspace_id = %(ws)s and created_at >= now() - %(within)s"
            " group by 1 order by 1",
            params,
        )
        chats = await self._rows(
            "select count(*) as n from public.conversations"
            " where workspace_id = %(ws)s and updated_at >= now() - %(within)s",
            params,
        )
        votes = await self._rows(
            "select count(*) filter (where value > 0) as up,"
            " count(*) filter (where value < 0) as down from public.memory_votes"
            " where workspace_id = %(ws)s and updated_at >= now() - %(within)s",
            params,
        )
        return WeekSummary(
            workspace_id=workspace_id,
            runs_by_status={r["status"]: int(r["n"]) for r in runs},
            failed_steps=int(steps[0]["n"]),
            calls_by_agent={r["agent"]: int(r["calls"]) for r in usage},
            cost_usd=sum((Decimal(r["cost"]) for r in usage), Decimal(0)),
            tokens=sum(int(r["tokens"]) for r in usage),
            conversations=int(chats[0]["n"]),
            memory_votes_up=int(votes[0]["up"]),
            memory_votes_down=int(votes[0]["down"]),
            sample_errors=tuple(steps[0]["errors"] or ()),
        )

    async def record(self, findings: Sequence[Finding]) -> None:
        if not findings:
            return
        async with self._conn.cursor() as cur:
            await cur.executemany(
                "insert into public.audits"
                " (workspace_id, audit, check_name, severity, subject, details)"
                " values (%s, %s, %s, %s, %s, %s)",
                [
                    (
                        f.workspace_id,
                        f.audit.value,
                        f.check.value,
                        f.severity.value,
                        f.subject[:300],
                        Jsonb(f.details),
                    )
                    for f in findings
                ],
            )

    async def list(
        self, workspace_id: UUID, page: PageRequest, severity: Severity | None = None
    ) -> Page[StoredFinding]:
        return await fetch_page(
            self._conn,
            "select id, workspace_id, audit, check_name, severity, subject, details, created_at"
            " from public.audits where workspace_id = %(ws)s"
            " and (%(severity)s::text is null or severity = %(severity)s)",
            {"ws": workspace_id, "severity": severity.value if severity else None},
            page,
            _stored,
            lambda f: (f.created_at, f.id),
        )


def _stored(row: DictRow) -> StoredFinding:
    finding = Finding(
        AuditKind(row["audit"]),
        Check(row["check_name"]),
        Severity(row["severity"]),
        row["subject"],
        dict(row["details"] or {}),
        row["workspace_id"],
    )
    return StoredFinding(row["id"], finding, row["created_at"])
