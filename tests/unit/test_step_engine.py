"""StepEngine.handle over the in-memory unit of work, with scripted providers behind the real
failover chain and metered model: claims, outcomes, money, tokens, questions, leases,
breakers and cancellation. No I/O; time moves by hand."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from guildstack.domain.agents import AgentStatus
from guildstack.domain.errors import GuildstackError, InvalidRequest, ProviderFailed
from guildstack.domain.identity import Principal
from guildstack.domain.jobs import JobMessage
from guildstack.domain.models import ModelRequest, StreamItem
from guildstack.domain.paging import PageRequest
from guildstack.domain.runs import Node
from guildstack.domain.vocabulary import GateStatus, RunKind, RunStatus, StepStatus
from guildstack.services.agents import AgentRegistry
from guildstack.services.engine import StepAttemptFailed, StepEngine
from tests.fakes.models import ScriptedProvider
from tests.unit.run_support import (
    EDITOR,
    RECALLER,
    WRITER,
    GatedProvider,
    Stack,
    Ticks,
    build,
    texts,
    until,
)

S = StepStatus
PAGE = PageRequest()
RETRYABLE: GuildstackError = ProviderFailed(
    "overloaded", provider="anthropic", retryable=True, status=529
)


def message(stack: Stack, index: int = -1) -> JobMessage:
    return stack.uow.sent[index][0]


def types(stack: Stack, run_id: uuid.UUID) -> list[str]:
    return [e.type for e in stack.events(run_id)]


# Success -------------------------------------------------------------------------------


async def test_given_a_pipeline_when_each_message_is_delivered_then_it_succeeds_end_to_end() -> (
    None
):
    provider = ScriptedProvider("anthropic", ["Plan: launch in May.", "Copy for the May launch."])
    stack = build(provider)
    run_id = await stack.start(
        Node("plan", "writer", prompt="Make the plan."),
        Node("copy", "editor", prompt="Write the copy."),
        kind=RunKind.PIPELINE,
    )
    assert [m.step_key for m, _ in stack.uow.sent] == ["plan"]

    await stack.engine.handle(message(stack))

    plan = stack.step(run_id, "plan")
    assert plan.status is S.SUCCEEDED and plan.output == "Plan: launch in May."
    assert (plan.attempt, plan.provider, plan.model) == (1, "anthropic", "claude-haiku-4-5")
    assert plan.cost_usd > 0 and plan.lease_until is None
    assert len(stack.world.usage) == 1 and stack.world.held == {}
    record = stack.world.usage[0]
    assert (record.context.run_id, record.context.step_key, record.context.agent_code) == (
        run_id,
        "plan",
        "writer",
    )
    assert record.completion.cost_usd == plan.cost_usd
    assert stack.world.spent[stack.workspace] == plan.cost_usd
    assert [(m.step_key, delay) for m, delay in stack.uow.sent] == [("plan", 0), ("copy", 0)]

    await stack.engine.handle(message(stack))

    first, second = texts(provider.calls)
    assert "Launch the product." in first and "Make the plan." in first
    assert "Handoff" not in first
    assert "# Handoff from step `plan` (writer)\nPlan: launch in May." in second
    assert "Write the copy." in second
    assert [request.system.split("\n")[0] for _, request in provider.calls] == [
        "You are the writer.",
        "You are the editor.",
    ]
    run = await stack.runs.get(stack.operator, stack.workspace, run_id)
    assert run.status is RunStatus.SUCCEEDED and run.output == "Copy for the May launch."
    assert len(stack.world.usage) == 2 and stack.world.held == {}
    assert types(stack, run_id)[-2:] == ["run.status", "run.finished"]
    started = stack.events(run_id, "step.started")
    assert [e.payload["handoffs"] for e in started] == [[], ["plan"]]


async def test_given_an_agent_without_memory_then_a_step_is_exactly_two_transactions() -> None:
    stack = build(ScriptedProvider("anthropic", ["Short."]))
    run_id = await stack.start(Node("a", "writer"))
    before = len(stack.uow.transactions)

    await stack.drain()

    assert stack.uow.transactions[before:] == ["claim a step", "record a step's outcome"]
    assert stack.step(run_id, "a").status is S.SUCCEEDED


async def test_given_an_agent_with_memory_then_its_budget_is_reserved_when_it_is_called() -> None:
    stack = build(ScriptedProvider("anthropic", ["Remembered."]))
    run_id = await stack.start(Node("a", RECALLER.code))
    before = len(stack.uow.transactions)

    await stack.drain()

    assert stack.uow.transactions[before:] == [
        "claim a step",
        "budget reservation",
        "record a step's outcome",
    ]
    assert stack.step(run_id, "a").status is S.SUCCEEDED
    assert len(stack.world.usage) == 1 and stack.world.held == {}


async def test_given_a_fan_in_then_the_handoffs_reach_the_prompt_in_workflow_order() -> None:
    provider = ScriptedProvider("anthropic", ["A out.", "B out.", "C out."])
    stack = build(provider)
    await stack.start(
        Node("a", "writer"),
        Node("b", "editor"),
        Node("c", "writer", depends_on=("a", "b")),
    )

    await stack.drain()

    prompt = texts(provider.calls)[2]
    assert prompt.index("A out.") < prompt.index("B out.")


@dataclass
class Memories:
    """A memory service that answers `text` (or fails) and remembers who asked what."""

    text: str = "The user likes green."
    broken: bool = False
    asked: list[tuple[uuid.UUID, uuid.UUID, str]] = field(default_factory=list)

    async def context_for(
        self, actor: Principal, workspace_id: uuid.UUID, query: str, *, limit: int = 5
    ) -> str:
        self.asked.append((actor.user_id, workspace_id, query))
        if self.broken:
            raise RuntimeError("memory is down")
        return self.text


def with_memory(stack: Stack, memory: Memories) -> StepEngine:
    return StepEngine(stack.uow, stack.registry, stack.model, memory=memory, clock=stack.ticks)


async def test_given_an_agent_with_memory_then_the_run_creators_memories_are_in_its_prompt() -> (
    None
):
    provider = ScriptedProvider("anthropic", ["Green it is."])
    stack = build(provider)
    memory = Memories()
    run_id = await stack.start(Node("a", RECALLER.code, prompt="Pick a colour."))

    await with_memory(stack, memory).handle(message(stack))

    assert memory.asked == [
        (stack.operator.user_id, stack.workspace, "Launch the product. Pick a colour.")
    ]
    assert "# What you remember that may help\nThe user likes green." in texts(provider.calls)[0]
    assert stack.step(run_id, "a").status is S.SUCCEEDED


async def test_given_memory_down_then_the_step_runs_without_memories() -> None:
    provider = ScriptedProvider("anthropic", ["Done anyway."])
    stack = build(provider)
    run_id = await stack.start(Node("a", RECALLER.code))

    await with_memory(stack, Memories(broken=True)).handle(message(stack))

    assert "remember" not in texts(provider.calls)[0]
    assert stack.step(run_id, "a").status is S.SUCCEEDED


async def test_given_an_agent_without_memory_then_memories_are_not_read() -> None:
    stack = build()
    memory = Memories()
    await stack.start(Node("a", "writer"))

    await with_memory(stack, memory).handle(message(stack))

    assert memory.asked == []


async def test_given_a_memory_agent_and_a_budget_too_small_then_it_fails_without_a_call() -> None:
    provider = ScriptedProvider("anthropic", ["never"])
    stack = build(provider, budget=Decimal("0.0001"))
    run_id = await stack.start(Node("a", RECALLER.code))

    await stack.drain()

    assert provider.calls == [] and stack.world.held == {}
    step = stack.step(run_id, "a")
    assert step.status is S.FAILED and (step.error or "").startswith("BudgetExceeded:")


async def test_given_two_roots_finishing_together_then_their_dependent_is_released_once() -> None:
    provider = GatedProvider("anthropic", ["Part."])
    stack = build(provider)
    run_id = await stack.start(
        Node("a", "writer"), Node("b", "editor"), Node("c", "writer", depends_on=("a", "b"))
    )
    workers = [asyncio.create_task(stack.engine.handle(m)) for m, _ in list(stack.uow.sent)]
    stack.delivered = len(stack.uow.sent)
    await until(lambda: provider.waiting == 2)
    assert {stack.step(run_id, k).status for k in "ab"} == {S.RUNNING}

    provider.gate.set()
    await asyncio.gather(*workers)

    assert [m.step_key for m, _ in stack.uow.sent].count("c") == 1
    await stack.drain()
    assert (await stack.runs.get(stack.operator, stack.workspace, run_id)).status is (
        RunStatus.SUCCEEDED
    )


# Questions -----------------------------------------------------------------------------


async def test_given_a_question_reply_then_the_step_parks_and_the_answer_reaches_the_prompt() -> (
    None
):
    provider = ScriptedProvider("anthropic", ["QUESTION: Which market first?", "Germany plan."])
    stack = build(provider)
    run_id = await stack.start(Node("a", "writer"))

    await stack.drain()

    step = stack.step(run_id, "a")
    assert step.status is S.WAITING_INPUT and step.lease_until is None and step.output is None
    run = await stack.runs.get(stack.operator, stack.workspace, run_id)
    assert run.status is RunStatus.WAITING_INPUT
    pending = await stack.runs.questions(stack.operator, stack.workspace, GateStatus.PENDING, PAGE)
    assert [(q.step_key, q.question) for q in pending.items] == [("a", "Which market first?")]
    asked = stack.events(run_id, "question.asked")
    assert asked[0].payload["question_id"] == str(pending.items[0].id)
    assert len(stack.world.usage) == 1 and stack.world.held == {}  # asking was a paid call

    await stack.runs.answer(stack.operator, stack.workspace, pending.items[0].id, "Germany")
    await stack.drain()

    retry = texts(provider.calls)[1]
    assert "# You asked the user\nWhich market first?\n\n# The user answered\nGermany" in retry
    step = stack.step(run_id, "a")
    assert step.status is S.SUCCEEDED and step.attempt == 2 and step.output == "Germany plan."
    assert len(stack.world.usage) == 2


# Budget --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workspace_budget", "run_budget"),
    [(Decimal("0.0001"), None), (Decimal("10"), Decimal("0.0001"))],
    ids=["workspace", "run"],
)
async def test_given_a_budget_too_small_then_the_step_fails_at_claim_without_any_call(
    workspace_budget: Decimal, run_budget: Decimal | None
) -> None:
    provider = ScriptedProvider("anthropic", ["never"])
    stack = build(provider, budget=workspace_budget)
    run_id = await stack.start(Node("a", "writer"), budget_usd=run_budget)
    before = len(stack.uow.transactions)

    await stack.drain()  # handled: nothing for the queue to redeliver

    assert stack.uow.transactions[before:] == ["claim a step"]
    assert provider.calls == [] and stack.world.held == {} and stack.world.usage == []
    step = stack.step(run_id, "a")
    assert step.status is S.FAILED and step.error is not None
    assert step.error.startswith("BudgetExceeded:")
    failed = stack.events(run_id, "step.failed")
    assert [e.payload["will_retry"] for e in failed] == [False]
    run = await stack.runs.get(stack.operator, stack.workspace, run_id)
    assert run.status is RunStatus.FAILED and "BudgetExceeded" in (run.error or "")
    assert len(stack.uow.sent) == 1  # nothing sent again


# Failures ------------------------------------------------------------------------------


async def test_given_a_retryable_failure_then_the_attempt_raises_and_the_step_waits_queued() -> (
    None
):
    provider = ScriptedProvider("anthropic", [RETRYABLE] * 3 + ["Second time lucky."])
    stack = build(provider)
    run_id = await stack.start(Node("a", "writer"))
    sent = len(stack.uow.sent)

    with pytest.raises(StepAttemptFailed) as caught:
        await stack.engine.handle(message(stack))

    assert caught.value.attempt == 1 and caught.value.retry_after_seconds is None
    assert len(provider.calls) == 3  # the chain's own retries, within one attempt
    step = stack.step(run_id, "a")
    assert step.status is S.QUEUED and step.attempt == 1 and step.lease_until is None
    assert step.error is not None and step.error.startswith("ProviderUnavailable:")
    failed = stack.events(run_id, "step.failed")
    assert [(e.payload["attempt"], e.payload["will_retry"]) for e in failed] == [(1, True)]
    assert stack.world.held == {} and stack.world.usage == []
    assert len(stack.uow.sent) == sent  # the queue redelivers the same message

    await stack.engine.handle(message(stack))

    step = stack.step(run_id, "a")
    assert step.status is S.SUCCEEDED and step.attempt == 2 and step.error is None


async def test_given_a_terminal_error_then_the_step_fails_at_once() -> None:
    provider = ScriptedProvider("anthropic", [InvalidRequest("prompt too long")])
    stack = build(provider)
    run_id = await stack.start(Node("a", "writer"), Node("b", "editor", depends_on=("a",)))

    await stack.drain()  # no StepAttemptFailed: nothing to redeliver

    assert len(provider.calls) == 1
    step = stack.step(run_id, "a")
    assert step.status is S.FAILED and step.attempt == 1
    assert step.error == "InvalidRequest: prompt too long"
    assert stack.step(run_id, "b").status is S.PENDING
    assert stack.world.held == {} and stack.world.usage == []
    run = await stack.runs.get(stack.operator, stack.workspace, run_id)
    assert run.status is RunStatus.FAILED
    assert run.error == "Step a failed: InvalidRequest: prompt too long"


@pytest.mark.parametrize("status", [AgentStatus.PAUSED, AgentStatus.TERMINATED])
async def test_given_an_agent_paused_meanwhile_then_the_step_fails_terminally_without_a_call(
    status: AgentStatus,
) -> None:
    provider = ScriptedProvider("anthropic", ["never"])
    stack = build(provider)
    run_id = await stack.start(Node("a", "writer"))
    stack.pause(WRITER, status)

    await stack.drain()

    assert provider.calls == [] and stack.world.held == {} and stack.world.usage == []
    step = stack.step(run_id, "a")
    assert step.status is S.FAILED
    assert step.error == f"Conflict: Agent 'writer' is {status.value}."


async def test_given_a_step_of_a_vanished_run_then_the_message_is_dropped() -> None:
    stack = build()
    run_id = await stack.start(Node("a", "writer"))
    stale = message(stack)
    del stack.world.runs[run_id]
    before = len(stack.uow.transactions)

    await stack.engine.handle(stale)  # no StepAttemptFailed: nothing will ever run it

    assert stack.uow.transactions[before:] == ["claim a step"]
    assert stack.world.held == {}


async def test_given_an_unknown_step_key_then_the_message_is_dropped() -> None:
    provider = ScriptedProvider("anthropic", ["never"])
    stack = build(provider)
    run_id = await stack.start(Node("a", "writer"))

    await stack.engine.handle(JobMessage.step(stack.workspace, run_id, "nope"))

    assert provider.calls == [] and stack.step(run_id, "a").status is S.QUEUED


# Duplicates and leases -----------------------------------------------------------------


async def test_given_a_duplicate_while_another_attempt_holds_the_lease_then_retry_after_it() -> (
    None
):
    provider = GatedProvider("anthropic", ["Done."])
    stack = build(provider, lease_seconds=180)
    run_id = await stack.start(Node("a", "writer"))
    first = asyncio.create_task(stack.engine.handle(message(stack)))
    await provider.entered.wait()
    stack.clock.advance(60)
    events = len(stack.events(run_id))

    with pytest.raises(StepAttemptFailed) as caught:
        await stack.engine.handle(message(stack))

    assert caught.value.retry_after_seconds == pytest.approx(121, abs=1)
    assert caught.value.attempt == 0
    assert len(stack.events(run_id)) == events  # the duplicate changed nothing
    assert stack.step(run_id, "a").attempt == 1
    provider.gate.set()
    await first
    assert stack.step(run_id, "a").status is S.SUCCEEDED
    assert len(provider.calls) == 1


async def test_given_a_duplicate_after_success_then_it_is_dropped() -> None:
    provider = ScriptedProvider("anthropic", ["Done.", "Twice?"])
    stack = build(provider)
    run_id = await stack.start(Node("a", "writer"))
    await stack.drain()
    events, sent, usage = len(stack.events(run_id)), len(stack.uow.sent), len(stack.world.usage)

    await stack.engine.handle(message(stack, 0))

    assert len(provider.calls) == 1
    assert len(stack.events(run_id)) == events and len(stack.uow.sent) == sent
    assert len(stack.world.usage) == usage and stack.world.held == {}
    assert stack.step(run_id, "a").output == "Done."


async def test_given_a_worker_that_lost_its_lease_then_its_late_result_is_lost() -> None:
    """The first worker stalls past its lease; a second takes the step over and succeeds;
    the first one's result changes nothing (its call is still paid for)."""
    slow = GatedProvider("anthropic", ["Late answer."])
    stack = build(slow, lease_seconds=60)
    run_id = await stack.start(Node("a", "writer"))
    first = asyncio.create_task(stack.engine.handle(message(stack)))
    await slow.entered.wait()
    stack.clock.advance(61)
    slow.gate.set()  # from here on every call answers at once
    await stack.engine.handle(message(stack))  # the second worker, attempt 2
    assert stack.step(run_id, "a").attempt == 2

    await first

    step = stack.step(run_id, "a")
    assert step.status is S.SUCCEEDED and step.attempt == 2
    assert len(stack.events(run_id, "step.succeeded")) == 1
    assert len(stack.world.usage) == 2 and stack.world.held == {}


# Breakers ------------------------------------------------------------------------------


async def test_given_every_breaker_open_then_the_step_is_deferred_uncounted() -> None:
    anthropic = ScriptedProvider("anthropic", ["never"])
    openai = ScriptedProvider("openai", ["never"])
    stack = build(anthropic, openai, breaker_threshold=1, breaker_cooldown_seconds=30)
    stack.chain.breaker("anthropic").record_failure()
    stack.ticks.advance(10)
    stack.chain.breaker("openai").record_failure()  # anthropic's opens again first: in 20 s
    run_id = await stack.start(Node("a", "writer"))
    sent = len(stack.uow.sent)

    await stack.engine.handle(message(stack))  # no StepAttemptFailed: no delivery is spent

    assert anthropic.calls == [] and openai.calls == []
    step = stack.step(run_id, "a")
    assert step.status is S.QUEUED and step.attempt == 0 and step.lease_until is None
    assert stack.messages(sent) == [(JobMessage.step(stack.workspace, run_id, "a"), 21)]
    assert "step.failed" not in types(stack, run_id)
    deferred = stack.events(run_id, "step.deferred")
    assert [e.payload["retry_after"] for e in deferred] == [21]
    assert stack.world.held == {} and stack.world.usage == []

    stack.ticks.advance(21)
    await stack.engine.handle(message(stack))

    step = stack.step(run_id, "a")
    assert step.status is S.SUCCEEDED and step.attempt == 1
    assert len(anthropic.calls) == 1


# Tokens --------------------------------------------------------------------------------


async def test_given_a_small_flush_then_tokens_stream_and_the_tail_joins_the_outcome() -> None:
    # The scripted stream sends one delta per word (without the spaces).
    stack = build(ScriptedProvider("anthropic", ["alpha beta gamma delta epsilon"]), flush_chars=9)
    run_id = await stack.start(Node("a", "writer"))
    before = len(stack.uow.transactions)

    await stack.drain()

    assert stack.uow.transactions[before:] == [
        "claim a step",
        "stream step tokens",
        "stream step tokens",
        "record a step's outcome",
    ]
    tokens = stack.events(run_id, "step.token")
    assert [(t.payload["text"], t.payload["attempt"], t.payload["step"]) for t in tokens] == [
        ("alphabeta", 1, "a"),
        ("gammadelta", 1, "a"),
        ("epsilon", 1, "a"),
    ]
    succeeded = stack.events(run_id, "step.succeeded")[0]
    assert tokens[-1].seq == succeeded.seq - 1  # the tail, in the outcome's transaction
    started = stack.events(run_id, "step.started")[0]
    assert started.seq < tokens[0].seq


@dataclass
class SlowProvider(ScriptedProvider):
    """Each streamed item takes 0.3 s of the monotonic clock."""

    ticks: Ticks | None = None

    async def stream(self, model: str, request: ModelRequest) -> AsyncIterator[StreamItem]:
        async for item in super().stream(model, request):
            if self.ticks is not None:
                self.ticks.advance(0.3)
            yield item


async def test_given_a_slow_stream_then_tokens_flush_on_time_too() -> None:
    provider = SlowProvider("anthropic", ["one two three"])
    stack = build(provider, flush_seconds=0.25)
    provider.ticks = stack.ticks
    run_id = await stack.start(Node("a", "writer"))
    before = len(stack.uow.transactions)

    await stack.drain()

    tokens = stack.events(run_id, "step.token")
    assert [t.payload["text"] for t in tokens] == ["one", "two", "three"]
    assert stack.uow.transactions[before:].count("stream step tokens") == 3


# Cancellation --------------------------------------------------------------------------


async def test_given_a_cancel_while_the_step_runs_then_its_result_is_discarded_but_paid() -> None:
    provider = GatedProvider("anthropic", ["Too late."])
    stack = build(provider, flush_chars=1)
    run_id = await stack.start(Node("a", "writer"), Node("b", "editor", depends_on=("a",)))
    worker = asyncio.create_task(stack.engine.handle(message(stack)))
    await provider.entered.wait()

    run = await stack.runs.cancel(stack.operator, stack.workspace, run_id)
    assert run.status is RunStatus.CANCELLED
    assert stack.step(run_id, "a").status is S.RUNNING  # a running step finishes
    provider.gate.set()
    await worker

    step = stack.step(run_id, "a")
    assert step.status is S.SKIPPED and step.output is None and step.error == "run cancelled"
    assert stack.step(run_id, "b").status is S.SKIPPED
    assert "step.succeeded" not in types(stack, run_id)
    assert "step.token" not in types(stack, run_id)  # no tokens for a cancelled run
    assert len(stack.world.usage) == 1 and stack.world.held == {}
    assert stack.world.usage[0].context.step_key == "a"
    run = await stack.runs.get(stack.operator, stack.workspace, run_id)
    assert run.status is RunStatus.CANCELLED and run.output is None
    assert [m.step_key for m, _ in stack.uow.sent] == ["a"]


async def test_given_a_cancelled_run_then_a_queued_message_is_dropped_without_a_call() -> None:
    provider = ScriptedProvider("anthropic", ["never"])
    stack = build(provider)
    run_id = await stack.start(Node("a", "writer"))
    await stack.runs.cancel(stack.operator, stack.workspace, run_id)

    await stack.drain()

    assert provider.calls == [] and stack.step(run_id, "a").status is S.SKIPPED


# Agents that disappear -----------------------------------------------------------------


async def test_given_an_agent_no_longer_in_the_catalog_then_the_step_fails_terminally() -> None:
    provider = ScriptedProvider("anthropic", ["never"])
    stack = build(provider)
    run_id = await stack.start(Node("a", "writer"))
    # A deploy whose catalog no longer has the agent, while the step waits on the queue.
    registry = AgentRegistry([EDITOR], stack.uow)
    engine = StepEngine(stack.uow, registry, stack.model, clock=stack.ticks)

    await engine.handle(message(stack))

    assert provider.calls == []
    step = stack.step(run_id, "a")
    assert step.status is S.FAILED
    assert (step.error or "").startswith("NotFound:")
