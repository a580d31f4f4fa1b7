"""Rows of the run tables as domain objects (and the columns each read selects)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from guildstack.adapters.postgres.agents import agent_of_row
from guildstack.domain.run_graph import RunGraph, RunState, StepState
from guildstack.domain.runs import Approval, Event, Handoff, Question, Run, Step
from guildstack.domain.vocabulary import GateStatus, OnReject, RunKind, RunStatus, StepStatus
from guildstack.ports.runs import StepContext, StepInputs

RUN_COLUMNS = (
    "r.id, r.workspace_id, r.created_by, r.kind, r.title, r.input, r.status, r.budget_usd,"
    " r.output, r.error, r.created_at, r.updated_at, r.finished_at"
)
STEP_COLUMNS = (
    "s.run_id, s.key, s.agent_code, s.status, s.depends_on, s.prompt, s.requires_approval,"
    " s.on_reject, s.attempt, s.output, s.error, s.provider, s.model, s.input_tokens,"
    " s.output_tokens, s.cost_usd, s.lease_until, s.started_at, s.finished_at"
)


def graph_of(loaded: dict[str, Any]) -> RunGraph:
    """The graph `private.load_run_graph` returned (JSON: ids and times are strings)."""
    r = loaded["run"]
    run = RunState(
        id=UUID(r["id"]),
        workspace_id=UUID(r["workspace_id"]),
        created_by=_uuid(r["created_by"]),
        kind=RunKind(r["kind"]),
        title=r["title"],
        input=r["input"],
        status=RunStatus(r["status"]),
        created_at=datetime.fromisoformat(r["created_at"]),
        updated_at=datetime.fromisoformat(r["updated_at"]),
        budget_usd=_money(r["budget_usd"]),
        output=r["output"],
        error=r["error"],
        finished_at=_time(r["finished_at"]),
        context=r["context"],
    )
    steps = {
        s["key"]: StepState(
            key=s["key"],
            agent_code=s["agent_code"],
            position=s["position"],
            status=StepStatus(s["status"]),
            depends_on=tuple(s["depends_on"]),
            requires_approval=s["requires_approval"],
            on_reject=OnReject(s["on_reject"]),
            attempt=s["attempt"],
            lease_until=_time(s["lease_until"]),
            queued_at=_time(s["queued_at"]),
            started_at=_time(s["started_at"]),
            finished_at=_time(s["finished_at"]),
            output=s["output"],
            error=s["error"],
            provider=s["provider"],
            model=s["model"],
            input_tokens=s["input_tokens"],
            output_tokens=s["output_tokens"],
            cost_usd=_money(s["cost_usd"]) or Decimal(0),
            approval_id=_uuid(s["approval_id"]),
            gate=GateStatus(s["gate"]) if s["gate"] else None,
        )
        for s in loaded["steps"]
    }
    return RunGraph(run, steps)


def context_of(claim: dict[str, Any]) -> StepContext:
    """The claimed step's context `private.load_run_graph` returned beside the graph."""
    handoffs = {
        h["key"]: Handoff(h["key"], h["agent"], h["content"], h["metadata"])
        for h in claim["handoffs"]
    }
    inputs = StepInputs(
        prompt=claim["prompt"],
        handoffs=tuple(handoffs.values()),
        answers=tuple((q, a) for q, a in claim["answers"]),
    )
    row = claim["agent"]
    if row is not None:
        row = {
            **row,
            "created_at": _time(row["created_at"]),
            "updated_at": _time(row["updated_at"]),
        }
    return StepContext(inputs, agent_of_row(row) if row is not None else None)


def change_of(graph: RunGraph) -> dict[str, Any]:
    """What `private.save_run_graph` writes back: the graph's changes, as JSON."""
    r = graph.run
    run = (
        {
            "status": r.status.value,
            "output": r.output,
            "error": r.error,
            "updated_at": _iso(r.updated_at),
            "finished_at": _iso(r.finished_at),
        }
        if graph.run_touched and not graph.created
        else None
    )
    touched = () if graph.created else sorted(graph.touched)
    return {
        "workspace_id": str(r.workspace_id),
        "run_id": str(r.id),
        "run": run,
        "new_steps": [] if graph.created else [new_step(graph.steps[k]) for k in graph.added],
        "steps": [_step_change(graph.steps[k]) for k in touched],
        "approvals": [{"id": str(a.id), "step_key": a.step_key} for a in graph.approvals],
        "decisions": [
            {
                "id": str(d.id),
                "status": d.status.value,
                "comment": d.comment,
                "decided_by": _str(d.decided_by),
            }
            for d in graph.decisions
        ],
        "questions": [
            {"id": str(q.id), "step_key": q.step_key, "question": q.question}
            for q in graph.questions
        ],
        "answers": [
            {"id": str(a.id), "answer": a.answer, "answered_by": _str(a.answered_by)}
            for a in graph.answers
        ],
        "handoffs": [
            {"step_key": h.step_key, "content": h.content, "metadata": dict(h.metadata)}
            for h in graph.handoffs
        ],
        "events": [{"type": e.type.value, "payload": dict(e.payload)} for e in graph.events],
        "close_questions": graph.questions_closed,
    }


def new_step(s: StepState) -> dict[str, Any]:
    """A step of a new run, as the insert of `RunRepository.add` takes it (JSON)."""
    return {
        "key": s.key,
        "position": s.position,
        "agent_code": s.agent_code,
        "prompt": s.prompt,
        "depends_on": list(s.depends_on),
        "requires_approval": s.requires_approval,
        "on_reject": s.on_reject.value,
        "status": s.status.value,
        "queued_at": _iso(s.queued_at),
        # A step its run's creator claims in the same transaction starts out running.
        "attempt": s.attempt,
        "lease_until": _iso(s.lease_until),
        "started_at": _iso(s.started_at),
    }


def _step_change(s: StepState) -> dict[str, Any]:
    return {
        "key": s.key,
        "status": s.status.value,
        "attempt": s.attempt,
        "lease_until": _iso(s.lease_until),
        "queued_at": _iso(s.queued_at),
        "started_at": _iso(s.started_at),
        "finished_at": _iso(s.finished_at),
        "output": s.output,
        "error": s.error,
        "provider": s.provider,
        "model": s.model,
        "input_tokens": s.input_tokens,
        "output_tokens": s.output_tokens,
        "cost_usd": str(s.cost_usd),
    }


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _uuid(value: str | None) -> UUID | None:
    return UUID(value) if value else None


def _str(value: UUID | None) -> str | None:
    return str(value) if value else None


def _money(value: float | int | str | None) -> Decimal | None:
    return Decimal(str(value)) if value is not None else None


def to_run(row: dict[str, Any], steps: tuple[Step, ...] = ()) -> Run:
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
