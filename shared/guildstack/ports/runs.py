"""Ports of durable runs: the run store (transactions of the step engine) and the step queue.

Operations named after a person (`create`, `cancel`, `retry_step`, `decide`, `answer`, reads)
run under the caller's row-level security. The engine's operations (`claim`, `succeed`,
`ask`, `fail_attempt`, `bury`, `stale`) run as the system. Every state change appends its
events in the same transaction; every operation that makes steps runnable returns their
keys so the caller sends their messages after commit (the transactional outbox).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from guildstack.domain.identity import Principal
from guildstack.domain.models import Completion
from guildstack.domain.paging import Page, PageRequest
from guildstack.domain.runs import (
    Approval,
    Event,
    GateStatus,
    Handoff,
    Question,
    Run,
    RunKind,
    RunStatus,
    Workflow,
)
from guildstack.domain.vocabulary import Decision


@dataclass(frozen=True)
class StepMessage:
    """The body of a step's queue message: which step of which run to execute."""

    workspace_id: UUID
    run_id: UUID
    step_key: str

    def body(self) -> str:
        return json.dumps(
            {
                "workspace_id": str(self.workspace_id),
                "run_id": str(self.run_id),
                "step_key": self.step_key,
            }
        )

    @classmethod
    def from_body(cls, body: str) -> StepMessage:
        """The message in a queue body; `ValueError` for anything else."""
        try:
            data = json.loads(body)
            key = data["step_key"]
            if not isinstance(key, str) or not key:
                raise ValueError("empty step_key")
            return cls(UUID(str(data["workspace_id"])), UUID(str(data["run_id"])), key)
        except (TypeError, KeyError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a step message: {exc}") from exc


@dataclass(frozen=True)
class Claim:
    """A step this worker holds until `attempt`'s lease runs out."""

    workspace_id: UUID
    run_id: UUID
    step_key: str
    attempt: int
    agent_code: str
    created_by: UUID | None
    run_input: str
    prompt: str | None
    run_budget_usd: Decimal | None
    handoffs: tuple[Handoff, ...]
    answers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Released:
    """What a change made runnable: steps to enqueue now."""

    queued: tuple[str, ...] = ()

    def messages(self, workspace_id: UUID, run_id: UUID) -> list[StepMessage]:
        return [StepMessage(workspace_id, run_id, key) for key in self.queued]


class RunStore(Protocol):
    # As the caller (RLS) -------------------------------------------------------------------
    async def create(self, actor: Principal, workspace_id: UUID, workflow: Workflow) -> Run:
        """The run and all its steps; root steps `queued` (or awaiting approval)."""
        ...

    async def get(self, actor: Principal, workspace_id: UUID, run_id: UUID) -> Run:
        """The run with its steps; `NotFound` outside the caller's workspaces."""
        ...

    async def list_runs(
        self,
        actor: Principal,
        workspace_id: UUID,
        page: PageRequest,
        status: RunStatus | None = None,
        kind: RunKind | None = None,
    ) -> Page[Run]: ...

    async def cancel(self, actor: Principal, workspace_id: UUID, run_id: UUID) -> Run: ...

    async def retry_step(
        self, actor: Principal, workspace_id: UUID, run_id: UUID, step_key: str
    ) -> Released:
        """A `dead` or `failed` step queued again (`Conflict` for any other status)."""
        ...

    async def events(
        self, actor: Principal, workspace_id: UUID, run_id: UUID, after: int, limit: int
    ) -> list[Event]: ...

    async def approvals(
        self, actor: Principal, workspace_id: UUID, status: GateStatus | None, page: PageRequest
    ) -> Page[Approval]: ...

    async def decide(
        self,
        actor: Principal,
        workspace_id: UUID,
        approval_id: UUID,
        decision: Decision,
        comment: str | None,
    ) -> tuple[Approval, Released]: ...

    async def questions(
        self, actor: Principal, workspace_id: UUID, status: GateStatus | None, page: PageRequest
    ) -> Page[Question]: ...

    async def answer(
        self, actor: Principal, workspace_id: UUID, question_id: UUID, answer: str
    ) -> tuple[Question, Released]: ...

    # As the system (the step engine) -------------------------------------------------------
    async def claim(self, message: StepMessage, lease_seconds: int) -> Claim | None:
        """Take the step (queued, or running with an expired lease) with one conditional
        update; None when it is finished, leased by another worker, or its run is over."""
        ...

    async def lease_left(self, message: StepMessage) -> float | None:
        """Seconds until another worker's lease on the step ends; None when nobody holds it."""
        ...

    async def append_tokens(self, claim: Claim, text: str) -> bool:
        """A `step.token` event; False once the claim is no longer the step's holder."""
        ...

    async def succeed(self, claim: Claim, completion: Completion) -> Released | None:
        """Output, handoff and events; dependents whose dependencies all succeeded released
        exactly once. None when the claim was lost (the result is discarded)."""
        ...

    async def ask(self, claim: Claim, question: str) -> bool:
        """Park the step in `waiting_input` with a pending question."""
        ...

    async def fail_attempt(self, claim: Claim, error: str, *, terminal: bool) -> None:
        """Record a failed attempt: `failed` (and the run failed) when `terminal`, else the
        step is queued again for the queue's redelivery."""
        ...

    async def bury(self, message: StepMessage, error: str) -> bool:
        """The dead-letter verdict: the step `dead`, its run `failed`. False when the step
        already finished (nothing to do)."""
        ...

    async def stale(self, queued_before_seconds: int, limit: int) -> Sequence[StepMessage]:
        """Queued steps whose message may be lost and running steps whose lease expired
        (queued again): the sweeper re-sends them."""
        ...


class Message(Protocol):
    def body(self) -> str: ...


class StepQueue(Protocol):
    async def send(self, messages: Sequence[Message]) -> None:
        """Enqueue each message (at least once)."""
        ...

    async def delay(self, receipt_handle: str, seconds: int) -> None:
        """Let a received message come back only after `seconds` (a retry's backoff)."""
        ...
