"""`StepEngine`: executes one step message. Claim (one transaction: the graph's claim, the
step's inputs and its agent), call the agent's model (its text appended as `step.token`
events while it streams), then one transaction records the outcome: the output, handoff,
events, the dependents released and the call's usage row, together. At-least-once
delivery, exactly-once effects: a second copy of a message finds the step taken or done.

The steps of one run serialize on its row lock. Claims of one run that arrive while another
of its claims is in flight in this process wait for it and then go together, in one
transaction (each step claimed, and its call reserved, as if alone); so do outcomes: a
fan-out's ten claims take two turns of the lock instead of ten, and so do its outcomes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from guildstack.domain.agents import Agent, AgentSpec
from guildstack.domain.errors import (
    BudgetExceeded,
    CircuitOpen,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
)
from guildstack.domain.identity import Principal
from guildstack.domain.jobs import JobMessage
from guildstack.domain.models import (
    CallContext,
    ChatMessage,
    Completion,
    Delta,
    ModelRequest,
    Ticket,
)
from guildstack.domain.run_graph import NewEvent, NewStep, RunGraph, StepResult, Verdict
from guildstack.domain.runs import (
    ASKING_INSTRUCTIONS,
    Run,
    Workflow,
    parse_question,
    step_messages,
)
from guildstack.domain.vocabulary import AgentStatus, EventType, RunKind
from guildstack.observability import logger, metrics
from guildstack.ports.models import LanguageModel
from guildstack.ports.runs import StepContext, StepInputs
from guildstack.ports.uow import Tx, UnitOfWork
from guildstack.ports.usage import UsageLedger
from guildstack.services.agents import AgentRegistry
from guildstack.services.models import settle_in
from guildstack.services.tool_loop import StepTools, ToolRounds

# Failures no retry can fix: the step fails at once instead of going round the queue.
TERMINAL = (BudgetExceeded, InvalidInput, NotFound, Forbidden, Conflict)
UNAVAILABLE = frozenset({AgentStatus.PAUSED, AgentStatus.TERMINATED})


class StepAttemptFailed(Exception):
    """This attempt failed in a way another attempt may not: let the queue redeliver it
    after `retry_after_seconds` (None: the policy's backoff for `attempt`)."""

    def __init__(self, step_key: str, attempt: int, cause: str, retry_after: float | None = None):
        super().__init__(f"step {step_key} attempt {attempt}: {cause}")
        self.attempt = attempt
        self.retry_after_seconds = retry_after


Streamer = Callable[[ModelRequest], Awaitable[tuple[Completion, str]]]
Deltas = Callable[[str], Awaitable[None]]


class StepExecutor(Protocol):
    """How the steps of one kind of run are done, instead of the engine's one model call: a
    chat turn consults specialists, then streams the core assistant's reply. `stream` makes
    the step's streamed call (its tokens recorded and passed on, like the engine's own); the
    executor returns what it returned (or a call it made and settled itself). Its steps ask
    the user questions (`QUESTION: ...`) only when `asks` says so."""

    asks: bool

    def prepare(self, claim: Claim) -> ModelRequest | None:
        """The step's streamed request when it is known at claim time (it is then reserved
        with the claim, and found in `claim.request`); None when it is built later."""
        ...

    async def execute(self, claim: Claim, stream: Streamer) -> tuple[Completion, str]: ...

    async def follow(
        self,
        tx: Tx,
        graph: RunGraph,
        claim: Claim,
        completion: Completion,
        question: str | None,
    ) -> Sequence[NewStep]:
        """In the transaction that records the step's outcome (the run locked; the attempt
        still holds the step): record it where the kind keeps it, and return the steps to
        add to the run after it (a discussion's next turns)."""
        ...


class MemoryContext(Protocol):
    async def context_for(
        self, actor: Principal, workspace_id: UUID, query: str, *, limit: int = 5
    ) -> str: ...


@dataclass(frozen=True)
class Claim:
    """A step this worker holds for `attempt`, with everything its prompt needs."""

    workspace_id: UUID
    run_id: UUID
    step_key: str
    attempt: int
    created_by: UUID | None
    run_input: str
    run_budget_usd: Decimal | None
    agent: AgentSpec
    agent_status: AgentStatus
    inputs: StepInputs
    # Built and paid for at claim time when the prompt needs nothing more (no memories).
    request: ModelRequest | None = None
    ticket: Ticket | None = None
    kind: RunKind = RunKind.DAG
    # What the area that started the run keeps with it (see `RunState.context`).
    run_context: Mapping[str, Any] = field(default_factory=dict)
    # The most the step's next call may cost (a delegated step's budget share left).
    spend_cap_usd: Decimal | None = None

    def context(self) -> CallContext:
        return CallContext(
            workspace_id=self.workspace_id,
            user_id=self.created_by,
            agent_code=self.agent.code,
            run_id=self.run_id,
            step_key=self.step_key,
            run_budget_usd=self.run_budget_usd,
            spend_cap_usd=self.spend_cap_usd,
        )


ClaimResult = tuple[Claim | None, float | None]
T = TypeVar("T")
R = TypeVar("R")


class _Together(Generic[T, R]):
    """Transactions on one run that meet in this process go together. The first of a run
    starts at once, with those already on their way (the other records of a batch of
    messages); those that arrive while it is in flight wait for it, then go as one batch,
    and so on. `run(items)` returns one result per item; should a batch fail, its items
    run one at a time, so each gets its own result or error."""

    def __init__(self, run: Callable[[Sequence[T]], Awaitable[list[R]]], what: str) -> None:
        self._run = run
        self._what = what
        self._waiting: dict[Hashable, list[tuple[T, asyncio.Future[R]]]] = {}
        self._batches: set[asyncio.Task[None]] = set()

    async def __call__(self, key: Hashable, item: T) -> R:
        waiting = self._waiting.get(key)
        if waiting is not None:
            result: asyncio.Future[R] = asyncio.get_running_loop().create_future()
            waiting.append((item, result))
            return await result
        self._waiting[key] = []
        try:
            await asyncio.sleep(0)  # let those already scheduled join
            joined, self._waiting[key] = self._waiting[key], []
            if not joined:
                return (await self._run([item]))[0]
            outcomes = await self._outcomes(item, joined)
        finally:
            self._next(key)
        own = outcomes[0]
        if isinstance(own, BaseException):
            raise own
        return own

    def _next(self, key: Hashable) -> None:
        """The batch in flight ended: those that waited for it go together."""
        waiting = self._waiting.pop(key)
        if waiting:
            self._waiting[key] = []
            task = asyncio.create_task(self._serve(key, waiting))
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _serve(self, key: Hashable, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            await self._outcomes(None, batch)
        finally:
            self._next(key)

    async def _outcomes(
        self, own: T | None, batch: list[tuple[T, asyncio.Future[R]]]
    ) -> list[R | BaseException]:
        """Each item's outcome (`own` first, when given), handed to those waiting."""
        items = [item for item, _ in batch]
        try:
            outcomes = await self._each(items if own is None else [own, *items])
        except BaseException:  # cancelled (the loop is closing): so are those waiting
            for _, result in batch:
                result.cancel()
            raise
        theirs = outcomes if own is None else outcomes[1:]
        for (_, result), outcome in zip(batch, theirs, strict=True):
            if result.done():
                continue  # its caller was cancelled meanwhile
            if isinstance(outcome, BaseException):
                result.set_exception(outcome)
            else:
                result.set_result(outcome)
        return outcomes

    async def _each(self, items: Sequence[T]) -> list[R | BaseException]:
        try:
            return list(await self._run(items))
        except Exception:  # noqa: BLE001 - nothing was committed: each alone says what failed
            logger.info("a batch failed; one at a time", extra={"batch": self._what})
        outcomes: list[R | BaseException] = []
        for item in items:
            try:
                outcomes.extend(await self._run([item]))
            except Exception as exc:  # noqa: BLE001 - handed to that item's caller
                outcomes.append(exc)
        return outcomes


@dataclass(frozen=True)
class _Outcome:
    """An attempt's outcome to record: its change to the graph, its last streamed text and
    its unsettled call."""

    claim: Claim
    change: Callable[[RunGraph, datetime, Sequence[NewStep]], Verdict]
    tail: str
    completion: Completion | None
    follow: Callable[[Tx, RunGraph], Awaitable[Sequence[NewStep]]] | None = None


class StepEngine:
    def __init__(
        self,
        uow: UnitOfWork,
        agents: AgentRegistry,
        model: LanguageModel,
        *,
        lease_seconds: int = 180,
        memory: MemoryContext | None = None,
        flush_seconds: float = 0.25,
        flush_chars: int = 400,
        clock: Callable[[], float] = time.monotonic,
        executors: Mapping[RunKind, StepExecutor] | None = None,
        tools: StepTools | None = None,
    ) -> None:
        self._uow = uow
        self._tools = tools
        self._executors = dict(executors or {})
        self._agents = agents
        self._model = model
        self._memory = memory
        self._lease = lease_seconds
        self._flush_seconds = flush_seconds
        self._flush_chars = flush_chars
        self._clock = clock
        self._claims = _Together(self._claim_batch, "claims")
        self._outcomes = _Together(self._finish_batch, "outcomes")

    def execute_with(self, kind: RunKind, executor: StepExecutor) -> None:
        self._executors[kind] = executor

    async def handle(self, message: JobMessage, on_delta: Deltas | None = None) -> None:
        """Raises `StepAttemptFailed` when the queue should deliver the message again.
        `on_delta` hears the step's text as it streams (a caller executing a step itself,
        to stream it on)."""
        key = message.step_key or ""
        claim, busy_for = await self._claim(message, key)
        if claim is None:
            if busy_for is not None:
                # Another worker is executing the step. Keep this copy until that attempt
                # ends: should it fail, this message is what runs the step again.
                raise StepAttemptFailed(key, 0, "step is leased by another worker", busy_for + 1)
            metrics.add_metric(name="StepMessagesDropped", unit="Count", value=1)
            return
        await self._attempt(claim, on_delta)

    async def start(
        self,
        workspace_id: UUID,
        created_by: UUID | None,
        workflow: Workflow,
        key: str,
        on_delta: Deltas | None = None,
        *,
        context: Mapping[str, Any] | None = None,
        dispatch_delay_seconds: int = 0,
        lease_seconds: int | None = None,
    ) -> Run:
        """Start a run and execute its root step `key` here, at once (a chat turn streams
        its reply so). One transaction makes the run, claims the step and reserves its call
        when the prompt is complete; the attempt then goes as `handle`'s does. The step's
        queue message, held back `dispatch_delay_seconds`, is the fallback should this
        process die: it finds the lease, and takes over when the lease (`lease_seconds`)
        ends."""
        node = next(n for n in workflow.nodes if n.key == key)
        async with self._uow.system("start a run and claim its step") as tx:
            agent = await self._agents.resolve(tx, workspace_id, node.agent)
            graph = RunGraph.start(
                workspace_id,
                created_by,
                workflow,
                now=tx.now,
                context=context,
                dispatch_delay_seconds=dispatch_delay_seconds,
            )
            step = graph.claim(key, lease_seconds=lease_seconds or self._lease, now=tx.now)
            if step is None:
                raise Conflict(f"Step {key!r} of a new run cannot be claimed.")
            inputs = StepInputs(prompt=step.prompt, handoffs=(), answers=())
            claim = await self._prepared(
                tx.ledger, graph, self._claim_of(graph, key, step.attempt, agent, inputs), tx.now
            )
            run = await tx.runs.add(graph)
        if claim is not None:
            try:
                await self._attempt(claim, on_delta)
            except StepAttemptFailed:
                logger.info("an inline attempt failed; the step's message will retry it")
        return run

    async def _attempt(self, claim: Claim, on_delta: Deltas | None) -> None:
        """Execute a claimed step and record its outcome."""
        key = claim.step_key
        try:
            completion, tail, rounds = await self._execute(claim, on_delta)
        except CircuitOpen as exc:
            # Nothing was tried: give the step back uncounted and come back once a breaker
            # lets calls through, instead of spending one of the message's deliveries.
            seconds, reason = int(exc.retry_after_seconds) + 1, exc.detail
            await self._finish(
                claim,
                lambda g, now, _: g.defer(key, claim.attempt, reason, seconds=seconds, now=now),
            )
            metrics.add_metric(name="StepsDeferred", unit="Count", value=1)
            return
        except TERMINAL as exc:
            await self._fail(claim, exc, terminal=True)
            metrics.add_metric(name="StepsFailed", unit="Count", value=1)
            return
        except Exception as exc:
            logger.warning(
                "step attempt failed",
                extra={"run_id": str(claim.run_id), "step": key, "error": repr(exc)},
            )
            await self._fail(claim, exc, terminal=False)
            raise StepAttemptFailed(key, claim.attempt, _describe(exc)) from exc
        executor = self._executors.get(claim.kind)
        asks = executor is None or executor.asks
        question = parse_question(completion.text) if asks else None
        verdict = await self._finish(
            claim,
            lambda g, now, then: (
                g.ask(key, claim.attempt, question, now=now)
                if question is not None
                else g.succeed(key, claim.attempt, _result(completion, rounds), now=now, then=then)
            ),
            tail=tail,
            completion=completion,
            follow=(
                (lambda tx, g: executor.follow(tx, g, claim, completion, question))
                if executor is not None
                else (lambda tx, g: _then(rounds))
                if rounds.then
                else None
            ),
        )
        if verdict is Verdict.ACCEPTED and question is None:
            metrics.add_metric(name="StepsSucceeded", unit="Count", value=1)
        elif verdict is not Verdict.ACCEPTED:
            metrics.add_metric(name="StepResultsDiscarded", unit="Count", value=1)

    async def _claim(self, message: JobMessage, key: str) -> ClaimResult:
        """The claim; or None and, when another worker holds the step, its lease's rest.

        One transaction: the claim, the step's inputs and agent, and (for an agent that
        needs no memories, whose prompt is complete now) the call's budget reservation. A
        step the budget cannot pay for fails here, before any model is asked. Claims of
        the run that meet here go together (`_Together`)."""
        return await self._claims((message.workspace_id, message.job_id), (message, key))

    async def _claim_batch(self, entries: Sequence[tuple[JobMessage, str]]) -> list[ClaimResult]:
        message = entries[0][0]
        keys = list(dict.fromkeys(key for _, key in entries))
        try:
            async with self._uow.system("claim a step") as tx:
                async with tx.runs.claiming(message.workspace_id, message.job_id, keys) as (
                    graph,
                    contexts,
                ):
                    if self._tools is not None:
                        await self._tools.warm(tx, message.workspace_id)
                    outcomes = [
                        await self._claim_one(tx.ledger, graph, contexts, key, tx.now)
                        for _, key in entries
                    ]
        except NotFound:
            if len(entries) > 1:
                raise  # the run, or one step's agent: one at a time tells which
            return [(None, None)]  # the run (or its workspace, or the step's agent) is gone
        return outcomes

    async def _claim_one(
        self,
        ledger: UsageLedger,
        graph: RunGraph,
        contexts: Mapping[str, StepContext],
        key: str,
        now: datetime,
    ) -> ClaimResult:
        step = graph.claim(key, lease_seconds=self._lease, now=now)
        if step is None:
            return None, graph.lease_left(key, now)
        context = contexts[key]
        agent = self._agents.find(context.agent, step.agent_code)
        if agent is None:
            # Retired from the catalog while the step waited: no retry can help.
            error = f"NotFound: agent {step.agent_code!r} no longer exists."
            graph.fail(key, step.attempt, error, terminal=True, now=now)
            metrics.add_metric(name="StepsFailed", unit="Count", value=1)
            return None, None
        claim = self._claim_of(graph, key, step.attempt, agent, context.inputs)
        return await self._prepared(ledger, graph, claim, now), None

    def _claim_of(
        self, graph: RunGraph, key: str, attempt: int, agent: Agent, inputs: StepInputs
    ) -> Claim:
        run = graph.run
        return Claim(
            workspace_id=run.workspace_id,
            run_id=run.id,
            step_key=key,
            attempt=attempt,
            created_by=run.created_by,
            run_input=run.input,
            run_budget_usd=run.budget_usd,
            agent=agent.spec,
            agent_status=agent.status,
            inputs=inputs,
            kind=run.kind,
            run_context=run.context,
        )

    async def _prepared(
        self, ledger: UsageLedger, graph: RunGraph, claim: Claim, now: datetime
    ) -> Claim | None:
        """The claim with its call reserved when its prompt is complete now (no memories to
        look up; for another kind's executor, when it says so). A step the budget cannot
        pay for fails here, terminally: None."""
        if claim.agent_status in UNAVAILABLE:
            return claim
        executor = self._executors.get(claim.kind)
        if executor is not None:
            request = executor.prepare(claim)
        else:
            later = _needs_memory(claim) or (self._tools is not None and self._tools.may_use(claim))
            request = None if later else self._request(claim, memories=None)
        if request is None:
            return claim
        try:
            ticket = await self._model.reserve(ledger, request, claim.context())
        except BudgetExceeded as exc:
            graph.fail(claim.step_key, claim.attempt, _describe(exc), terminal=True, now=now)
            metrics.add_metric(name="StepsFailed", unit="Count", value=1)
            return None
        return replace(claim, request=request, ticket=ticket)

    async def _execute(
        self, claim: Claim, on_delta: Deltas | None
    ) -> tuple[Completion, str, ToolRounds]:
        """The model's answer (settled later, with the step's outcome), the streamed text
        not yet appended as token events, and what earlier rounds of tool calls left (their
        calls settled already; steps to add to the run)."""
        if claim.agent_status in UNAVAILABLE:
            raise Conflict(f"Agent {claim.agent.code!r} is {claim.agent_status.value}.")
        executor = self._executors.get(claim.kind)
        if executor is not None:
            completion, tail = await executor.execute(
                claim, lambda r: self._stream(claim, r, on_delta)
            )
            return completion, tail, ToolRounds()
        request = claim.request
        if request is None:
            memories = await self._memories(_run_creator(claim), claim)
            request = self._request(claim, memories)
        if self._tools is not None and self._tools.may_use(claim):
            return await self._tools.run(
                claim,
                request,
                lambda r, cap: self._stream(replace(claim, spend_cap_usd=cap), r, on_delta),
                self._settle_now,
            )
        completion, tail = await self._stream(claim, request, on_delta)
        return completion, tail, ToolRounds()

    async def _settle_now(self, claim: Claim, completion: Completion, tail: str) -> None:
        """A round of a step's tool loop ended: its text's last tokens and its call's usage
        row, now (the step goes on)."""
        async with self._uow.system("settle a tool round") as tx:
            if tail:
                await tx.runs.append_tokens(
                    claim.workspace_id, claim.run_id, claim.step_key, claim.attempt, tail
                )
            await settle_in(tx.ledger, claim.context(), completion)

    def _request(self, claim: Claim, memories: str | None) -> ModelRequest:
        spec, inputs = claim.agent, claim.inputs
        return ModelRequest(
            system=f"{spec.system_prompt}\n\n{ASKING_INSTRUCTIONS}",
            messages=(
                ChatMessage(
                    "user",
                    step_messages(
                        claim.run_input, inputs.prompt, inputs.handoffs, inputs.answers, memories
                    ),
                ),
            ),
            tier=spec.model_tier,
            temperature=spec.temperature,
            max_tokens=spec.max_tokens,
        )

    async def _memories(self, actor: Principal, claim: Claim) -> str | None:
        """The run creator's memories relevant to this step; none when memory is down (a
        step is better done without them than not at all)."""
        if self._memory is None or not _needs_memory(claim):
            return None
        query = " ".join(filter(None, (claim.run_input, claim.inputs.prompt)))[:2000]
        try:
            return await self._memory.context_for(actor, claim.workspace_id, query) or None
        except Exception:  # noqa: BLE001 - see docstring
            logger.warning("memory context unavailable for a step", extra={"step": claim.step_key})
            return None

    async def _stream(
        self, claim: Claim, request: ModelRequest, on_delta: Deltas | None = None
    ) -> tuple[Completion, str]:
        """Token events a few times a second while the model streams; what is left when it
        ends goes out with the step's outcome, in the same transaction."""
        pending: list[str] = []
        size = 0
        last_flush = self._clock()
        streaming = True
        completion: Completion | None = None
        stream = self._model.stream(request, claim.context(), settle=False, ticket=claim.ticket)
        async for item in stream:
            if isinstance(item, Delta):
                if on_delta is not None:
                    await on_delta(item.text)
                pending.append(item.text)
                size += len(item.text)
                due = self._clock() - last_flush >= self._flush_seconds
                if streaming and (due or size >= self._flush_chars):
                    streaming = await self._append_tokens(claim, "".join(pending))
                    pending, size, last_flush = [], 0, self._clock()
            else:
                completion = item
        if completion is None:  # pragma: no cover - the port promises a final Completion
            raise RuntimeError("the model stream ended without a completion")
        return completion, "".join(pending) if streaming else ""

    async def _append_tokens(self, claim: Claim, text: str) -> bool:
        async with self._uow.system("stream step tokens") as tx:
            return await tx.runs.append_tokens(
                claim.workspace_id, claim.run_id, claim.step_key, claim.attempt, text
            )

    async def _finish(
        self,
        claim: Claim,
        change: Callable[[RunGraph, datetime, Sequence[NewStep]], Verdict],
        *,
        tail: str = "",
        completion: Completion | None = None,
        follow: Callable[[Tx, RunGraph], Awaitable[Sequence[NewStep]]] | None = None,
    ) -> Verdict:
        """One transaction: the attempt's last tokens, its outcome on the graph and the
        call's usage row (whether the outcome is kept or discarded: the call was made).
        Outcomes of the run that meet here go together (`_Together`)."""
        outcome = _Outcome(claim, change, tail, completion, follow)
        return await self._outcomes((claim.workspace_id, claim.run_id), outcome)

    async def _finish_batch(self, outcomes: Sequence[_Outcome]) -> list[Verdict]:
        first = outcomes[0].claim
        async with self._uow.system("record a step's outcome") as tx:
            async with tx.runs.locked(first.workspace_id, first.run_id) as graph:
                verdicts = []
                for outcome in outcomes:
                    claim = outcome.claim
                    holds = graph.holds(claim.step_key, claim.attempt)
                    if outcome.tail and holds:
                        graph.events.append(_token(claim, outcome.tail))
                    then: Sequence[NewStep] = ()
                    if outcome.follow is not None and holds:
                        then = await outcome.follow(tx, graph)
                    verdicts.append(outcome.change(graph, tx.now, then))
                    if outcome.completion is not None:
                        await settle_in(tx.ledger, claim.context(), outcome.completion)
        return verdicts

    async def _fail(self, claim: Claim, exc: BaseException, *, terminal: bool) -> None:
        error = _describe(exc)
        await self._finish(
            claim,
            lambda g, now, _: g.fail(
                claim.step_key, claim.attempt, error, terminal=terminal, now=now
            ),
        )


def _needs_memory(claim: Claim) -> bool:
    return "memory" in claim.agent.capabilities


def _token(claim: Claim, text: str) -> NewEvent:
    return NewEvent(
        EventType.STEP_TOKEN, {"step": claim.step_key, "attempt": claim.attempt, "text": text}
    )


def _result(completion: Completion, rounds: ToolRounds | None = None) -> StepResult:
    """The step's result: the last call's text, and the tokens and cost of all its calls."""
    usage, cost = completion.usage, completion.cost_usd
    if rounds is not None:
        usage, cost = usage + rounds.usage, cost + rounds.cost_usd
    return StepResult(
        text=completion.text,
        provider=completion.provider,
        model=completion.model,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=cost,
        tier=completion.tier.value if completion.tier else None,
    )


async def _then(rounds: ToolRounds) -> Sequence[NewStep]:
    return rounds.then


def _run_creator(claim: Claim) -> Principal:
    """The engine reads memories as the person who started the run."""
    if claim.created_by is None:
        raise Forbidden("The run's creator no longer exists.")
    claims = {"sub": str(claim.created_by), "role": "authenticated"}
    return Principal(user_id=claim.created_by, email=None, claims=claims)


def _describe(exc: BaseException) -> str:
    detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {detail}"[:2000]
