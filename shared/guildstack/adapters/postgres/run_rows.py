"""Rows of the run tables as domain objects (and the columns each read selects)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from guildstack.domain.run_graph import RunState, StepState
from guildstack.domain.runs import Approval, Event, Question, Run, Step
from guildstack.domain.vocabulary import GateStatus, OnReject, RunKind, RunStatus, StepStatus

RUN_COLUMNS = (
    "r.id, r.workspace_id, r.created_by, r.kind, r.title, r.input, r.status, r.budget_usd,"
    " r.output, r.error, r.created_at, r.updated_at, r.finished_at"
)
STEP_COLUMNS = (
    "s.run_id, s.key, s.agent_code, s.status, s.depends_on, s.prompt, s.requires_approval,"
    " s.on_reject, s.attempt, s.output, s.error, s.provider, s.model, s.input_tokens,"
    " s.output_tokens, s.cost_usd, s.lease_until, s.started_at, s.finished_at"
)
# What the graph needs of each step: no prompt, and the output only of the steps the run's
# output is made of (nothing depends on them); plus the step's latest approval.
GRAPH_STEPS = """
    with needed as (
        select distinct unnest(depends_on) as key from public.steps where run_id = %(run)s
    )
    select s.key, s.agent_code, s.position, s.status, s.depends_on, s.requires_approval,
           s.on_reject, s.attempt, s.lease_until, s.queued_at, s.started_at, s.finished_at,
           case when s.key not in (select key from needed) then s.output end as output,
           s.error, s.provider, s.model, s.input_tokens, s.output_tokens, s.cost_usd,
           a.id as approval_id, a.status as gate
    from public.steps s
    left join lateral (
        select id, status from public.approvals
        where run_id = s.run_id and step_key = s.key order by created_at desc limit 1
    ) a on s.requires_approval
    where s.run_id = %(run)s
    order by s.position
"""


def run_state(row: dict[str, Any]) -> RunState:
    return RunState(
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
    )


def step_state(row: dict[str, Any]) -> StepState:
    return StepState(
        key=row["key"],
        agent_code=row["agent_code"],
        position=row["position"],
        status=StepStatus(row["status"]),
        depends_on=tuple(row["depends_on"]),
        requires_approval=row["requires_approval"],
        on_reject=OnReject(row["on_reject"]),
        attempt=row["attempt"],
        lease_until=row["lease_until"],
        queued_at=row["queued_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        output=row["output"],
        error=row["error"],
        provider=row["provider"],
        model=row["model"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cost_usd=Decimal(row["cost_usd"]),
        approval_id=row["approval_id"],
        gate=GateStatus(row["gate"]) if row["gate"] else None,
    )


def to_run(row: dict[str, Any], steps: tuple[Step, ...] = ()) -> Run:
    s = run_state(row)
    return Run(
        id=s.id,
        workspace_id=s.workspace_id,
        created_by=s.created_by,
        kind=s.kind,
        title=s.title,
        input=s.input,
        status=s.status,
        created_at=s.created_at,
        updated_at=s.updated_at,
        budget_usd=s.budget_usd,
        output=s.output,
        error=s.error,
        finished_at=s.finished_at,
        steps=steps,
    )


def to_step(row: dict[str, Any]) -> Step:
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


def to_event(row: dict[str, Any]) -> Event:
    return Event(row["seq"], row["type"], row["payload"], row["created_at"])


def to_approval(row: dict[str, Any]) -> Approval:
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


def to_question(row: dict[str, Any]) -> Question:
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
