"""Ports of durable runs: the run repository (bound to one unit of work) and the queue.

The repository loads a `RunGraph` under its run row's lock and writes back what the graph
changed; it decides nothing. Reads run under whoever the unit of work acts for (RLS).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from guildstack.domain.agents import Agent
from guildstack.domain.jobs import JobMessage
from guildstack.domain.paging import Page, PageRequest
from guildstack.domain.run_graph import NewEvent, RunGraph
from guildstack.domain.runs import Approval, Event, Handoff, Question, Run
from guildstack.domain.vocabulary import GateStatus, RunKind, RunStatus

__all__ = ["RunRepository", "StaleStep", "StepContext", "StepInputs", "StepQueue"]


@dataclass(frozen=True)
class StepInputs:
    """What a claimed step's prompt is made of, besides the run's goal."""

    prompt: str | None
    handoffs: tuple[Handoff, ...]
    answers: tuple[tuple[str, str], ...]  # (question, answer) in the order asked


@dataclass(frozen=True)
class StepContext:
    """What a worker needs, beside the graph, to run the step it claims: its inputs, and the
    workspace's own row of its agent (None: the catalog's definition applies)."""

    inputs: StepInputs
    agent: Agent | None


@dataclass(frozen=True)
class StaleStep:
    workspace_id: UUID
    run_id: UUID
    step_key: str


class RunRepository(Protocol):
    async def add(self, graph: RunGraph) -> Run:
        """Store a graph made by `RunGraph.start` (run, steps, first events, gates)."""
        ...

    def locked(self, workspace_id: UUID, run_id: UUID) -> AbstractAsyncContextManager[RunGraph]:
        """The run's graph under its row lock; what it changed is written back when the
        block exits cleanly (and its dispatches queued for after commit). `NotFound` when
        the run is not this workspace's or not visible to the caller."""
        ...

    def claiming(
        self, workspace_id: UUID, run_id: UUID, step_keys: Sequence[str]
    ) -> AbstractAsyncContextManager[tuple[RunGraph, Mapping[str, StepContext]]]:
        """`locked`, plus the context of each of these steps (of those the run has), read in
        the same round trip: a claim of one step, or of several of the run at once."""
        ...

    async def get(self, workspace_id: UUID, run_id: UUID) -> Run: ...

    async def list_runs(
        self,
        workspace_id: UUID,
        page: PageRequest,
        status: RunStatus | None = None,
        kind: RunKind | None = None,
    ) -> Page[Run]: ...

    async def events(self, workspace_id: UUID, run_id: UUID, after: int, limit: int) -> list[Event]:
        """Events after `after`, in order; `NotFound` for a run the caller cannot see."""
        ...

    async def approvals(
        self, workspace_id: UUID, status: GateStatus | None, page: PageRequest
    ) -> Page[Approval]: ...

    async def approval(self, workspace_id: UUID, approval_id: UUID) -> Approval: ...

    async def questions(
        self, workspace_id: UUID, status: GateStatus | None, page: PageRequest
    ) -> Page[Question]: ...

    async def question(self, workspace_id: UUID, question_id: UUID) -> Question: ...

    async def append_tokens(
        self, workspace_id: UUID, run_id: UUID, step_key: str, attempt: int, text: str
    ) -> bool:
        """A `step.token` event, unless `attempt` no longer holds the step. A narrow append:
        it never waits on the run row's lock, so parallel steps never wait on each other."""
        ...

    async def append_step_events(
        self,
        workspace_id: UUID,
        run_id: UUID,
        step_key: str,
        attempt: int,
        events: Sequence[NewEvent],
    ) -> bool:
        """Events of a running attempt (its tool calls), appended as tokens are: unless
        `attempt` no longer holds the step, without the run row's lock."""
        ...

    async def stale(self, queued_before_seconds: int, limit: int) -> list[StaleStep]:
        """Steps queued longer than that (their message may be lost) and running steps
        whose lease ran out: candidates for `RunGraph.requeue_stale`."""
        ...


class StepQueue(Protocol):
    async def send(self, messages: Sequence[JobMessage], *, delay_seconds: int = 0) -> None:
        """Enqueue each message (at least once), visible after `delay_seconds`."""
        ...

    async def delay(self, receipt_handle: str, seconds: int) -> None:
        """Let a received message come back only after `seconds` (a retry's backoff)."""
        ...
