"""What people do with durable runs: start, watch and steer them, decide their approvals and
answer their questions. Each use case is one unit of work: the caller's role is checked in
the same transaction as the change, and the step messages it produced are sent after commit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from guildstack.domain.authorization import Action
from guildstack.domain.errors import Conflict
from guildstack.domain.identity import Principal
from guildstack.domain.limits import MAX_WAIT_SECONDS
from guildstack.domain.paging import Page, PageRequest
from guildstack.domain.run_graph import RunGraph
from guildstack.domain.runs import (
    Approval,
    Event,
    Node,
    Question,
    Run,
    Workflow,
)
from guildstack.domain.vocabulary import (
    AgentStatus,
    Decision,
    GateStatus,
    RunKind,
    RunStatus,
)
from guildstack.observability import metrics
from guildstack.ports.event_feed import EventFeed, run_log
from guildstack.ports.uow import UnitOfWork
from guildstack.services.access import authorized
from guildstack.services.agents import AgentRegistry
from guildstack.services.event_cursor import FEED_RECHECK_SECONDS, EventCursor, Following
from guildstack.services.polling import Poller, Sleep

MAX_EVENT_WAIT_SECONDS = MAX_WAIT_SECONDS
MAX_INVOKE_WAIT_SECONDS = MAX_WAIT_SECONDS
NOT_RUNNABLE = frozenset({AgentStatus.PAUSED, AgentStatus.TERMINATED})


@dataclass(frozen=True)
class EventPage:
    items: list[Event]
    next_after: int


class RunService:
    def __init__(
        self,
        uow: UnitOfWork,
        agents: AgentRegistry,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_seconds: tuple[float, float] = (0.05, 0.5),
        feed: EventFeed | None = None,
        feed_recheck_seconds: float = FEED_RECHECK_SECONDS,
    ) -> None:
        self._uow = uow
        self._agents = agents
        self._poller = Poller(sleep, clock, *poll_seconds)
        self._following = Following(uow, feed, self._poller, feed_recheck_seconds)

    async def start(self, actor: Principal, workspace_id: UUID, workflow: Workflow) -> Run:
        """Validate (422 naming each problem), store the run and its steps, enqueue the
        roots: one transaction."""
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.RUN)
            agents = await self._agents.all_in(tx, workspace_id)
            valid = workflow.validated(a.code for a in agents if a.status not in NOT_RUNNABLE)
            graph = RunGraph.start(workspace_id, actor.user_id, valid, now=tx.now)
            run = await tx.runs.add(graph)
        metrics.add_metric(name="RunsStarted", unit="Count", value=1)
        return run

    async def invoke(
        self,
        actor: Principal,
        workspace_id: UUID,
        agent_code: str,
        input_: str,
        *,
        wait_seconds: float = 0,
    ) -> tuple[Run, bool]:
        """One agent on one input, as a `single` run; with a wait, the run as it stands when
        it finished or the wait ran out (and whether it finished)."""
        workflow = Workflow(
            RunKind.SINGLE, f"invoke {agent_code}", input_, (Node("main", agent_code),)
        )
        run = await self.start(actor, workspace_id, workflow)
        if wait_seconds <= 0:
            return run, False
        run_id = run.id
        waiting = (RunStatus.WAITING_INPUT, RunStatus.WAITING_APPROVAL)
        run = await self._poller.until(
            lambda: self.get(actor, workspace_id, run_id),
            lambda r: r.status.finished or r.status in waiting,
            min(wait_seconds, MAX_INVOKE_WAIT_SECONDS),
        )
        return run, run.status.finished

    async def get(self, actor: Principal, workspace_id: UUID, run_id: UUID) -> Run:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            return await tx.runs.get(workspace_id, run_id)

    async def list_runs(
        self,
        actor: Principal,
        workspace_id: UUID,
        page: PageRequest,
        status: RunStatus | None = None,
        kind: RunKind | None = None,
    ) -> Page[Run]:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            return await tx.runs.list_runs(workspace_id, page, status, kind)

    async def cancel(self, actor: Principal, workspace_id: UUID, run_id: UUID) -> Run:
        """No new step starts; steps already running finish and their results are dropped."""
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.STEER_RUN)
            async with tx.runs.locked(workspace_id, run_id) as graph:
                graph.cancel(actor.user_id, now=tx.now)
            return await tx.runs.get(workspace_id, run_id)

    async def retry_step(
        self, actor: Principal, workspace_id: UUID, run_id: UUID, step_key: str
    ) -> Run:
        """A dead or failed step runs again (back to its approver first if it needs one)."""
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.STEER_RUN)
            async with tx.runs.locked(workspace_id, run_id) as graph:
                graph.retry(step_key, now=tx.now)
            return await tx.runs.get(workspace_id, run_id)

    async def events(
        self,
        actor: Principal,
        workspace_id: UUID,
        run_id: UUID,
        *,
        after: int = 0,
        wait_seconds: float = 0,
        limit: int = 200,
    ) -> EventPage:
        """Events after `after`; with a wait, holds the request until one arrives or the wait
        (at most 25 s) runs out."""
        cursor = self.follow(actor, workspace_id, run_id, after=after, limit=limit)
        items = await cursor.next(min(wait_seconds, MAX_EVENT_WAIT_SECONDS))
        return EventPage(items, cursor.after)

    def follow(
        self,
        actor: Principal,
        workspace_id: UUID,
        run_id: UUID,
        *,
        after: int = 0,
        limit: int = 200,
    ) -> EventCursor:
        """A cursor on the events after `after`, for a reader that keeps reading (a
        stream): it reads Postgres to resume and at least every few seconds (checking
        access each time), and otherwise waits on the hot feed."""

        return self._following.cursor(
            actor,
            workspace_id,
            run_log(run_id),
            lambda tx, since: tx.runs.events(workspace_id, run_id, since, limit),
            after=after,
            limit=limit,
        )

    async def approvals(
        self, actor: Principal, workspace_id: UUID, status: GateStatus | None, page: PageRequest
    ) -> Page[Approval]:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            return await tx.runs.approvals(workspace_id, status, page)

    async def decide(
        self,
        actor: Principal,
        workspace_id: UUID,
        approval_id: UUID,
        decision: Decision,
        comment: str | None = None,
    ) -> Approval:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.DECIDE_APPROVAL)
            approval = await tx.runs.approval(workspace_id, approval_id)
            if approval.status is not GateStatus.PENDING:
                raise Conflict(f"The approval was already {approval.status.value}.")
            async with tx.runs.locked(workspace_id, approval.run_id) as graph:
                graph.decide(approval_id, decision, by=actor.user_id, comment=comment, now=tx.now)
            return await tx.runs.approval(workspace_id, approval_id)

    async def questions(
        self, actor: Principal, workspace_id: UUID, status: GateStatus | None, page: PageRequest
    ) -> Page[Question]:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            return await tx.runs.questions(workspace_id, status, page)

    async def answer(
        self, actor: Principal, workspace_id: UUID, question_id: UUID, answer: str
    ) -> Question:
        """The step that asked runs again with the answer in its prompt."""
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.ANSWER_QUESTION)
            question = await tx.runs.question(workspace_id, question_id)
            if question.status is not GateStatus.PENDING:
                raise Conflict("The question was already answered.")
            async with tx.runs.locked(workspace_id, question.run_id) as graph:
                graph.answer(question_id, question.step_key, answer, by=actor.user_id, now=tx.now)
            return await tx.runs.question(workspace_id, question_id)
