"""`PostgresRunStore`: the step engine's transactions (ARCHITECTURE.md §5).

Lock order, everywhere: the run row first (`for update`), then its steps. The run row also
numbers the run's events, so events commit in order and a reader that has seen event n has
seen every event before it. Joins fire exactly once because releasing a dependent is a
conditional update (`pending` → `queued`) made under that lock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from guildstack.adapters.postgres.database import Connection, PostgresDatabase, returned_row
from guildstack.domain.errors import Conflict, NotFound
from guildstack.domain.identity import Principal
from guildstack.domain.models import Completion
from guildstack.domain.paging import Page, PageRequest, page_of
from guildstack.domain.runs import (
    Approval,
    Event,
    GateStatus,
    Handoff,
    OnReject,
    Question,
    Run,
    RunKind,
    RunStatus,
    Step,
    StepStatus,
    Workflow,
    run_status_of,
)
from guildstack.domain.vocabulary import Decision
from guildstack.ports.runs import Claim, Released, StepMessage

_RUN_COLUMNS = (
    "id, workspace_id, created_by, kind, title, input, status, budget_usd, output, error,"
    " created_at, updated_at, finished_at"
)
_STEP_COLUMNS = (
    "run_id, key, agent_code, status, depends_on, prompt, requires_approval, on_reject, attempt,"
    " output, error, provider, model, input_tokens, output_tokens, cost_usd, lease_until,"
    " started_at, finished_at"
)


class PostgresRunStore:
    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    # As the caller -------------------------------------------------------------------------

    async def create(self, actor: Principal, workspace_id: UUID, workflow: Workflow) -> Run:
        async with self._db.transaction(actor.claims) as conn:
            cur = await conn.execute(
                "insert into public.runs (workspace_id, created_by, kind, title, input, budget_usd)"
                " values (%s, %s, %s, %s, %s, %s) returning id",
                (
                    workspace_id,
                    actor.user_id,
                    workflow.kind.value,
                    workflow.title,
                    workflow.input,
                    workflow.budget_usd,
                ),
            )
            row = await returned_row(cur)
            run_id: UUID = row["id"]
            await _lock_run(conn, run_id)
            async with conn.cursor() as cur:
                await cur.executemany(
                    "insert into public.steps (run_id, key, workspace_id, position, agent_code,"
                    " prompt, depends_on, requires_approval, on_reject)"
                    " values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        (
                            run_id,
                            node.key,
                            workspace_id,
                            position,
                            node.agent,
                            node.prompt,
                            list(node.depends_on),
                            node.requires_approval,
                            node.on_reject.value,
                        )
                        for position, node in enumerate(workflow.nodes)
                    ],
                )
            await _emit(
                conn,
                run_id,
                "run.created",
                {
                    "kind": workflow.kind.value,
                    "title": workflow.title,
                    "steps": len(workflow.nodes),
                },
            )
            roots = [node.key for node in workflow.nodes if not node.depends_on]
            await _make_ready(conn, run_id, roots)
            await _refresh(conn, run_id)
            return await _run(conn, workspace_id, run_id)

    async def get(self, actor: Principal, workspace_id: UUID, run_id: UUID) -> Run:
        async with self._db.transaction(actor.claims) as conn:
            return await _run(conn, workspace_id, run_id)

    async def list_runs(
        self,
        actor: Principal,
        workspace_id: UUID,
        page: PageRequest,
        status: RunStatus | None = None,
        kind: RunKind | None = None,
    ) -> Page[Run]:
        after_ts, after_id = page.after if page.after else (None, None)
        async with self._db.transaction(actor.claims) as conn:
            cur = await conn.execute(
                f"""
                select {_RUN_COLUMNS} from public.runs
                where workspace_id = %(ws)s
                  and (%(status)s::text is null or status = %(status)s)
                  and (%(kind)s::text is null or kind = %(kind)s)
                  and (%(after_ts)s::timestamptz is null
                       or (created_at, id) < (%(after_ts)s::timestamptz, %(after_id)s::uuid))
                order by created_at desc, id desc
                limit %(limit)s
                """,  # noqa: S608 - constant column list
                {
                    "ws": workspace_id,
                    "status": status.value if status else None,
                    "kind": kind.value if kind else None,
                    "after_ts": after_ts,
                    "after_id": after_id,
                    "limit": page.limit + 1,
                },
            )
            runs = [_to_run(row) for row in await cur.fetchall()]
        return page_of(runs, page.limit, lambda r: (r.created_at, r.id))

    async def cancel(self, actor: Principal, workspace_id: UUID, run_id: UUID) -> Run:
        async with self._db.transaction(actor.claims) as conn:
            status = await _lock_run(conn, run_id, workspace_id)
            if status.finished:
                raise Conflict(f"The run is already {status.value}.")
            await conn.execute(
                "update public.steps set status = 'skipped', error = 'run cancelled',"
                " lease_until = null, finished_at = now()"
                " where run_id = %s and status in"
                " ('pending', 'queued', 'waiting_approval', 'waiting_input')",
                (run_id,),
            )
            await conn.execute(
                "update public.approvals set status = 'rejected', comment = 'run cancelled',"
                " decided_by = %s, decided_at = now() where run_id = %s and status = 'pending'",
                (actor.user_id, run_id),
            )
            await _set_status(conn, run_id, RunStatus.CANCELLED, error="cancelled")
            return await _run(conn, workspace_id, run_id)

    async def retry_step(
        self, actor: Principal, workspace_id: UUID, run_id: UUID, step_key: str
    ) -> Released:
        async with self._db.transaction(actor.claims) as conn:
            status = await _lock_run(conn, run_id, workspace_id)
            if status is RunStatus.CANCELLED:
                raise Conflict("The run is cancelled.")
            cur = await conn.execute(
                "select status from public.steps where run_id = %s and key = %s",
                (run_id, step_key),
            )
            row = await cur.fetchone()
            if row is None:
                raise NotFound(f"No step {step_key!r} in this run.")
            if row["status"] not in (StepStatus.DEAD, StepStatus.FAILED):
                raise Conflict(f"Only a dead or failed step can be retried; it is {row['status']}.")
            await conn.execute(
                "update public.steps set status = 'queued', queued_at = now(), error = null,"
                " lease_until = null, finished_at = null where run_id = %s and key = %s",
                (run_id, step_key),
            )
            await _emit(conn, run_id, "step.queued", {"step": step_key, "retry": True})
            await _refresh(conn, run_id)
        return Released((step_key,))

    async def events(
        self, actor: Principal, workspace_id: UUID, run_id: UUID, after: int, limit: int
    ) -> list[Event]:
        async with self._db.transaction(actor.claims) as conn:
            await _require_run(conn, workspace_id, run_id)
            cur = await conn.execute(
                "select seq, type, payload, created_at from public.events"
                " where run_id = %s and seq > %s order by seq limit %s",
                (run_id, after, limit),
            )
            return [
                Event(r["seq"], r["type"], r["payload"], r["created_at"])
                for r in await cur.fetchall()
            ]

    async def approvals(
        self, actor: Principal, workspace_id: UUID, status: GateStatus | None, page: PageRequest
    ) -> Page[Approval]:
        rows = await self._gate_rows(actor, workspace_id, "approvals", status, page)
        items = [_to_approval(r) for r in rows]
        return page_of(items, page.limit, lambda a: (a.created_at, a.id))

    async def questions(
        self, actor: Principal, workspace_id: UUID, status: GateStatus | None, page: PageRequest
    ) -> Page[Question]:
        rows = await self._gate_rows(actor, workspace_id, "questions", status, page)
        items = [_to_question(r) for r in rows]
        return page_of(items, page.limit, lambda q: (q.created_at, q.id))

    async def _gate_rows(
        self,
        actor: Principal,
        workspace_id: UUID,
        table: str,
        status: GateStatus | None,
        page: PageRequest,
    ) -> list[dict[str, Any]]:
        after_ts, after_id = page.after if page.after else (None, None)
        async with self._db.transaction(actor.claims) as conn:
            cur = await conn.execute(
                f"""
                select * from public.{table}
                where workspace_id = %(ws)s
                  and (%(status)s::text is null or status = %(status)s)
                  and (%(after_ts)s::timestamptz is null
                       or (created_at, id) > (%(after_ts)s::timestamptz, %(after_id)s::uuid))
                order by created_at, id
                limit %(limit)s
                """,  # noqa: S608 - table is one of two constants
                {
                    "ws": workspace_id,
                    "status": status.value if status else None,
                    "after_ts": after_ts,
                    "after_id": after_id,
                    "limit": page.limit + 1,
                },
            )
            return list(await cur.fetchall())

    async def decide(
        self,
        actor: Principal,
        workspace_id: UUID,
        approval_id: UUID,
        decision: Decision,
        comment: str | None,
    ) -> tuple[Approval, Released]:
        async with self._db.transaction(actor.claims) as conn:
            approval = await _gate(conn, "approvals", workspace_id, approval_id)
            run_id, key = approval["run_id"], approval["step_key"]
            await _lock_run(conn, run_id, workspace_id)
            cur = await conn.execute(
                "update public.approvals set status = %s, comment = %s, decided_by = %s,"
                " decided_at = now() where id = %s and status = 'pending' returning *",
                (
                    GateStatus.APPROVED if decision is Decision.APPROVE else GateStatus.REJECTED,
                    comment,
                    actor.user_id,
                    approval_id,
                ),
            )
            row = await cur.fetchone()
            if row is None:
                raise Conflict(f"The approval was already {approval['status']}.")
            await _emit(
                conn,
                run_id,
                "approval.decided",
                {"approval_id": str(approval_id), "step": key, "decision": decision.value},
            )
            released = await _decided(conn, run_id, key, decision)
            await _refresh(conn, run_id)
        return _to_approval(row), Released(tuple(released))

    async def answer(
        self, actor: Principal, workspace_id: UUID, question_id: UUID, answer: str
    ) -> tuple[Question, Released]:
        async with self._db.transaction(actor.claims) as conn:
            question = await _gate(conn, "questions", workspace_id, question_id)
            run_id, key = question["run_id"], question["step_key"]
            status = await _lock_run(conn, run_id, workspace_id)
            if status is RunStatus.CANCELLED:
                raise Conflict("The run is cancelled.")
            cur = await conn.execute(
                "update public.questions set status = 'answered', answer = %s, answered_by = %s,"
                " answered_at = now() where id = %s and status = 'pending' returning *",
                (answer, actor.user_id, question_id),
            )
            row = await cur.fetchone()
            if row is None:
                raise Conflict("The question was already answered.")
            await _emit(
                conn, run_id, "question.answered", {"question_id": str(question_id), "step": key}
            )
            released = await _make_ready(conn, run_id, [key], from_status="waiting_input")
            await _refresh(conn, run_id)
        return _to_question(row), Released(tuple(released))

    # As the system -------------------------------------------------------------------------

    async def claim(self, message: StepMessage, lease_seconds: int) -> Claim | None:
        async with self._db.service_transaction("claim a step") as conn:
            cur = await conn.execute(
                "select status, input, budget_usd, created_by from public.runs"
                " where id = %s and workspace_id = %s for update",
                (message.run_id, message.workspace_id),
            )
            run = await cur.fetchone()
            if run is None or run["status"] == RunStatus.CANCELLED:
                return None
            cur = await conn.execute(
                "update public.steps set status = 'running', attempt = attempt + 1,"
                " lease_until = now() + make_interval(secs => %s), started_at = now()"
                " where run_id = %s and key = %s"
                "   and (status = 'queued' or (status = 'running' and lease_until < now()))"
                " returning attempt, agent_code, prompt, depends_on",
                (lease_seconds, message.run_id, message.step_key),
            )
            step = await cur.fetchone()
            if step is None:
                return None
            handoffs = await _handoffs(conn, message.run_id, step["depends_on"])
            await _emit(
                conn,
                message.run_id,
                "step.started",
                {
                    "step": message.step_key,
                    "attempt": step["attempt"],
                    "agent": step["agent_code"],
                    "handoffs": [h.step_key for h in handoffs],
                },
            )
            await _refresh(conn, message.run_id)
            cur = await conn.execute(
                "select question, answer from public.questions where run_id = %s"
                " and step_key = %s and status = 'answered' order by created_at",
                (message.run_id, message.step_key),
            )
            answers = tuple((r["question"], r["answer"]) for r in await cur.fetchall())
        return Claim(
            workspace_id=message.workspace_id,
            run_id=message.run_id,
            step_key=message.step_key,
            attempt=step["attempt"],
            agent_code=step["agent_code"],
            created_by=run["created_by"],
            run_input=run["input"],
            prompt=step["prompt"],
            run_budget_usd=run["budget_usd"],
            handoffs=handoffs,
            answers=answers,
        )

    async def lease_left(self, message: StepMessage) -> float | None:
        async with self._db.service_transaction("read a step lease") as conn:
            cur = await conn.execute(
                "select extract(epoch from lease_until - now())::float8 as left_s"
                " from public.steps where run_id = %s and key = %s and status = 'running'"
                " and lease_until > now()",
                (message.run_id, message.step_key),
            )
            row = await cur.fetchone()
        return float(row["left_s"]) if row else None

    async def append_tokens(self, claim: Claim, text: str) -> bool:
        async with self._db.service_transaction("stream step tokens") as conn:
            if not await _still_holds(conn, claim):
                return False
            await _emit(
                conn,
                claim.run_id,
                "step.token",
                {"step": claim.step_key, "attempt": claim.attempt, "text": text},
            )
            return True

    async def succeed(self, claim: Claim, completion: Completion) -> Released | None:
        async with self._db.service_transaction("finish a step") as conn:
            run_status = await _lock_run(conn, claim.run_id)
            discarded = run_status is RunStatus.CANCELLED
            cur = await conn.execute(
                "update public.steps set status = %s, output = %s, error = %s,"
                " lease_until = null, finished_at = now(), provider = %s, model = %s,"
                " input_tokens = input_tokens + %s, output_tokens = output_tokens + %s,"
                " cost_usd = cost_usd + %s"
                " where run_id = %s and key = %s and status = 'running' and attempt = %s"
                " returning key",
                (
                    StepStatus.SKIPPED if discarded else StepStatus.SUCCEEDED,
                    None if discarded else completion.text,
                    "run cancelled" if discarded else None,
                    completion.provider,
                    completion.model,
                    completion.usage.input_tokens,
                    completion.usage.output_tokens,
                    completion.cost_usd,
                    claim.run_id,
                    claim.step_key,
                    claim.attempt,
                ),
            )
            if await cur.fetchone() is None:
                return None  # the lease was lost: another attempt owns the step now
            if discarded:
                return Released()
            metadata = {
                "provider": completion.provider,
                "model": completion.model,
                "tier": completion.tier.value if completion.tier else None,
                "input_tokens": completion.usage.input_tokens,
                "output_tokens": completion.usage.output_tokens,
            }
            await conn.execute(
                "insert into public.handoffs (run_id, step_key, workspace_id, content, metadata)"
                " values (%s, %s, %s, %s, %s) on conflict (run_id, step_key) do update"
                " set content = excluded.content, metadata = excluded.metadata,"
                " created_at = now()",
                (
                    claim.run_id,
                    claim.step_key,
                    claim.workspace_id,
                    completion.text,
                    json.dumps(metadata),
                ),
            )
            await _emit(
                conn,
                claim.run_id,
                "step.succeeded",
                {
                    "step": claim.step_key,
                    "attempt": claim.attempt,
                    "provider": completion.provider,
                    "model": completion.model,
                    "input_tokens": completion.usage.input_tokens,
                    "output_tokens": completion.usage.output_tokens,
                    "cost_usd": str(completion.cost_usd),
                },
            )
            released = await _release_dependents(conn, claim.run_id, claim.step_key)
            await _refresh(conn, claim.run_id)
        return Released(tuple(released))

    async def ask(self, claim: Claim, question: str) -> bool:
        async with self._db.service_transaction("park a step on a question") as conn:
            await _lock_run(conn, claim.run_id)
            cur = await conn.execute(
                "update public.steps set status = 'waiting_input', lease_until = null"
                " where run_id = %s and key = %s and status = 'running' and attempt = %s"
                " returning key",
                (claim.run_id, claim.step_key, claim.attempt),
            )
            if await cur.fetchone() is None:
                return False
            cur = await conn.execute(
                "insert into public.questions (workspace_id, run_id, step_key, question)"
                " values (%s, %s, %s, %s) returning id",
                (claim.workspace_id, claim.run_id, claim.step_key, question),
            )
            row = await returned_row(cur)
            await _emit(
                conn,
                claim.run_id,
                "question.asked",
                {"question_id": str(row["id"]), "step": claim.step_key, "question": question},
            )
            await _refresh(conn, claim.run_id)
            return True

    async def fail_attempt(self, claim: Claim, error: str, *, terminal: bool) -> None:
        async with self._db.service_transaction("record a failed attempt") as conn:
            await _lock_run(conn, claim.run_id)
            cur = await conn.execute(
                "update public.steps set status = %s, error = %s, lease_until = null,"
                " queued_at = now(), finished_at = case when %s then now() end"
                " where run_id = %s and key = %s and status = 'running' and attempt = %s"
                " returning key",
                (
                    StepStatus.FAILED if terminal else StepStatus.QUEUED,
                    error[:2000],
                    terminal,
                    claim.run_id,
                    claim.step_key,
                    claim.attempt,
                ),
            )
            if await cur.fetchone() is None:
                return
            await _emit(
                conn,
                claim.run_id,
                "step.failed",
                {
                    "step": claim.step_key,
                    "attempt": claim.attempt,
                    "error": error[:500],
                    "will_retry": not terminal,
                },
            )
            await _refresh(conn, claim.run_id, error=error if terminal else None)

    async def bury(self, message: StepMessage, error: str) -> bool:
        async with self._db.service_transaction("dead-letter a step") as conn:
            cur = await conn.execute(
                "select 1 from public.runs where id = %s and workspace_id = %s for update",
                (message.run_id, message.workspace_id),
            )
            if await cur.fetchone() is None:
                return False
            cur = await conn.execute(
                "update public.steps set status = 'dead', error = %s, lease_until = null,"
                " finished_at = now() where run_id = %s and key = %s"
                " and (status = 'queued' or (status = 'running' and lease_until < now()))"
                " returning attempt",
                (error[:2000], message.run_id, message.step_key),
            )
            row = await cur.fetchone()
            if row is None:
                return False
            await _emit(
                conn,
                message.run_id,
                "step.dead",
                {"step": message.step_key, "attempts": row["attempt"], "error": error[:500]},
            )
            await _refresh(conn, message.run_id, error=f"step {message.step_key} is dead")
            return True

    async def stale(self, queued_before_seconds: int, limit: int) -> Sequence[StepMessage]:
        async with self._db.service_transaction("sweep stale steps") as conn:
            cur = await conn.execute(
                """
                with stale as (
                    select s.run_id, s.key from public.steps s
                    join public.runs r on r.id = s.run_id and r.status <> 'cancelled'
                    where (s.status = 'queued'
                           and s.queued_at < now() - make_interval(secs => %s))
                       or (s.status = 'running' and s.lease_until < now())
                    order by s.queued_at nulls first
                    limit %s
                    for update of s skip locked
                )
                update public.steps s set status = 'queued', lease_until = null, queued_at = now()
                from stale where s.run_id = stale.run_id and s.key = stale.key
                returning s.workspace_id, s.run_id, s.key
                """,
                (queued_before_seconds, limit),
            )
            return [
                StepMessage(r["workspace_id"], r["run_id"], r["key"]) for r in await cur.fetchall()
            ]


# Transaction pieces ------------------------------------------------------------------------


async def _lock_run(conn: Connection, run_id: UUID, workspace_id: UUID | None = None) -> RunStatus:
    cur = await conn.execute(
        "select status from public.runs where id = %s"
        " and (%s::uuid is null or workspace_id = %s) for update",
        (run_id, workspace_id, workspace_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound("No such run in this workspace.")
    return RunStatus(row["status"])


async def _require_run(conn: Connection, workspace_id: UUID, run_id: UUID) -> None:
    cur = await conn.execute(
        "select 1 from public.runs where id = %s and workspace_id = %s", (run_id, workspace_id)
    )
    if await cur.fetchone() is None:
        raise NotFound("No such run in this workspace.")


async def _still_holds(conn: Connection, claim: Claim) -> bool:
    cur = await conn.execute(
        "select 1 from public.steps s join public.runs r on r.id = s.run_id"
        " where s.run_id = %s and s.key = %s and s.status = 'running' and s.attempt = %s"
        " and r.status <> 'cancelled'",
        (claim.run_id, claim.step_key, claim.attempt),
    )
    return await cur.fetchone() is not None


async def _emit(conn: Connection, run_id: UUID, type_: str, payload: dict[str, Any]) -> int:
    """Append the run's next event (the run row is locked by the caller or by this update)."""
    cur = await conn.execute(
        """
        with numbered as (
            update public.runs set last_event_seq = last_event_seq + 1, updated_at = now()
            where id = %s returning workspace_id, last_event_seq
        )
        insert into public.events (workspace_id, run_id, seq, type, payload)
        select workspace_id, %s, last_event_seq, %s, %s from numbered
        returning seq
        """,
        (run_id, run_id, type_, json.dumps(payload)),
    )
    row = await returned_row(cur)
    seq: int = row["seq"]
    return seq


async def _make_ready(
    conn: Connection, run_id: UUID, keys: Sequence[str], from_status: str = "pending"
) -> list[str]:
    """Move `keys` from `from_status` to queued, or to waiting for approval when gated;
    returns the keys now queued."""
    if not keys:
        return []
    cur = await conn.execute(
        "update public.steps set queued_at = now(), status = case"
        "   when requires_approval and %s = 'pending' then 'waiting_approval' else 'queued' end"
        " where run_id = %s and key = any(%s) and status = %s"
        " returning key, status, workspace_id, position",
        (from_status, run_id, list(keys), from_status),
    )
    rows = sorted(await cur.fetchall(), key=lambda r: r["position"])
    queued = []
    for row in rows:
        if row["status"] == StepStatus.WAITING_APPROVAL:
            cur = await conn.execute(
                "insert into public.approvals (workspace_id, run_id, step_key)"
                " values (%s, %s, %s) returning id",
                (row["workspace_id"], run_id, row["key"]),
            )
            approval = await returned_row(cur)
            await _emit(
                conn,
                run_id,
                "approval.requested",
                {"approval_id": str(approval["id"]), "step": row["key"]},
            )
        else:
            queued.append(row["key"])
            await _emit(conn, run_id, "step.queued", {"step": row["key"]})
    return queued


async def _release_dependents(conn: Connection, run_id: UUID, settled_key: str) -> list[str]:
    """Dependents of `settled_key` whose dependencies have all settled become ready."""
    cur = await conn.execute(
        """
        select s.key from public.steps s
        where s.run_id = %s and s.status = 'pending' and %s = any(s.depends_on)
          and not exists (
              select 1 from unnest(s.depends_on) as d(key)
              join public.steps x on x.run_id = s.run_id and x.key = d.key
              where x.status not in ('succeeded', 'skipped'))
        """,
        (run_id, settled_key),
    )
    ready = [row["key"] for row in await cur.fetchall()]
    return await _make_ready(conn, run_id, ready)


async def _decided(conn: Connection, run_id: UUID, key: str, decision: Decision) -> list[str]:
    if decision is Decision.APPROVE:
        return await _make_ready(conn, run_id, [key], from_status="waiting_approval")
    cur = await conn.execute(
        "select on_reject from public.steps where run_id = %s and key = %s", (run_id, key)
    )
    row = await cur.fetchone()
    skip = row is not None and row["on_reject"] == OnReject.SKIP
    await conn.execute(
        "update public.steps set status = %s, error = 'rejected by an approver',"
        " finished_at = now() where run_id = %s and key = %s and status = 'waiting_approval'",
        (StepStatus.SKIPPED if skip else StepStatus.FAILED, run_id, key),
    )
    await _emit(
        conn, run_id, "step.skipped" if skip else "step.failed", {"step": key, "rejected": True}
    )
    return await _release_dependents(conn, run_id, key) if skip else []


async def _refresh(conn: Connection, run_id: UUID, *, error: str | None = None) -> RunStatus:
    """Recompute the run's status from its steps; emit `run.status` (and `run.finished`)."""
    cur = await conn.execute("select status from public.runs where id = %s", (run_id,))
    row = await returned_row(cur)
    current = RunStatus(row["status"])
    cur = await conn.execute("select status from public.steps where run_id = %s", (run_id,))
    statuses = [StepStatus(r["status"]) for r in await cur.fetchall()]
    status = run_status_of(current, statuses)
    if status is not current:
        await _set_status(conn, run_id, status, error=error)
    return status


async def _set_status(
    conn: Connection, run_id: UUID, status: RunStatus, *, error: str | None = None
) -> None:
    output = await _sink_output(conn, run_id) if status is RunStatus.SUCCEEDED else None
    await conn.execute(
        "update public.runs set status = %s, updated_at = now(),"
        " output = coalesce(%s, output),"
        " error = case when %s in ('failed', 'cancelled') then coalesce(%s, error) end,"
        " finished_at = case when %s then now() end where id = %s",
        (status, output, status, error, status.finished, run_id),
    )
    await _emit(conn, run_id, "run.status", {"status": status.value})
    if status.finished:
        payload: dict[str, Any] = {"status": status.value}
        if error and status is not RunStatus.SUCCEEDED:
            payload["error"] = error[:500]
        await _emit(conn, run_id, "run.finished", payload)


async def _sink_output(conn: Connection, run_id: UUID) -> str | None:
    """The run's result: the outputs of the steps nothing depends on, in workflow order."""
    cur = await conn.execute(
        """
        select s.output from public.steps s
        where s.run_id = %s and s.status = 'succeeded'
          and not exists (select 1 from public.steps d
                          where d.run_id = s.run_id and s.key = any(d.depends_on))
        order by s.position
        """,
        (run_id,),
    )
    outputs = [r["output"] for r in await cur.fetchall() if r["output"]]
    return "\n\n".join(outputs) if outputs else None


async def _handoffs(conn: Connection, run_id: UUID, keys: Sequence[str]) -> tuple[Handoff, ...]:
    if not keys:
        return ()
    cur = await conn.execute(
        "select h.step_key, s.agent_code, h.content, h.metadata from public.handoffs h"
        " join public.steps s on s.run_id = h.run_id and s.key = h.step_key"
        " where h.run_id = %s and h.step_key = any(%s)",
        (run_id, list(keys)),
    )
    by_key = {
        r["step_key"]: Handoff(r["step_key"], r["agent_code"], r["content"], r["metadata"])
        for r in await cur.fetchall()
    }
    return tuple(by_key[k] for k in keys if k in by_key)


async def _gate(conn: Connection, table: str, workspace_id: UUID, gate_id: UUID) -> dict[str, Any]:
    cur = await conn.execute(
        f"select * from public.{table} where id = %s and workspace_id = %s",  # noqa: S608
        (gate_id, workspace_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"No such {table[:-1]} in this workspace.")
    return dict(row)


async def _run(conn: Connection, workspace_id: UUID, run_id: UUID) -> Run:
    cur = await conn.execute(
        f"select {_RUN_COLUMNS} from public.runs where id = %s and workspace_id = %s",  # noqa: S608
        (run_id, workspace_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound("No such run in this workspace.")
    cur = await conn.execute(
        f"select {_STEP_COLUMNS} from public.steps where run_id = %s order by position",  # noqa: S608
        (run_id,),
    )
    steps = tuple(_to_step(r) for r in await cur.fetchall())
    return _to_run(row, steps)


def _to_run(row: dict[str, Any], steps: tuple[Step, ...] = ()) -> Run:
    return Run(
        id=row["id"],
        workspace_id=row["workspace_id"],
        created_by=row["created_by"],
        kind=RunKind(row["kind"]),
        title=row["title"],
        input=row["input"],
        status=RunStatus(row["status"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        budget_usd=row["budget_usd"],
        output=row["output"],
        error=row["error"],
        finished_at=row["finished_at"],
        steps=steps,
    )


def _to_step(row: dict[str, Any]) -> Step:
    return Step(
        run_id=row["run_id"],
        key=row["key"],
        agent_code=row["agent_code"],
        status=StepStatus(row["status"]),
        depends_on=tuple(row["depends_on"]),
        prompt=row["prompt"],
        requires_approval=row["requires_approval"],
        on_reject=OnReject(row["on_reject"]),
        attempt=row["attempt"],
        output=row["output"],
        error=row["error"],
        provider=row["provider"],
        model=row["model"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cost_usd=Decimal(row["cost_usd"]),
        lease_until=row["lease_until"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def _to_approval(row: dict[str, Any]) -> Approval:
    return Approval(
        id=row["id"],
        workspace_id=row["workspace_id"],
        run_id=row["run_id"],
        step_key=row["step_key"],
        status=GateStatus(row["status"]),
        created_at=row["created_at"],
        comment=row["comment"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
    )


def _to_question(row: dict[str, Any]) -> Question:
    return Question(
        id=row["id"],
        workspace_id=row["workspace_id"],
        run_id=row["run_id"],
        step_key=row["step_key"],
        question=row["question"],
        status=GateStatus(row["status"]),
        created_at=row["created_at"],
        answer=row["answer"],
        answered_by=row["answered_by"],
        answered_at=row["answered_at"],
    )
