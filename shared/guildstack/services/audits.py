"""The self-audit: the daily operations checks, the weekly reflection, and the findings list.

`daily()` reads the operational facts in one system transaction, turns them into findings
(`domain/audits.py` decides severities) and stores them in another. `weekly()` asks the
self-audit agent, for every workspace active in the week, for recommendations drawn from
the week's usage, failures and memory feedback; the call is metered like any other, so a
workspace whose budget cannot cover it gets a note instead of a model call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from guildstack.domain.audits import (
    AuditKind,
    Check,
    Finding,
    Severity,
    StoredFinding,
    budget_burn,
    cost_per_user,
    ops,
    provider_failures,
)
from guildstack.domain.authorization import Action
from guildstack.domain.errors import BudgetExceeded
from guildstack.domain.identity import Principal
from guildstack.domain.models import CallContext, ChatMessage, ModelRequest, TaskType, Tier
from guildstack.domain.paging import Page, PageRequest
from guildstack.observability import logger, metrics
from guildstack.ports.audits import Flagged, QueueDepth, WeekSummary, WorkspaceSpend
from guildstack.ports.models import LanguageModel
from guildstack.ports.uow import UnitOfWork
from guildstack.services.access import authorized

AGENT = "self_audit"
DAY = timedelta(days=1)
WEEK = timedelta(days=7)
MONTH = timedelta(days=30)
DLQ_CRITICAL = 50
REFLECTION_MAX_TOKENS = 700
REFLECTION_SYSTEM = (
    "You are the self-audit agent of a team of AI agents serving one workspace. From the "
    "week's figures below (runs by status, failed steps and sample errors, model calls per "
    "agent, cost, conversations, memory feedback), write at most five short, concrete "
    "recommendations for the workspace's admins: what to fix, what to watch, what to try. "
    "Plain text, one recommendation per line, no preamble."
)


class SelfAudit:
    def __init__(
        self,
        uow: UnitOfWork,
        model: LanguageModel,
        dlq: QueueDepth | None = None,
        *,
        stuck_after: timedelta = timedelta(hours=1),
        schemas: Sequence[str] = ("public",),
    ) -> None:
        self._uow = uow
        self._model = model
        self._dlq = dlq
        self._stuck_after = stuck_after
        self._schemas = tuple(schemas)

    # The daily operations audit ----------------------------------------------------------------

    async def daily(self) -> list[Finding]:
        findings: list[Finding] = []
        async with self._uow.system("self-audit: operations facts") as tx:
            stuck = await tx.audits.stuck_runs(self._stuck_after)
            now = tx.now
            dead = await tx.audits.dead_steps()
            documents = await tx.audits.failed_documents(DAY)
            deferred = await tx.audits.deferred_steps(DAY)
            providers = await tx.audits.provider_calls(DAY)
            spend = await tx.audits.spend(MONTH)
            tables = await tx.audits.unprotected_tables(self._schemas)
        minutes = int(self._stuck_after.total_seconds() // 60)
        findings += _per_workspace(
            stuck,
            Check.STUCK_RUNS,
            Severity.WARNING,
            lambda f: f"{f.count} run(s) in flight without an event for {minutes} minutes",
        )
        findings += _per_workspace(
            dead,
            Check.DEAD_STEPS,
            Severity.WARNING,
            lambda f: f"{f.count} dead step(s) left unretried",
        )
        findings += _per_workspace(
            documents,
            Check.FAILED_DOCUMENTS,
            Severity.WARNING,
            lambda f: f"{f.count} document(s) failed to ingest in the last day",
        )
        findings += _per_workspace(
            deferred,
            Check.OPEN_BREAKERS,
            Severity.WARNING,
            lambda f: f"{f.count} step(s) deferred with every provider's breaker open",
        )
        if deferred:
            total = sum(f.count for f in deferred)
            findings.append(
                ops(
                    Check.OPEN_BREAKERS,
                    Severity.CRITICAL,
                    f"Every provider's circuit breaker was open {total} time(s) in the last day",
                    {"deferred_steps": total, "workspaces": len(deferred)},
                )
            )
        for calls in providers:
            found = provider_failures(calls.provider, calls.calls, calls.attempts)
            if found is not None:
                findings.append(found)
        findings += self._spend_findings(spend, now)
        if tables:
            findings.append(
                ops(
                    Check.SCHEMA_DRIFT,
                    Severity.CRITICAL,
                    f"{len(tables)} table(s) without forced row-level security and a policy",
                    {
                        "tables": [
                            {
                                "table": f"{t.schema}.{t.table}",
                                "rls_enabled": t.rls_enabled,
                                "rls_forced": t.rls_forced,
                                "policies": t.policies,
                            }
                            for t in tables
                        ]
                    },
                )
            )
        depth = await self._dlq_depth()
        if depth:
            findings.append(
                ops(
                    Check.DLQ_DEPTH,
                    Severity.CRITICAL if depth >= DLQ_CRITICAL else Severity.WARNING,
                    f"{depth} message(s) wait in the dead-letter queue",
                    {"depth": depth},
                )
            )
        await self._record(findings)
        return findings

    def _spend_findings(self, spend: Sequence[WorkspaceSpend], now: datetime) -> list[Finding]:
        findings: list[Finding] = []
        total, users = Decimal(0), 0
        for row in spend:
            if row.budget_usd is not None:
                found = budget_burn(row.workspace_id, row.spent_usd, row.budget_usd, now)
                if found is not None:
                    findings.append(found)
            per_user = cost_per_user(row.workspace_id, row.spent_usd, row.active_users, now)
            if per_user is not None:
                findings.append(per_user)
            total += row.spent_usd
            users += row.active_users
        overall = cost_per_user(None, total, users, now)
        if overall is not None:
            findings.append(overall)
        return findings

    async def _dlq_depth(self) -> int:
        if self._dlq is None:
            return 0
        try:
            return await self._dlq.depth()
        except Exception:  # noqa: BLE001 - an unreadable queue is itself a finding's worth of news
            logger.warning("self-audit: the dead-letter queue's depth is unknown", exc_info=True)
            return 0

    async def _record(self, findings: list[Finding]) -> None:
        async with self._uow.system("self-audit: findings") as tx:
            await tx.audits.record(findings)
        metrics.add_metric(name="AuditFindings", unit="Count", value=len(findings))
        logger.info(
            "self-audit",
            extra={"findings": len(findings), "checks": sorted({f.check for f in findings})},
        )

    # The weekly reflection ---------------------------------------------------------------------

    async def weekly(self) -> list[Finding]:
        async with self._uow.system("self-audit: active workspaces") as tx:
            workspaces = await tx.audits.active_workspaces(WEEK)
            summaries = [await tx.audits.week_summary(ws, WEEK) for ws in workspaces]
        findings = [await self._reflect(summary) for summary in summaries]
        await self._record(findings)
        return findings

    async def _reflect(self, week: WeekSummary) -> Finding:
        facts = {
            "runs_by_status": week.runs_by_status,
            "failed_steps": week.failed_steps,
            "sample_errors": list(week.sample_errors),
            "model_calls_by_agent": week.calls_by_agent,
            "cost_usd": float(week.cost_usd),
            "tokens": week.tokens,
            "conversations": week.conversations,
            "memory_feedback": {"up": week.memory_votes_up, "down": week.memory_votes_down},
        }
        request = ModelRequest(
            system=REFLECTION_SYSTEM,
            messages=(ChatMessage("user", json.dumps(facts, sort_keys=True)),),
            tier=Tier.FAST,
            task_type=TaskType.ANALYSIS,
            temperature=0.2,
            max_tokens=REFLECTION_MAX_TOKENS,
        )
        context = CallContext(workspace_id=week.workspace_id, agent_code=AGENT)
        try:
            answer = await self._model.complete(request, context)
        except BudgetExceeded:
            return _reflection(
                week.workspace_id,
                "Weekly reflection skipped: the budget cannot cover it",
                {"week": facts, "skipped_because": "budget"},
            )
        lines = [line.strip(" -*\t") for line in answer.text.splitlines()]
        recommendations = [line for line in lines if line][:5]
        return _reflection(
            week.workspace_id,
            "Weekly reflection: recommendations for the week's operations",
            {
                "week": facts,
                "recommendations": recommendations,
                "model": f"{answer.provider}/{answer.model}",
                "cost_usd": float(answer.cost_usd),
            },
        )

    # GET /audits -------------------------------------------------------------------------------

    async def list(
        self,
        actor: Principal,
        workspace_id: UUID,
        page: PageRequest,
        severity: Severity | None = None,
    ) -> Page[StoredFinding]:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.READ_AUDITS)
            return await tx.audits.list(workspace_id, page, severity)


def _reflection(workspace_id: UUID, subject: str, details: dict[str, object]) -> Finding:
    return Finding(
        AuditKind.REFLECTION,
        Check.WEEKLY_REFLECTION,
        Severity.INFO,
        subject,
        dict(details),
        workspace_id,
    )


def _per_workspace(
    flagged: Sequence[Flagged],
    check: Check,
    severity: Severity,
    subject: Callable[[Flagged], str],
) -> list[Finding]:
    return [
        ops(
            check,
            severity,
            subject(f),
            {"count": f.count, "sample": list(f.sample)},
            f.workspace_id,
        )
        for f in flagged
    ]
