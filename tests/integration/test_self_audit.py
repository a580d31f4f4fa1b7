"""The self-audit on real Postgres (RLS active) and the SQS emulator: each daily check finds
what is planted for it, the weekly reflection runs offline (and not past a budget), and the
findings are read by the workspace's admins only (system findings by nobody)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from psycopg.types.json import Jsonb

from guildstack.adapters.models.offline import OfflineProvider
from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.adapters.postgres.uow import PostgresUnitOfWork
from guildstack.adapters.sqs import SqsStepQueue
from guildstack.agents.catalog import load_model_book
from guildstack.config import DEFAULT_CATALOG_DIR
from guildstack.domain.audits import AuditKind, Check, Finding, Severity
from guildstack.domain.errors import Forbidden, NotFound
from guildstack.domain.identity import Principal
from guildstack.domain.paging import PageRequest
from guildstack.ports.models import ModelProvider
from guildstack.services.audits import SelfAudit
from guildstack.services.failover import FailoverChain
from guildstack.services.models import MeteredModel
from tests.fakes.models import ScriptedProvider
from tests.fixtures.postgres import MakeUser, claims_for, create_workspace
from tests.fixtures.sqs import client_for, make_queues

BOOK = load_model_book(DEFAULT_CATALOG_DIR / "models.yaml")


def self_audit(
    database: PostgresDatabase,
    *providers: ModelProvider,
    dlq: SqsStepQueue | None = None,
    schemas: tuple[str, ...] = ("public",),
) -> SelfAudit:
    uow = PostgresUnitOfWork(database)
    chain = FailoverChain({p.name: p for p in providers or (OfflineProvider(),)})
    return SelfAudit(uow, MeteredModel(chain, BOOK, uow), dlq, schemas=schemas)


def of(findings: list[Finding], check: Check, workspace: uuid.UUID | None) -> list[Finding]:
    return [f for f in findings if f.check is check and f.workspace_id == workspace]


async def _now(database: PostgresDatabase) -> datetime:
    async with database.service_transaction("test clock") as conn:
        row = await (await conn.execute("select now() as now")).fetchone()
    assert row is not None
    return row["now"]  # type: ignore[no-any-return]


async def _run(
    database: PostgresDatabase,
    ws: uuid.UUID,
    user: uuid.UUID,
    status: str,
    *,
    quiet_for: timedelta = timedelta(0),
    step_status: str | None = None,
) -> uuid.UUID:
    async with database.service_transaction("plant a run") as conn:
        row = await (
            await conn.execute(
                "insert into public.runs (workspace_id, created_by, kind, title, input, status,"
                " updated_at) values (%s, %s, 'single', 'planted', 'x', %s, now() - %s)"
                " returning id",
                (ws, user, status, quiet_for),
            )
        ).fetchone()
        assert row is not None
        if step_status is not None:
            await conn.execute(
                "insert into public.steps (run_id, key, workspace_id, position, agent_code,"
                " status, finished_at) values (%s, 'A', %s, 0, 'seo_agent', %s, now())",
                (row["id"], ws, step_status),
            )
    return uuid.UUID(str(row["id"]))


@pytest.fixture
async def owner(make_user: MakeUser) -> uuid.UUID:
    return await make_user()


async def test_given_a_run_in_flight_without_events_then_a_stuck_runs_finding(
    database: PostgresDatabase, owner: uuid.UUID
) -> None:
    ws = await create_workspace(database, owner)
    stuck = await _run(database, ws, owner, "running", quiet_for=timedelta(hours=2))
    await _run(database, ws, owner, "running")  # busy now: not stuck
    await _run(database, ws, owner, "waiting_input", quiet_for=timedelta(days=2))  # a person's turn

    findings = await self_audit(database).daily()

    [found] = of(findings, Check.STUCK_RUNS, ws)
    assert found.severity is Severity.WARNING
    assert found.details == {"count": 1, "sample": [str(stuck)]}


async def test_given_a_dead_step_left_unretried_then_a_dead_steps_finding(
    database: PostgresDatabase, owner: uuid.UUID
) -> None:
    ws = await create_workspace(database, owner)
    failed = await _run(database, ws, owner, "failed", step_status="dead")
    await _run(database, ws, owner, "cancelled", step_status="dead")  # nobody will retry it
    await _run(database, ws, owner, "succeeded", step_status="succeeded")

    findings = await self_audit(database).daily()

    [found] = of(findings, Check.DEAD_STEPS, ws)
    assert found.details == {"count": 1, "sample": [f"{failed}/A"]}


async def test_given_a_failed_document_then_a_failed_documents_finding(
    database: PostgresDatabase, owner: uuid.UUID
) -> None:
    ws = await create_workspace(database, owner)
    async with database.service_transaction("plant documents") as conn:
        row = await (
            await conn.execute(
                "insert into public.documents (workspace_id, owner_id, title, status, error)"
                " values (%s, %s, 'broken', 'failed', 'gave up') returning id",
                (ws, owner),
            )
        ).fetchone()
        await conn.execute(
            "insert into public.documents (workspace_id, owner_id, title, status)"
            " values (%s, %s, 'fine', 'ready')",
            (ws, owner),
        )
    assert row is not None

    findings = await self_audit(database).daily()

    [found] = of(findings, Check.FAILED_DOCUMENTS, ws)
    assert found.details == {"count": 1, "sample": [str(row["id"])]}


async def test_given_a_budget_85_percent_spent_then_a_budget_burn_finding(
    database: PostgresDatabase, owner: uuid.UUID
) -> None:
    spent_ws = await create_workspace(database, owner, monthly_budget_usd=100)
    calm_ws = await create_workspace(database, owner, monthly_budget_usd=100000)
    async with database.service_transaction("plant spend") as conn:
        for ws, spent in ((spent_ws, "85"), (calm_ws, "0.01")):
            await conn.execute(
                "insert into public.workspace_spend (workspace_id, month, spent_usd)"
                " values (%s, date_trunc('month', now() at time zone 'utc')::date, %s)",
                (ws, Decimal(spent)),
            )

    findings = await self_audit(database).daily()

    [found] = of(findings, Check.BUDGET_BURN, spent_ws)
    assert found.details["spent_ratio"] == 0.85
    assert found.details["budget_usd"] == 100 and found.details["spent_usd"] == 85
    # 85 % spent: at least a warning; critical once the projection reaches the budget.
    projected = found.details["projected_ratio"]
    assert projected >= 0.85
    assert found.severity is (Severity.CRITICAL if projected >= 1 else Severity.WARNING)
    assert of(findings, Check.BUDGET_BURN, calm_ws) == []


async def test_given_spend_per_active_user_over_target_then_a_cost_per_user_finding(
    database: PostgresDatabase, owner: uuid.UUID
) -> None:
    ws = await create_workspace(database, owner, monthly_budget_usd=100000)
    async with database.service_transaction("plant usage") as conn:
        await conn.execute(
            "insert into public.usage (workspace_id, user_id, provider, model, cost_usd)"
            " values (%s, %s, 'anthropic', 'claude-haiku-4-5', 0.5)",
            (ws, owner),
        )
        await conn.execute(
            "insert into public.workspace_spend (workspace_id, month, spent_usd)"
            " values (%s, date_trunc('month', now() at time zone 'utc')::date, 60)",
            (ws,),
        )

    findings = await self_audit(database).daily()

    [found] = of(findings, Check.COST_PER_USER, ws)
    assert found.details["active_users"] == 1
    assert found.details["projected_per_user_usd"] >= 60 > found.details["target_usd"]


async def test_given_provider_retries_and_deferred_steps_then_failure_and_breaker_findings(
    database: PostgresDatabase, owner: uuid.UUID
) -> None:
    ws = await create_workspace(database, owner)
    flaky = f"flaky{uuid.uuid4().hex[:6]}"
    run = await _run(database, ws, owner, "running", step_status="queued")
    async with database.service_transaction("plant usage and events") as conn:
        for _ in range(6):
            await conn.execute(
                "insert into public.usage (workspace_id, provider, model, attempts)"
                " values (%s, %s, 'm', 3)",
                (ws, flaky),
            )
        await conn.execute(
            "insert into public.events (workspace_id, run_id, seq, type, payload)"
            " values (%s, %s, 1, 'step.deferred', %s)",
            (ws, run, Jsonb({"key": "A"})),
        )

    findings = await self_audit(database).daily()

    [provider] = [
        f for f in findings if f.check is Check.PROVIDER_FAILURES and f.details["provider"] == flaky
    ]
    assert provider.details["calls"] == 6 and provider.details["attempts"] == 18
    [breakers] = of(findings, Check.OPEN_BREAKERS, ws)
    assert breakers.details["count"] == 1
    assert of(findings, Check.OPEN_BREAKERS, None)[0].severity is Severity.CRITICAL


async def test_given_a_table_without_rls_then_a_schema_drift_finding(
    database: PostgresDatabase, database_url: str
) -> None:
    schema = f"drift_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(f"create schema {schema}")
        await conn.execute(f"create table {schema}.open_table (id int)")
        await conn.execute(f"create table {schema}.guarded (id int)")
        await conn.execute(f"alter table {schema}.guarded enable row level security")
        await conn.execute(f"alter table {schema}.guarded force row level security")
        await conn.execute(
            f"create policy guarded_none on {schema}.guarded for select using (false)"
        )
    try:
        clean = await self_audit(database).daily()
        drifted = await self_audit(database, schemas=("public", schema)).daily()
    finally:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await conn.execute(f"drop schema {schema} cascade")

    assert of(clean, Check.SCHEMA_DRIFT, None) == []  # every public table is protected
    [found] = of(drifted, Check.SCHEMA_DRIFT, None)
    assert found.severity is Severity.CRITICAL
    assert found.details["tables"] == [
        {
            "table": f"{schema}.open_table",
            "rls_enabled": False,
            "rls_forced": False,
            "policies": 0,
        }
    ]


async def test_given_messages_in_the_dead_letter_queue_then_a_dlq_depth_finding(
    database: PostgresDatabase, sqs_server: str
) -> None:
    _, dlq_url = make_queues(sqs_server, "audit", 30, 3)
    client = client_for(sqs_server)
    for n in range(2):
        client.send_message(QueueUrl=dlq_url, MessageBody=json.dumps({"n": n}))
    dlq = SqsStepQueue(dlq_url, endpoint_url=sqs_server, region="us-east-1")

    findings = await self_audit(database, dlq=dlq).daily()

    [found] = of(findings, Check.DLQ_DEPTH, None)
    assert (found.severity, found.details) == (Severity.WARNING, {"depth": 2})


async def _member(database: PostgresDatabase, ws: uuid.UUID, user: uuid.UUID, role: str) -> None:
    async with database.service_transaction("member") as conn:
        await conn.execute(
            "insert into public.workspace_members (workspace_id, user_id, role)"
            " values (%s, %s, %s)",
            (ws, user, role),
        )


async def _visible(database: PostgresDatabase, user: uuid.UUID) -> set[uuid.UUID | None]:
    async with database.transaction(claims_for(user)) as conn:
        rows = await (await conn.execute("select workspace_id from public.audits")).fetchall()
    return {r["workspace_id"] for r in rows}


@pytest.fixture
async def stored(
    database: PostgresDatabase, make_user: MakeUser
) -> AsyncIterator[dict[str, uuid.UUID]]:
    """A workspace with a finding, its admin and operator, an outsider's workspace."""
    people = {name: await make_user() for name in ("owner", "admin", "operator", "outsider")}
    ws = await create_workspace(database, people["owner"])
    await _member(database, ws, people["admin"], "admin")
    await _member(database, ws, people["operator"], "operator")
    other = await create_workspace(database, people["outsider"])
    await _run(database, ws, people["owner"], "failed", step_status="dead")
    await _run(database, other, people["outsider"], "failed", step_status="dead")
    async with database.service_transaction("system finding") as conn:
        await conn.execute(
            "insert into public.audits (audit, check_name, severity, subject)"
            " values ('operations', 'dlq_depth', 'warning', 'system only')"
        )
    await self_audit(database).daily()
    yield {**people, "ws": ws, "other": other}


async def test_given_findings_then_rls_shows_a_workspaces_findings_to_its_admins_only(
    database: PostgresDatabase, stored: dict[str, uuid.UUID]
) -> None:
    assert await _visible(database, stored["owner"]) == {stored["ws"]}
    assert await _visible(database, stored["admin"]) == {stored["ws"]}
    assert await _visible(database, stored["operator"]) == set()
    # The outsider sees their own workspace's findings, never the other's nor the system's.
    assert await _visible(database, stored["outsider"]) == {stored["other"]}


async def test_given_findings_then_the_service_lists_them_for_admins_and_refuses_others(
    database: PostgresDatabase, stored: dict[str, uuid.UUID]
) -> None:
    audit = self_audit(database)
    admin = Principal(stored["admin"], None, claims_for(stored["admin"]))
    page = await audit.list(admin, stored["ws"], PageRequest(limit=50))
    assert {f.finding.check for f in page.items} == {Check.DEAD_STEPS}
    assert all(f.finding.workspace_id == stored["ws"] for f in page.items)
    assert (await audit.list(admin, stored["ws"], PageRequest(), Severity.CRITICAL)).items == []

    operator = Principal(stored["operator"], None, claims_for(stored["operator"]))
    with pytest.raises(Forbidden):
        await audit.list(operator, stored["ws"], PageRequest())
    outsider = Principal(stored["outsider"], None, claims_for(stored["outsider"]))
    with pytest.raises(NotFound):
        await audit.list(outsider, stored["ws"], PageRequest())


async def test_given_an_active_workspace_then_the_weekly_reflection_runs_offline(
    database: PostgresDatabase, owner: uuid.UUID
) -> None:
    ws = await create_workspace(database, owner)
    await _run(database, ws, owner, "failed", step_status="failed")
    before = await _now(database)

    findings = await self_audit(database).weekly()

    [found] = [f for f in findings if f.workspace_id == ws]
    assert (found.audit, found.check, found.severity) == (
        AuditKind.REFLECTION,
        Check.WEEKLY_REFLECTION,
        Severity.INFO,
    )
    assert found.details["model"] == "offline/offline"
    assert found.details["recommendations"]
    assert found.details["week"]["failed_steps"] == 1
    async with database.service_transaction("check ledger") as conn:
        rows = await (
            await conn.execute(
                "select agent_code, provider from public.usage"
                " where workspace_id = %s and created_at >= %s",
                (ws, before),
            )
        ).fetchall()
    assert [(r["agent_code"], r["provider"]) for r in rows] == [("self_audit", "offline")]


async def test_given_a_spent_budget_then_the_weekly_reflection_asks_no_model(
    database: PostgresDatabase, owner: uuid.UUID
) -> None:
    ws = await create_workspace(database, owner, monthly_budget_usd=0)
    await _run(database, ws, owner, "succeeded", step_status="succeeded")
    provider = ScriptedProvider("anthropic", ["never"])

    findings = await self_audit(database, provider).weekly()

    [found] = [f for f in findings if f.workspace_id == ws]
    assert found.details["skipped_because"] == "budget"
    # One provider request per reflection that was made; none for this workspace.
    made = [f for f in findings if "skipped_because" not in f.details]
    assert len(provider.calls) == len(made)


def test_given_the_template_schedules_then_daily_audits_and_weekly_reflects(
    database_url: str,
) -> None:
    from pydantic import SecretStr

    from functions.selfaudit.app import create
    from guildstack.bootstrap import build
    from guildstack.config import Settings
    from guildstack.devstack.sqs import ScheduleRunner
    from guildstack.devstack.template import Template
    from guildstack.runtime import background
    from tests.fixtures.gateway import TEMPLATE_PATH

    spec = Template.load(TEMPLATE_PATH).function("SelfAuditFunction")
    assert {(s.name, s.expression, json.dumps(s.input)) for s in spec.schedules} == {
        ("Daily", "rate(1 day)", "null"),
        ("Weekly", "rate(7 days)", json.dumps({"audit": "weekly"})),
    }
    container = build(Settings(stage="test", database_url=SecretStr(database_url)))
    runner = ScheduleRunner([spec], {"SelfAuditFunction": create(container)})
    try:
        assert runner.trigger("SelfAuditFunction", "Daily")["audit"] == "operations"
        assert runner.trigger("SelfAuditFunction", "Weekly")["audit"] == "reflection"
    finally:
        background.run(container.database.close(), timeout=10)
