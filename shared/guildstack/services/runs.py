"""Durable runs: starting and steering them (`RunService`), executing their steps
(`StepEngine`), and the queue's two safety nets (`DeadLetters`, `Sweeper`).

At-least-once delivery, exactly-once effects: every message may arrive twice or late, and
the store's conditional updates make the second arrival a no-op. Messages are sent only
after the transaction that made their steps runnable has committed; when a send fails the
step stays `queued` and the sweeper sends it again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar
from uuid import UUID

from guildstack.domain.errors import (
    BudgetExceeded,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
)
from guildstack.domain.identity import Principal
from guildstack.domain.models import CallContext, ChatMessage, Completion, Delta, ModelRequest
from guildstack.domain.paging import Page, PageRequest
from guildstack.domain.runs import (
    ASKING_INSTRUCTIONS,
    Approval,
    Event,
    GateStatus,
    Node,
    Question,
    Run,
    RunKind,
    RunStatus,
    Workflow,
    parse_question,
    step_messages,
)
from guildstack.domain.vocabulary import AgentStatus, Decision
from guildstack.observability import logger, metrics
from guildstack.ports.memory import MemoryStore
from guildstack.ports.models import LanguageModel
from guildstack.ports.runs import Claim, Message, Released, RunStore, StepMessage, StepQueue
from guildstack.services.agents import AgentRegistry

MAX_EVENT_WAIT_SECONDS = 25
MAX_INVOKE_WAIT_SECONDS = 25
Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


class StepAttemptFailed(Exception):
    """This attempt failed in a way another attempt may not: let the queue redeliver it
    after `retry_after_seconds` (None: the policy's backoff for `attempt`)."""

    def __init__(
        self, message: StepMessage, attempt: int, cause: str, retry_after: float | None = None
    ) -> None:
        super().__init__(f"step {message.step_key} attempt {attempt}: {cause}")
        self.attempt = attempt
        self.retry_after_seconds = retry_after


async def send_released(
    queue: StepQueue, workspace_id: UUID, run_id: UUID, released: Released
) -> None:
    """Send after commit. A failed send is not an error for the caller: the step is queued
    in the database, and the sweeper sends it again."""
    if not released.queued:
        return
    try:
        await queue.send(released.messages(workspace_id, run_id))
    except Exception:  # noqa: BLE001 - the outbox row survives; the sweeper re-sends
        logger.warning(
            "step messages not sent; the sweeper will re-send them",
            extra={"run_id": str(run_id), "steps": list(released.queued)},
            exc_info=True,
        )


@dataclass(frozen=True)
class EventPage:
    items: list[Event]
    next_after: int


class RunService:
    """What people do with runs (their own RLS applies to every store call)."""

    def __init__(
        self,
        store: RunStore,
        queue: StepQueue,
        agents: AgentRegistry,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_seconds: tuple[float, float] = (0.05, 0.5),
    ) -> None:
        self._store = store
        self._queue = queue
        self._agents = agents
        self._sleep = sleep
        self._clock = clock
        self._poll = poll_seconds

    async def start(self, actor: Principal, workspace_id: UUID, workflow: Workflow) -> Run:
        """Validate (422 naming each problem), store the run and its steps, enqueue the roots."""
        agents = await self._agents.list(actor, workspace_id)
        runnable = (a.code for a in agents if a.status is not AgentStatus.PAUSED)
        valid = workflow.validated(runnable)
        run = await self._store.create(actor, workspace_id, valid)
        queued = tuple(s.key for s in run.steps if s.status == "queued")
        await send_released(self._queue, workspace_id, run.id, Released(queued))
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
        run = await self._poll_until(
            lambda: self._store.get(actor, workspace_id, run_id),
            lambda r: r.status.finished or r.status in waiting,
            min(wait_seconds, MAX_INVOKE_WAIT_SECONDS),
        )
        return run, run.status.finished

    async def get(self, actor: Principal, workspace_id: UUID, run_id: UUID) -> Run:
        return await self._store.get(actor, workspace_id, run_id)

    async def list_runs(
        self,
        actor: Principal,
        workspace_id: UUID,
        page: PageRequest,
        status: RunStatus | None = None,
        kind: RunKind | None = None,
    ) -> Page[Run]:
        return await self._store.list_runs(actor, workspace_id, page, status, kind)

    async def cancel(self, actor: Principal, workspace_id: UUID, run_id: UUID) -> Run:
        """No new step starts; steps already running finish and their results are dropped."""
        return await self._store.cancel(actor, workspace_id, run_id)

    async def retry_step(
        self, actor: Principal, workspace_id: UUID, run_id: UUID, step_key: str
    ) -> None:
        released = await self._store.retry_step(actor, workspace_id, run_id, step_key)
        await send_released(self._queue, workspace_id, run_id, released)

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
        items = await self._poll_until(
            lambda: self._store.events(actor, workspace_id, run_id, after, limit),
            bool,
            min(max(wait_seconds, 0), MAX_EVENT_WAIT_SECONDS),
        )
        return EventPage(items, items[-1].seq if items else after)

    async def _poll_until(
        self, fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], seconds: float
    ) -> T:
        """`fetch()` again, backing off, until `done` says so or `seconds` have passed."""
        deadline = self._clock() + seconds
        delay = self._poll[0]
        while True:
            value = await fetch()
            if done(value) or self._clock() >= deadline:
                return value
            await self._sleep(delay)
            delay = min(delay * 2, self._poll[1])

    async def approvals(
        self, actor: Principal, workspace_id: UUID, status: GateStatus | None, page: PageRequest
    ) -> Page[Approval]:
        return await self._store.approvals(actor, workspace_id, status, page)

    async def decide(
        self,
        actor: Principal,
        workspace_id: UUID,
        approval_id: UUID,
        decision: Decision,
        comment: str | None = None,
    ) -> Approval:
        approval, released = await self._store.decide(
            actor, workspace_id, approval_id, decision, comment
        )
        await send_released(self._queue, workspace_id, approval.run_id, released)
        return approval

    async def questions(
        self, actor: Principal, workspace_id: UUID, status: GateStatus | None, page: PageRequest
    ) -> Page[Question]:
        return await self._store.questions(actor, workspace_id, status, page)

    async def answer(
        self, actor: Principal, workspace_id: UUID, question_id: UUID, answer: str
    ) -> Question:
        question, released = await self._store.answer(actor, workspace_id, question_id, answer)
        await send_released(self._queue, workspace_id, question.run_id, released)
        return question


# Failures no retry can fix: the step fails at once instead of going round the queue.
TERMINAL = (BudgetExceeded, InvalidInput, NotFound, Forbidden, Conflict)


class MemoryContext(Protocol):
    async def context_for(
        self, actor: Principal, workspace_id: UUID, query: str, *, limit: int = 5
    ) -> str: ...


class StepEngine:
    """Executes one step message: claim, call the agent's model (streaming its tokens as
    events), then record the output and release the dependents, or park on a question.
    Agents with the `memory` capability also get the run creator's relevant memories."""

    def __init__(
        self,
        store: RunStore,
        queue: StepQueue,
        agents: AgentRegistry,
        model: LanguageModel,
        *,
        lease_seconds: int = 180,
        memory: MemoryContext | None = None,
        flush_seconds: float = 0.25,
        flush_chars: int = 400,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._queue = queue
        self._agents = agents
        self._model = model
        self._memory = memory
        self._lease = lease_seconds
        self._flush_seconds = flush_seconds
        self._flush_chars = flush_chars
        self._clock = clock

    async def handle(self, message: StepMessage) -> None:
        """Raises `StepAttemptFailed` when the queue should deliver the message again."""
        claim = await self._store.claim(message, self._lease)
        if claim is None:
            left = await self._store.lease_left(message)
            if left is not None:
                # Another worker is executing the step. Keep this copy until that attempt
                # ends: should it fail, this message is what runs the step again.
                raise StepAttemptFailed(message, 0, "step is leased by another worker", left + 1)
            metrics.add_metric(name="StepMessagesDropped", unit="Count", value=1)
            return
        try:
            completion = await self._execute(claim)
        except TERMINAL as exc:
            await self._store.fail_attempt(claim, _describe(exc), terminal=True)
            metrics.add_metric(name="StepsFailed", unit="Count", value=1)
            return
        except Exception as exc:
            logger.warning(
                "step attempt failed",
                extra={"run_id": str(claim.run_id), "step": claim.step_key, "error": repr(exc)},
            )
            await self._store.fail_attempt(claim, _describe(exc), terminal=False)
            raise StepAttemptFailed(message, claim.attempt, _describe(exc)) from exc
        question = parse_question(completion.text)
        if question is not None:
            await self._store.ask(claim, question)
            return
        released = await self._store.succeed(claim, completion)
        if released is None:
            metrics.add_metric(name="StepResultsDiscarded", unit="Count", value=1)
            return
        metrics.add_metric(name="StepsSucceeded", unit="Count", value=1)
        await send_released(self._queue, claim.workspace_id, claim.run_id, released)

    async def _execute(self, claim: Claim) -> Completion:
        actor = _run_creator(claim)
        agent = await self._agents.get(actor, claim.workspace_id, claim.agent_code)
        if agent.status in (AgentStatus.PAUSED, AgentStatus.TERMINATED):
            raise Conflict(f"Agent {claim.agent_code!r} is {agent.status.value}.")
        spec = agent.spec
        memories = await self._memories(actor, claim) if "memory" in spec.capabilities else None
        request = ModelRequest(
            system=f"{spec.system_prompt}\n\n{ASKING_INSTRUCTIONS}",
            messages=(
                ChatMessage(
                    "user",
                    step_messages(
                        claim.run_input, claim.prompt, claim.handoffs, claim.answers, memories
                    ),
                ),
            ),
            tier=spec.model_tier,
            temperature=spec.temperature,
            max_tokens=spec.max_tokens,
        )
        context = CallContext(
            workspace_id=claim.workspace_id,
            user_id=claim.created_by,
            agent_code=spec.code,
            run_id=claim.run_id,
            step_key=claim.step_key,
            run_budget_usd=claim.run_budget_usd,
        )
        return await self._stream(claim, request, context)

    async def _memories(self, actor: Principal, claim: Claim) -> str | None:
        """The run creator's memories relevant to this step; none when memory is down (a
        step is better done without them than not at all)."""
        if self._memory is None:
            return None
        query = " ".join(filter(None, (claim.run_input, claim.prompt)))[:2000]
        try:
            return await self._memory.context_for(actor, claim.workspace_id, query) or None
        except Exception:  # noqa: BLE001 - see docstring
            logger.warning("memory context unavailable for a step", extra={"step": claim.step_key})
            return None

    async def _stream(
        self, claim: Claim, request: ModelRequest, context: CallContext
    ) -> Completion:
        """The model's answer, its text appended as `step.token` events as it arrives
        (coalesced to a few events a second)."""
        pending: list[str] = []
        size = 0
        last_flush = self._clock()
        streaming = True
        completion: Completion | None = None
        async for item in self._model.stream(request, context):
            if isinstance(item, Delta):
                pending.append(item.text)
                size += len(item.text)
                due = self._clock() - last_flush >= self._flush_seconds
                if streaming and (due or size >= self._flush_chars):
                    streaming = await self._store.append_tokens(claim, "".join(pending))
                    pending, size, last_flush = [], 0, self._clock()
            else:
                completion = item
        if streaming and pending:
            await self._store.append_tokens(claim, "".join(pending))
        if completion is None:  # pragma: no cover - the port promises a final Completion
            raise RuntimeError("the model stream ended without a completion")
        return completion


class DeadLetters:
    """The DLQ's consumer: a step the queue gave up on is `dead` and its run `failed`."""

    def __init__(self, store: RunStore) -> None:
        self._store = store

    async def bury(self, message: StepMessage, deliveries: int | None) -> bool:
        reason = f"gave up after {deliveries} deliveries" if deliveries else "dead-lettered"
        buried = await self._store.bury(message, f"The step failed repeatedly ({reason}).")
        if buried:
            metrics.add_metric(name="StepsDead", unit="Count", value=1)
        return buried


class Sweeper:
    """Every few minutes: re-send steps queued without a live message (a crash between
    commit and send) and steps whose worker died holding the lease."""

    def __init__(
        self,
        store: RunStore,
        queue: StepQueue,
        *,
        resend_after_seconds: int,
        batch: int = 500,
        documents: MemoryStore | None = None,
    ) -> None:
        self._store = store
        self._queue = queue
        self._resend_after = resend_after_seconds
        self._batch = batch
        self._documents = documents

    async def sweep(self) -> int:
        """Messages re-sent: stale steps, and documents still waiting for ingestion."""
        stale: Sequence[Message] = await self._store.stale(self._resend_after, self._batch)
        if self._documents is not None:
            documents = await self._documents.stale_documents(self._resend_after, self._batch)
            stale = [*stale, *documents]
        if stale:
            await self._queue.send(stale)
            metrics.add_metric(name="MessagesResent", unit="Count", value=len(stale))
        return len(stale)


def _run_creator(claim: Claim) -> Principal:
    """The engine reads the workspace's agents as the person who started the run."""
    if claim.created_by is None:
        raise Forbidden("The run's creator no longer exists.")
    claims = {"sub": str(claim.created_by), "role": "authenticated"}
    return Principal(user_id=claim.created_by, email=None, claims=claims)


def _describe(exc: BaseException) -> str:
    detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {detail}"[:2000]
