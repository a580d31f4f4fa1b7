"""`RunGraph`: a run and its steps as one aggregate, and every rule of how they move.

The store loads a graph under the run row's lock, a method applies one change, and the store
writes back what the graph says changed: the steps it touched, the run row, the events to
append in order, approvals and questions to create or settle, handoffs, and the steps whose
messages must be sent once the transaction has committed. No I/O happens here.

Guarantees the methods keep (and the property test checks):
- a step moves only along `STEP_TRANSITIONS`;
- a result is accepted only from the attempt that holds the step (a lost lease discards it);
- a dependent is released exactly once, when its last dependency settles;
- the run's status is recomputed in one place (`_refresh`), and `run.finished` carries the
  reason a run failed, whichever step's change ended it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from guildstack.domain.errors import Conflict, NotFound
from guildstack.domain.jobs import lease_expired
from guildstack.domain.runs import FAILED, SETTLED, Run, Step, Workflow, run_status_of
from guildstack.domain.vocabulary import (
    Decision,
    EventType,
    GateStatus,
    OnReject,
    RunKind,
    RunStatus,
    StepStatus,
)

__all__ = [
    "STEP_TRANSITIONS",
    "ApprovalDecision",
    "Dispatch",
    "NewApproval",
    "NewEvent",
    "NewHandoff",
    "NewQuestion",
    "NewStep",
    "QuestionAnswer",
    "RunGraph",
    "RunState",
    "StepResult",
    "StepState",
    "Verdict",
    "step_view",
]

S = StepStatus
# Where a step may go from each status. Running → running is a new attempt taking over an
# expired lease; everything else is a change of status.
STEP_TRANSITIONS: dict[StepStatus, frozenset[StepStatus]] = {
    S.PENDING: frozenset({S.QUEUED, S.WAITING_APPROVAL, S.SKIPPED}),
    S.QUEUED: frozenset({S.RUNNING, S.DEAD, S.SKIPPED}),
    S.RUNNING: frozenset(
        {S.RUNNING, S.SUCCEEDED, S.QUEUED, S.FAILED, S.WAITING_INPUT, S.DEAD, S.SKIPPED}
    ),
    S.WAITING_APPROVAL: frozenset({S.QUEUED, S.FAILED, S.SKIPPED}),
    S.WAITING_INPUT: frozenset({S.QUEUED, S.SKIPPED}),
    S.FAILED: frozenset({S.QUEUED, S.WAITING_APPROVAL}),
    S.DEAD: frozenset({S.QUEUED, S.WAITING_APPROVAL}),
    S.SUCCEEDED: frozenset(),
    S.SKIPPED: frozenset(),
}

CANCELLED_REASON = "run cancelled"
REJECTED_REASON = "rejected by an approver"
MAX_ERROR_CHARS = 2000
EVENT_ERROR_CHARS = 500


class Verdict(StrEnum):
    """What became of an attempt's result."""

    ACCEPTED = "accepted"  # recorded as the step's outcome
    DISCARDED = "discarded"  # the run was cancelled meanwhile: the step is skipped
    LOST = "lost"  # another attempt holds the step now: nothing changed


@dataclass
class StepState:
    key: str
    agent_code: str
    position: int
    status: StepStatus
    depends_on: tuple[str, ...] = ()
    requires_approval: bool = False
    on_reject: OnReject = OnReject.FAIL
    prompt: str | None = None
    attempt: int = 0
    lease_until: datetime | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # Loaded for the steps the run's output is made of (nothing depends on them).
    output: str | None = None
    error: str | None = None
    provider: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    # The step's latest approval: its id and status (None: never gated).
    approval_id: UUID | None = None
    gate: GateStatus | None = None


@dataclass
class RunState:
    id: UUID
    workspace_id: UUID
    created_by: UUID | None
    kind: RunKind
    title: str
    input: str
    status: RunStatus
    created_at: datetime
    updated_at: datetime
    budget_usd: Decimal | None = None
    output: str | None = None
    error: str | None = None
    finished_at: datetime | None = None
    # What the area that started the run keeps with it (a chat turn's conversation,
    # routing and history); opaque to the engine.
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NewEvent:
    type: EventType
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class NewApproval:
    id: UUID
    step_key: str


@dataclass(frozen=True)
class ApprovalDecision:
    id: UUID
    status: GateStatus
    comment: str | None
    decided_by: UUID | None


@dataclass(frozen=True)
class NewQuestion:
    id: UUID
    step_key: str
    question: str


@dataclass(frozen=True)
class QuestionAnswer:
    id: UUID
    answer: str
    answered_by: UUID | None


@dataclass(frozen=True)
class NewStep:
    """A step added to a running run."""

    key: str
    agent_code: str
    prompt: str | None = None
    depends_on: tuple[str, ...] = ()
    # Waits for a person's approval before it runs (a tool call with side effects).
    requires_approval: bool = False


@dataclass(frozen=True)
class NewHandoff:
    step_key: str
    content: str
    metadata: Mapping[str, Any]


@dataclass(frozen=True)
class Dispatch:
    """A step message to send once the change has committed."""

    step_key: str
    delay_seconds: int = 0


@dataclass(frozen=True)
class StepResult:
    """A finished model call, as the graph records it on the step."""

    text: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    tier: str | None = None


@dataclass
class RunGraph:
    run: RunState
    steps: dict[str, StepState]  # in workflow order
    new_id: Callable[[], UUID] = field(default=uuid.uuid4, repr=False)
    created: bool = False
    # What changed since loading: the store writes these back.
    events: list[NewEvent] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)
    run_touched: bool = False
    dispatches: list[Dispatch] = field(default_factory=list)
    approvals: list[NewApproval] = field(default_factory=list)
    decisions: list[ApprovalDecision] = field(default_factory=list)
    questions: list[NewQuestion] = field(default_factory=list)
    answers: list[QuestionAnswer] = field(default_factory=list)
    handoffs: list[NewHandoff] = field(default_factory=list)
    # The run was cancelled: its unanswered questions are closed (nobody can answer them).
    questions_closed: bool = False
    # Steps added to the run by this change (in order).
    added: list[str] = field(default_factory=list)

    # Creating ------------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        workspace_id: UUID,
        created_by: UUID | None,
        workflow: Workflow,
        *,
        now: datetime,
        new_id: Callable[[], UUID] = uuid.uuid4,
        context: Mapping[str, Any] | None = None,
        dispatch_delay_seconds: int = 0,
    ) -> RunGraph:
        """A new run of a validated workflow: every step pending, then the roots released.
        `dispatch_delay_seconds` holds back the roots' messages: for a run whose first step
        the caller executes itself, the message is only the fallback."""
        run = RunState(
            id=new_id(),
            workspace_id=workspace_id,
            created_by=created_by,
            kind=workflow.kind,
            title=workflow.title,
            input=workflow.input,
            status=RunStatus.QUEUED,
            created_at=now,
            updated_at=now,
            budget_usd=workflow.budget_usd,
            context=dict(context or {}),
        )
        steps = {
            node.key: StepState(
                key=node.key,
                agent_code=node.agent,
                position=position,
                status=S.PENDING,
                depends_on=node.depends_on,
                requires_approval=node.requires_approval,
                on_reject=node.on_reject,
                prompt=node.prompt,
            )
            for position, node in enumerate(workflow.nodes)
        }
        graph = cls(run, steps, new_id=new_id, created=True)
        graph._emit(
            EventType.RUN_CREATED,
            kind=workflow.kind.value,
            title=workflow.title,
            steps=len(steps),
        )
        graph._make_ready([s.key for s in steps.values() if not s.depends_on], now)
        if dispatch_delay_seconds:
            graph.dispatches = [
                Dispatch(d.step_key, dispatch_delay_seconds) for d in graph.dispatches
            ]
        graph._refresh(now)
        return graph

    # The engine ----------------------------------------------------------------------------

    def claim(self, key: str, *, lease_seconds: int, now: datetime) -> StepState | None:
        """Take the step for a new attempt: queued, or running on an expired lease. None when
        it is finished, held by a live lease, or its run was cancelled."""
        step = self.steps.get(key)
        if step is None or self.run.status is RunStatus.CANCELLED or not _claimable(step, now):
            return None
        self._move(step, S.RUNNING)
        step.attempt += 1
        step.lease_until = now + timedelta(seconds=lease_seconds)
        step.started_at = now
        self._emit(
            EventType.STEP_STARTED,
            step=key,
            attempt=step.attempt,
            agent=step.agent_code,
            handoffs=[d for d in step.depends_on if self.steps[d].status is S.SUCCEEDED],
        )
        self._refresh(now)
        return step

    def lease_left(self, key: str, now: datetime) -> float | None:
        """Seconds until another worker's lease on the step ends; None when nobody holds it."""
        step = self.steps.get(key)
        if step is None or step.status is not S.RUNNING or step.lease_until is None:
            return None
        left = (step.lease_until - now).total_seconds()
        return left if left > 0 else None

    def holds(self, key: str, attempt: int) -> bool:
        """Whether `attempt` is still the step's running attempt (and the run goes on)."""
        step = self.steps.get(key)
        return (
            step is not None
            and step.status is S.RUNNING
            and step.attempt == attempt
            and self.run.status is not RunStatus.CANCELLED
        )

    def succeed(
        self,
        key: str,
        attempt: int,
        result: StepResult,
        *,
        now: datetime,
        then: Sequence[NewStep] = (),
    ) -> Verdict:
        """Record the attempt's output and hand it to the dependents, releasing each whose
        dependencies have now all settled. `then` adds steps to the run (a discussion's
        next turns), queued when their dependencies have settled."""
        step = self._attempt(key, attempt)
        if step is None:
            return Verdict.LOST
        step.provider, step.model = result.provider, result.model
        step.input_tokens += result.input_tokens
        step.output_tokens += result.output_tokens
        step.cost_usd += result.cost_usd
        if self._dropped_by_cancel(step, now):
            return Verdict.DISCARDED
        self._move(step, S.SUCCEEDED)
        step.output, step.error = result.text, None
        step.lease_until, step.finished_at = None, now
        self.handoffs.append(
            NewHandoff(
                key,
                result.text,
                {
                    "provider": result.provider,
                    "model": result.model,
                    "tier": result.tier,
                    "input_tokens": result.input_tokens,
                    "output_tokens": result.output_tokens,
                },
            )
        )
        self._emit(
            EventType.STEP_SUCCEEDED,
            step=key,
            attempt=attempt,
            provider=result.provider,
            model=result.model,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cost_usd=float(result.cost_usd),
        )
        self._release_dependents(key, now)
        for new in then:
            self._add(new, now)
        self._refresh(now)
        return Verdict.ACCEPTED

    def ask(self, key: str, attempt: int, question: str, *, now: datetime) -> Verdict:
        """Park the step until the user answers `question` (no worker holds it meanwhile)."""
        step = self._attempt(key, attempt)
        if step is None:
            return Verdict.LOST
        if self._dropped_by_cancel(step, now):
            return Verdict.DISCARDED
        self._move(step, S.WAITING_INPUT)
        step.lease_until = None
        asked = NewQuestion(self.new_id(), key, question)
        self.questions.append(asked)
        self._emit(EventType.QUESTION_ASKED, question_id=str(asked.id), step=key, question=question)
        self._refresh(now)
        return Verdict.ACCEPTED

    def fail(self, key: str, attempt: int, error: str, *, terminal: bool, now: datetime) -> Verdict:
        """A failed attempt: `failed` for good when `terminal`, else queued again for the
        queue's redelivery of the same message. A cancelled run's step is skipped instead."""
        step = self._attempt(key, attempt)
        if step is None:
            return Verdict.LOST
        if self._dropped_by_cancel(step, now):
            return Verdict.DISCARDED
        step.error = error[:MAX_ERROR_CHARS]
        step.lease_until = None
        if terminal:
            self._move(step, S.FAILED)
            step.finished_at = now
        else:
            self._move(step, S.QUEUED)
            step.queued_at = now
        self._emit(
            EventType.STEP_FAILED,
            step=key,
            attempt=attempt,
            error=error[:EVENT_ERROR_CHARS],
            will_retry=not terminal,
        )
        self._refresh(now)
        return Verdict.ACCEPTED

    def defer(self, key: str, attempt: int, reason: str, *, seconds: int, now: datetime) -> Verdict:
        """Give the step back without counting the attempt (nothing was tried: e.g. every
        provider's circuit is open) and send it again after `seconds`."""
        step = self._attempt(key, attempt)
        if step is None:
            return Verdict.LOST
        if self._dropped_by_cancel(step, now):
            return Verdict.DISCARDED
        self._move(step, S.QUEUED)
        step.attempt -= 1
        step.lease_until, step.queued_at = None, now
        self.dispatches.append(Dispatch(key, seconds))
        self._emit(EventType.STEP_DEFERRED, step=key, reason=reason[:500], retry_after=seconds)
        self._refresh(now)
        return Verdict.ACCEPTED

    def bury(self, key: str, *, now: datetime) -> bool:
        """The queue gave up on the step's message: the step is dead (skipped, if its run
        was cancelled). False when the step finished or a live lease holds it."""
        step = self.steps.get(key)
        if step is None or not _claimable(step, now):
            return False
        if self._dropped_by_cancel(step, now):
            return True
        tries = "attempt" if step.attempt == 1 else "attempts"
        step.error = (
            f"The step failed repeatedly (gave up after {step.attempt} {tries})."
            if step.attempt
            else "The queue gave up on the step's message before it could run."
        )
        self._move(step, S.DEAD)
        step.lease_until, step.finished_at = None, now
        self._emit(EventType.STEP_DEAD, step=key, attempts=step.attempt, error=step.error)
        self._refresh(now)
        return True

    def requeue_stale(self, key: str, *, now: datetime) -> bool:
        """The sweeper's repair for a step whose message may be lost (queued) or whose worker
        died holding the lease (running, expired): send it again. A cancelled run's step is
        skipped instead, so nothing is left running or queued forever."""
        step = self.steps.get(key)
        if step is None or not _claimable(step, now):
            return False
        if self._dropped_by_cancel(step, now):
            return True
        if step.status is S.RUNNING:
            self._move(step, S.QUEUED)
            step.lease_until = None
        step.queued_at = now
        self.touched.add(key)
        self.dispatches.append(Dispatch(key))
        self._refresh(now)
        return True

    # People --------------------------------------------------------------------------------

    def cancel(self, by: UUID | None, *, now: datetime) -> None:
        """No new step starts; running steps finish and their results are dropped."""
        if self.run.status.finished:
            raise Conflict(f"The run is already {self.run.status.value}.")
        for step in self.steps.values():
            if step.gate is GateStatus.PENDING and step.approval_id is not None:
                self._decide_gate(step, step.approval_id, GateStatus.REJECTED, CANCELLED_REASON, by)
            if step.status in (S.PENDING, S.QUEUED, S.WAITING_APPROVAL, S.WAITING_INPUT):
                self._skip(step, CANCELLED_REASON, now, emit=False)
        self.questions_closed = True
        self._set_status(RunStatus.CANCELLED, now)

    def retry(self, key: str, *, now: datetime) -> None:
        """A dead or failed step runs again; one whose approval was refused (or never given)
        goes back to its approver first."""
        if self.run.status is RunStatus.CANCELLED:
            raise Conflict("The run is cancelled.")
        step = self._step(key)
        if step.status not in FAILED:
            raise Conflict(f"Only a dead or failed step can be retried; it is {step.status}.")
        step.error, step.lease_until, step.finished_at = None, None, None
        if step.requires_approval and step.gate is not GateStatus.APPROVED:
            self._request_approval(step)
        else:
            self._queue(step, now, retry=True)
        self._refresh(now)

    def decide(
        self,
        approval_id: UUID,
        decision: Decision,
        *,
        by: UUID | None,
        comment: str | None,
        now: datetime,
    ) -> StepState:
        """Approve (the step is queued) or reject (it fails, or is skipped and the run goes
        on, as its `on_reject` says) a pending approval."""
        step = next((s for s in self.steps.values() if s.approval_id == approval_id), None)
        if step is None:
            raise NotFound("No such approval in this workspace.")
        if step.gate is not GateStatus.PENDING:
            raise Conflict(f"The approval was already {step.gate}.")
        self._refuse_if_over()
        approve = decision is Decision.APPROVE
        status = GateStatus.APPROVED if approve else GateStatus.REJECTED
        self._decide_gate(step, approval_id, status, comment, by)
        self._emit(
            EventType.APPROVAL_DECIDED,
            approval_id=str(approval_id),
            step=step.key,
            decision=decision.value,
        )
        if approve:
            self._queue(step, now)
        elif step.on_reject is OnReject.SKIP:
            self._skip(step, REJECTED_REASON, now, rejected=True)
            self._release_dependents(step.key, now)
        else:
            self._move(step, S.FAILED)
            step.error, step.finished_at = REJECTED_REASON, now
            self._emit(EventType.STEP_FAILED, step=step.key, rejected=True)
        self._refresh(now)
        return step

    def answer(
        self, question_id: UUID, key: str, answer: str, *, by: UUID | None, now: datetime
    ) -> None:
        """The user's answer to a question the step asked: the step runs again with it."""
        self._refuse_if_over()
        step = self._step(key)
        if step.status is not S.WAITING_INPUT:
            raise Conflict(f"The step is not waiting for an answer; it is {step.status}.")
        self.answers.append(QuestionAnswer(question_id, answer, by))
        self._emit(EventType.QUESTION_ANSWERED, question_id=str(question_id), step=key)
        self._queue(step, now)
        self._refresh(now)

    # Reading -------------------------------------------------------------------------------

    def snapshot(self) -> Run:
        """The run as readers see it (for a graph created in this change)."""
        r = self.run
        return Run(
            id=r.id,
            workspace_id=r.workspace_id,
            created_by=r.created_by,
            kind=r.kind,
            title=r.title,
            input=r.input,
            status=r.status,
            created_at=r.created_at,
            updated_at=r.updated_at,
            budget_usd=r.budget_usd,
            output=r.output,
            error=r.error,
            finished_at=r.finished_at,
            steps=tuple(step_view(r.id, s) for s in self.steps.values()),
        )

    @property
    def ended(self) -> bool:
        """Whether this change ended the run (it finished, and said so)."""
        return self.run.status.finished and any(
            e.type is EventType.RUN_FINISHED for e in self.events
        )

    # Rules ---------------------------------------------------------------------------------

    def _step(self, key: str) -> StepState:
        step = self.steps.get(key)
        if step is None:
            raise NotFound(f"No step {key!r} in this run.")
        return step

    def _attempt(self, key: str, attempt: int) -> StepState | None:
        """The step, if `attempt` still holds it. A result counts even after its lease ran
        out, as long as no other attempt took the step over (and the sweeper has not queued
        it again)."""
        step = self.steps.get(key)
        if step is None or step.status is not S.RUNNING or step.attempt != attempt:
            return None
        return step

    def _dropped_by_cancel(self, step: StepState, now: datetime) -> bool:
        """A cancelled run's step is skipped, whatever its attempt was about to record."""
        if self.run.status is not RunStatus.CANCELLED:
            return False
        self._skip(step, CANCELLED_REASON, now)
        self._refresh(now)
        return True

    def _refuse_if_over(self) -> None:
        if self.run.status.finished:
            raise Conflict(
                f"The run is already {self.run.status.value}; retry its failed steps first."
            )

    def _move(self, step: StepState, target: StepStatus) -> None:
        if target not in STEP_TRANSITIONS[step.status]:
            raise Conflict(f"A step cannot go from {step.status} to {target}.")
        step.status = target
        self.touched.add(step.key)

    def _queue(self, step: StepState, now: datetime, *, retry: bool = False) -> None:
        self._move(step, S.QUEUED)
        step.queued_at = now
        self.dispatches.append(Dispatch(step.key))
        if retry:
            self._emit(EventType.STEP_QUEUED, step=step.key, retry=True)
        else:
            self._emit(EventType.STEP_QUEUED, step=step.key)

    def _skip(
        self,
        step: StepState,
        reason: str,
        now: datetime,
        *,
        emit: bool = True,
        rejected: bool = False,
    ) -> None:
        self._move(step, S.SKIPPED)
        step.error, step.lease_until, step.finished_at = reason, None, now
        if rejected:
            self._emit(EventType.STEP_SKIPPED, step=step.key, rejected=True)
        elif emit:
            self._emit(EventType.STEP_SKIPPED, step=step.key, reason=reason)

    def _request_approval(self, step: StepState) -> None:
        self._move(step, S.WAITING_APPROVAL)
        request = NewApproval(self.new_id(), step.key)
        self.approvals.append(request)
        step.approval_id, step.gate = request.id, GateStatus.PENDING
        self._emit(EventType.APPROVAL_REQUESTED, approval_id=str(request.id), step=step.key)

    def _decide_gate(
        self,
        step: StepState,
        approval_id: UUID,
        status: GateStatus,
        comment: str | None,
        by: UUID | None,
    ) -> None:
        step.gate = status
        self.decisions.append(ApprovalDecision(approval_id, status, comment, by))

    def _add(self, new: NewStep, now: datetime) -> None:
        if new.key in self.steps:
            raise Conflict(f"The run already has a step {new.key!r}.")
        unknown = [d for d in new.depends_on if d not in self.steps]
        if unknown:
            raise NotFound(f"No step {unknown[0]!r} in this run.")
        step = StepState(
            key=new.key,
            agent_code=new.agent_code,
            position=len(self.steps),
            status=S.PENDING,
            depends_on=tuple(new.depends_on),
            prompt=new.prompt,
            requires_approval=new.requires_approval,
        )
        self.steps[new.key] = step
        self.added.append(new.key)
        self.touched.add(new.key)
        self._emit(EventType.STEP_ADDED, step=new.key, agent=new.agent_code)
        if all(self.steps[d].status in SETTLED for d in step.depends_on):
            self._make_ready([new.key], now)

    def _make_ready(self, keys: Iterable[str], now: datetime) -> None:
        for step in sorted((self.steps[k] for k in keys), key=lambda s: s.position):
            if step.requires_approval:
                self._request_approval(step)
            else:
                self._queue(step, now)

    def _release_dependents(self, settled: str, now: datetime) -> None:
        ready = [
            s.key
            for s in self.steps.values()
            if s.status is S.PENDING
            and settled in s.depends_on
            and all(self.steps[d].status in SETTLED for d in s.depends_on)
        ]
        self._make_ready(ready, now)

    def _refresh(self, now: datetime) -> None:
        """The run's status from its steps, emitting `run.status` (and `run.finished`)."""
        status = run_status_of(self.run.status, (s.status for s in self.steps.values()))
        if status is not self.run.status:
            self._set_status(status, now)
        elif status is RunStatus.FAILED and self.run.error != (reason := self._failure()):
            # Still failed, for another step now (the first one was retried): say so.
            self.run.error, self.run.updated_at = reason, now
            self.run_touched = True

    def _set_status(self, status: RunStatus, now: datetime) -> None:
        run = self.run
        run.status, run.updated_at = status, now
        self.run_touched = True
        run.finished_at = now if status.finished else None
        if status is RunStatus.SUCCEEDED:
            run.output, run.error = self._sink_output(), None
        elif status is RunStatus.FAILED:
            run.error = self._failure()
        elif status is RunStatus.CANCELLED:
            run.error = "cancelled"
        else:
            run.error = None
        self._emit(EventType.RUN_STATUS, status=status.value)
        if status.finished:
            payload: dict[str, Any] = {"status": status.value}
            if run.error and status is RunStatus.FAILED:
                payload["error"] = run.error[:EVENT_ERROR_CHARS]
            self._emit(EventType.RUN_FINISHED, **payload)

    def _failure(self) -> str:
        """Why the run failed: its first failed or dead step, and that step's error."""
        for step in self.steps.values():
            if step.status in FAILED:
                what = "is dead" if step.status is S.DEAD else "failed"
                return f"Step {step.key} {what}: {step.error or 'no reason recorded'}"[
                    :MAX_ERROR_CHARS
                ]
        return "A step failed."

    def _sink_output(self) -> str | None:
        """The run's result: the outputs of the steps nothing depends on, in workflow order."""
        needed = {d for s in self.steps.values() for d in s.depends_on}
        outputs = [
            s.output
            for s in self.steps.values()
            if s.key not in needed and s.status is S.SUCCEEDED and s.output
        ]
        return "\n\n".join(o for o in outputs if o) or None

    def _emit(self, type_: EventType, **payload: Any) -> None:
        self.events.append(NewEvent(type_, payload))


def _claimable(step: StepState, now: datetime) -> bool:
    """Queued, or running on a lease that has run out (its worker is presumed dead)."""
    if step.status is S.QUEUED:
        return True
    return step.status is S.RUNNING and lease_expired(step.lease_until, now)


def step_view(run_id: UUID, s: StepState) -> Step:
    """A step as readers see it."""
    return Step(
        run_id=run_id,
        key=s.key,
        agent_code=s.agent_code,
        status=s.status,
        depends_on=s.depends_on,
        prompt=s.prompt,
        requires_approval=s.requires_approval,
        on_reject=s.on_reject,
        attempt=s.attempt,
        output=s.output,
        error=s.error,
        provider=s.provider,
        model=s.model,
        input_tokens=s.input_tokens,
        output_tokens=s.output_tokens,
        cost_usd=s.cost_usd,
        lease_until=s.lease_until,
        started_at=s.started_at,
        finished_at=s.finished_at,
    )
