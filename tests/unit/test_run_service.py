"""RunService over the in-memory unit of work: validation, one transaction per use case,
roles per action, steering (cancel, retry), gates (approvals, questions), the events long
poll and invoke's wait. No I/O, no real sleeping."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest

from guildstack.domain.agents import AgentStatus
from guildstack.domain.errors import (
    Conflict,
    Forbidden,
    GuildstackError,
    InvalidWorkflow,
    NotFound,
    ProviderFailed,
)
from guildstack.domain.identity import Principal, Role
from guildstack.domain.jobs import JobMessage
from guildstack.domain.paging import PageRequest
from guildstack.domain.runs import Node, Workflow
from guildstack.domain.vocabulary import (
    Decision,
    GateStatus,
    OnReject,
    RunKind,
    RunStatus,
    StepStatus,
)
from guildstack.ports.memory import Embedder
from guildstack.services.engine import StepAttemptFailed
from guildstack.services.ingestion import DocumentIngestion
from guildstack.services.jobs import Jobs
from guildstack.services.runs import MAX_EVENT_WAIT_SECONDS, MAX_INVOKE_WAIT_SECONDS, RunService
from tests.fakes.models import ScriptedProvider
from tests.unit.run_support import EDITOR, WRITER, Stack, build, principal

S = StepStatus
PAGE = PageRequest()
RETRYABLE: GuildstackError = ProviderFailed(
    "overloaded", provider="anthropic", retryable=True, status=529
)


def no_embedder() -> Embedder:
    raise AssertionError("no document is ingested here")


def asking() -> ScriptedProvider:
    return ScriptedProvider("anthropic", ["QUESTION: Which market?", "Done."])


def flow(*nodes: Node, kind: RunKind = RunKind.DAG) -> Workflow:
    return Workflow(kind, "t", "Launch the product.", nodes)


async def failed_step(stack: Stack) -> uuid.UUID:
    """A run whose only step failed for good (its agent was paused when it ran; it is
    running again now)."""
    run_id = await stack.start(Node("a", "writer"))
    stack.pause(WRITER)
    await stack.drain()
    del stack.world.agents[(stack.workspace, WRITER.code)]
    assert stack.step(run_id, "a").status is S.FAILED
    return run_id


# Start ---------------------------------------------------------------------------------


async def test_given_a_dag_when_started_then_one_transaction_sends_each_root_after_commit() -> None:
    stack = build()
    before = len(stack.uow.transactions)

    run = await stack.runs.start(
        stack.operator,
        stack.workspace,
        flow(
            Node("a", "writer"),
            Node("b", "editor"),
            Node("c", "writer", depends_on=("a", "b")),
        ),
    )

    assert len(stack.uow.transactions) == before + 1
    assert stack.uow.sent == [
        (JobMessage.step(stack.workspace, run.id, "a"), 0),
        (JobMessage.step(stack.workspace, run.id, "b"), 0),
    ]
    assert run.status is RunStatus.QUEUED and run.created_by == stack.operator.user_id
    assert [(s.key, s.status) for s in run.steps] == [
        ("a", S.QUEUED),
        ("b", S.QUEUED),
        ("c", S.PENDING),
    ]
    stored = await stack.runs.get(stack.operator, stack.workspace, run.id)
    assert stored.steps == run.steps
    types = [e.type for e in stack.events(run.id)]
    assert types[0] == "run.created" and types.count("step.queued") == 2


async def test_given_a_root_needing_approval_when_started_then_no_message_and_an_approval() -> None:
    stack = build()

    run = await stack.runs.start(
        stack.operator, stack.workspace, flow(Node("a", "writer", requires_approval=True))
    )

    assert stack.uow.sent == []
    assert run.status is RunStatus.WAITING_APPROVAL
    pending = await stack.runs.approvals(stack.operator, stack.workspace, GateStatus.PENDING, PAGE)
    assert [(a.run_id, a.step_key) for a in pending.items] == [(run.id, "a")]


@pytest.mark.parametrize(
    ("nodes", "problem"),
    [
        ((Node("a", "nobody"),), "unknown_agent"),
        ((Node("a", "writer", depends_on=("b",)), Node("b", "editor", depends_on=("a",))), "cycle"),
        ((Node("a", "writer", depends_on=("zz",)),), "dangling_dependency"),
    ],
)
async def test_given_an_invalid_workflow_when_started_then_422_and_nothing_written(
    nodes: tuple[Node, ...], problem: str
) -> None:
    stack = build()
    before = copy.deepcopy(stack.world)

    with pytest.raises(InvalidWorkflow) as caught:
        await stack.runs.start(stack.operator, stack.workspace, flow(*nodes))

    assert problem in [e["type"] for e in caught.value.errors]
    assert stack.world == before and stack.uow.sent == []


@pytest.mark.parametrize("status", [AgentStatus.PAUSED, AgentStatus.TERMINATED])
async def test_given_an_agent_not_runnable_when_started_then_422_naming_it(
    status: AgentStatus,
) -> None:
    stack = build()
    stack.pause(EDITOR, status)

    with pytest.raises(InvalidWorkflow) as caught:
        await stack.runs.start(
            stack.operator, stack.workspace, flow(Node("a", "writer"), Node("b", "editor"))
        )

    assert [(e["type"], e["loc"]) for e in caught.value.errors] == [
        ("unknown_agent", ["body", "nodes", "1", "agent"])
    ]
    assert stack.world.runs == {} and stack.uow.sent == []


# Roles ---------------------------------------------------------------------------------


async def _scene(stack: Stack) -> dict[str, uuid.UUID]:
    """Runs with a pending question, a pending approval, a failed step and a queued step
    (the stack's provider asks first)."""
    asked = await stack.start(Node("q", "writer"))
    await stack.drain()
    gated = await stack.start(Node("g", "writer", requires_approval=True))
    failed = await failed_step(stack)
    plain = await stack.start(Node("p", "writer"))
    questions = await stack.runs.questions(stack.operator, stack.workspace, None, PAGE)
    approvals = await stack.runs.approvals(stack.operator, stack.workspace, None, PAGE)
    return {
        "asked": asked,
        "gated": gated,
        "failed": failed,
        "plain": plain,
        "question": questions.items[0].id,
        "approval": approvals.items[0].id,
    }


Call = Callable[[RunService, Principal, uuid.UUID, dict[str, uuid.UUID]], Awaitable[object]]

READS: dict[str, Call] = {
    "get": lambda s, p, ws, ids: s.get(p, ws, ids["asked"]),
    "list_runs": lambda s, p, ws, ids: s.list_runs(p, ws, PAGE),
    "events": lambda s, p, ws, ids: s.events(p, ws, ids["asked"]),
    "approvals": lambda s, p, ws, ids: s.approvals(p, ws, None, PAGE),
    "questions": lambda s, p, ws, ids: s.questions(p, ws, None, PAGE),
}
WRITES: dict[str, Call] = {
    "start": lambda s, p, ws, ids: s.start(p, ws, flow(Node("x", "writer"))),
    "invoke": lambda s, p, ws, ids: s.invoke(p, ws, "writer", "hi"),
    "cancel": lambda s, p, ws, ids: s.cancel(p, ws, ids["plain"]),
    "retry_step": lambda s, p, ws, ids: s.retry_step(p, ws, ids["failed"], "a"),
    "decide": lambda s, p, ws, ids: s.decide(p, ws, ids["approval"], Decision.APPROVE),
    "answer": lambda s, p, ws, ids: s.answer(p, ws, ids["question"], "Germany"),
}


@pytest.mark.parametrize("role", [Role.VIEWER, Role.ANALYST])
async def test_given_a_member_below_operator_then_reads_pass_and_every_change_is_forbidden(
    role: Role,
) -> None:
    stack = build(asking())
    ids = await _scene(stack)
    person = stack.people[role]
    for name, read in READS.items():
        assert await read(stack.runs, person, stack.workspace, ids) is not None, name
    assert (await stack.runs.questions(person, stack.workspace, None, PAGE)).items
    assert (await stack.runs.approvals(person, stack.workspace, None, PAGE)).items
    assert len((await stack.runs.list_runs(person, stack.workspace, PAGE)).items) == 4
    before, sent = copy.deepcopy(stack.world), len(stack.uow.sent)

    for name, write in WRITES.items():
        with pytest.raises(Forbidden):
            await write(stack.runs, person, stack.workspace, ids)
        assert stack.world == before and len(stack.uow.sent) == sent, name


async def test_given_an_outsider_then_everything_is_not_found_and_nothing_is_written() -> None:
    stack = build(asking())
    ids = await _scene(stack)
    stranger = principal()
    before, sent = copy.deepcopy(stack.world), len(stack.uow.sent)

    for name, call in {**READS, **WRITES}.items():
        with pytest.raises(NotFound):
            await call(stack.runs, stranger, stack.workspace, ids)
        assert stack.world == before and len(stack.uow.sent) == sent, name


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ADMIN, Role.OWNER])
async def test_given_an_operator_or_above_then_every_change_is_allowed(role: Role) -> None:
    stack = build(asking())
    ids = await _scene(stack)
    person = stack.people[role]

    for name, write in WRITES.items():
        assert await write(stack.runs, person, stack.workspace, ids) is not None, name


async def test_given_a_run_of_another_workspace_then_not_found_even_for_its_members() -> None:
    stack, other = build(), build()
    run_id = await other.start(Node("a", "writer"))
    stack.world.runs[run_id] = other.world.runs[run_id]  # same database, another workspace

    with pytest.raises(NotFound):
        await stack.runs.get(stack.operator, stack.workspace, run_id)
    with pytest.raises(NotFound):
        await stack.runs.cancel(stack.operator, stack.workspace, run_id)
    with pytest.raises(NotFound):  # naming its own workspace: not a member there
        await stack.runs.get(stack.operator, other.workspace, run_id)


# Steering ------------------------------------------------------------------------------


async def test_given_a_run_when_cancelled_twice_then_the_second_is_a_conflict() -> None:
    stack = build()
    run_id = await stack.start(Node("a", "writer"), Node("b", "editor", depends_on=("a",)))
    before = len(stack.uow.transactions)

    run = await stack.runs.cancel(stack.operator, stack.workspace, run_id)

    assert len(stack.uow.transactions) == before + 1
    assert run.status is RunStatus.CANCELLED and run.error == "cancelled"
    assert [s.status for s in run.steps] == [S.SKIPPED, S.SKIPPED]
    assert [e.type for e in stack.events(run_id)][-2:] == ["run.status", "run.finished"]
    with pytest.raises(Conflict):
        await stack.runs.cancel(stack.operator, stack.workspace, run_id)


async def test_given_a_pending_approval_when_the_run_is_cancelled_then_it_is_rejected() -> None:
    stack = build()
    run_id = await stack.start(Node("a", "writer", requires_approval=True))

    await stack.runs.cancel(stack.operator, stack.workspace, run_id)

    approvals = await stack.runs.approvals(stack.operator, stack.workspace, None, PAGE)
    assert [a.status for a in approvals.items] == [GateStatus.REJECTED]
    with pytest.raises(Conflict):
        await stack.runs.decide(
            stack.operator, stack.workspace, approvals.items[0].id, Decision.APPROVE
        )


async def test_given_a_pending_question_when_the_run_is_cancelled_then_it_is_no_longer_pending() -> (  # noqa: E501
    None
):
    stack = build(ScriptedProvider("anthropic", ["QUESTION: Which market?"]))
    run_id = await stack.start(Node("a", "writer"))
    await stack.drain()

    await stack.runs.cancel(stack.operator, stack.workspace, run_id)

    pending = await stack.runs.questions(stack.operator, stack.workspace, GateStatus.PENDING, PAGE)
    closed = await stack.runs.questions(stack.operator, stack.workspace, GateStatus.CANCELLED, PAGE)
    assert pending.items == [] and len(closed.items) == 1


async def test_given_a_queued_step_when_retried_then_conflict() -> None:
    stack = build()
    run_id = await stack.start(Node("a", "writer"))

    with pytest.raises(Conflict, match="Only a dead or failed step"):
        await stack.runs.retry_step(stack.operator, stack.workspace, run_id, "a")
    with pytest.raises(NotFound):
        await stack.runs.retry_step(stack.operator, stack.workspace, run_id, "nope")


async def test_given_a_succeeded_step_when_retried_then_conflict() -> None:
    stack = build()
    run_id = await stack.start(Node("a", "writer"))
    await stack.drain()

    with pytest.raises(Conflict):
        await stack.runs.retry_step(stack.operator, stack.workspace, run_id, "a")


async def test_given_a_failed_step_when_retried_then_queued_sent_and_the_run_runs_again() -> None:
    stack = build()
    run_id = await failed_step(stack)
    assert (await stack.runs.get(stack.operator, stack.workspace, run_id)).status is (
        RunStatus.FAILED
    )
    sent = len(stack.uow.sent)

    run = await stack.runs.retry_step(stack.operator, stack.workspace, run_id, "a")

    assert run.status is RunStatus.RUNNING and run.error is None and run.finished_at is None
    step = run.step("a")
    assert step is not None and step.status is S.QUEUED and step.error is None
    assert stack.messages(sent) == [(JobMessage.step(stack.workspace, run_id, "a"), 0)]
    assert stack.events(run_id)[-2].payload == {"step": "a", "retry": True}
    await stack.drain()
    assert stack.step(run_id, "a").status is S.SUCCEEDED


async def test_given_a_dead_step_when_retried_then_it_runs_again() -> None:
    # The chain tries the provider three times per call.
    stack = build(ScriptedProvider("anthropic", [RETRYABLE] * 3 + ["Recovered."]))
    run_id = await stack.start(Node("a", "writer"))
    message, _ = stack.uow.sent[0]
    with pytest.raises(StepAttemptFailed):
        await stack.drain()
    jobs = Jobs(stack.uow, stack.engine, DocumentIngestion(stack.uow, no_embedder))
    assert await jobs.bury(message)
    assert stack.step(run_id, "a").status is S.DEAD

    await stack.runs.retry_step(stack.operator, stack.workspace, run_id, "a")
    await stack.drain()

    assert stack.step(run_id, "a").status is S.SUCCEEDED
    assert (await stack.runs.get(stack.operator, stack.workspace, run_id)).output == "Recovered."


async def test_given_a_cancelled_run_when_a_step_is_retried_then_conflict() -> None:
    stack = build()
    run_id = await failed_step(stack)
    # A failed run cannot be cancelled (it is finished): the step is retried, then cancelled.
    await stack.runs.retry_step(stack.operator, stack.workspace, run_id, "a")
    await stack.runs.cancel(stack.operator, stack.workspace, run_id)

    with pytest.raises(Conflict, match="cancelled"):
        await stack.runs.retry_step(stack.operator, stack.workspace, run_id, "a")


# Approvals -----------------------------------------------------------------------------


async def test_given_a_pending_approval_when_approved_then_the_step_is_queued_and_sent() -> None:
    stack = build()
    run_id = await stack.start(
        Node("a", "writer"), Node("b", "editor", depends_on=("a",), requires_approval=True)
    )
    await stack.drain()
    assert stack.step(run_id, "b").status is S.WAITING_APPROVAL
    approval = (await stack.runs.approvals(stack.operator, stack.workspace, None, PAGE)).items[0]
    sent, before = len(stack.uow.sent), len(stack.uow.transactions)

    decided = await stack.runs.decide(
        stack.operator, stack.workspace, approval.id, Decision.APPROVE, "go"
    )

    assert len(stack.uow.transactions) == before + 1
    assert (decided.status, decided.comment, decided.decided_by) == (
        GateStatus.APPROVED,
        "go",
        stack.operator.user_id,
    )
    assert stack.step(run_id, "b").status is S.QUEUED
    assert stack.messages(sent) == [(JobMessage.step(stack.workspace, run_id, "b"), 0)]
    with pytest.raises(Conflict):
        await stack.runs.decide(stack.operator, stack.workspace, approval.id, Decision.REJECT)
    await stack.drain()
    assert (await stack.runs.get(stack.operator, stack.workspace, run_id)).status is (
        RunStatus.SUCCEEDED
    )


async def test_given_a_pending_approval_when_rejected_then_the_step_fails_and_so_the_run() -> None:
    stack = build()
    run_id = await stack.start(Node("a", "writer", requires_approval=True))
    approval = (await stack.runs.approvals(stack.operator, stack.workspace, None, PAGE)).items[0]

    decided = await stack.runs.decide(
        stack.operator, stack.workspace, approval.id, Decision.REJECT, "no"
    )

    assert decided.status is GateStatus.REJECTED
    run = await stack.runs.get(stack.operator, stack.workspace, run_id)
    assert run.status is RunStatus.FAILED and run.error is not None
    assert "rejected" in run.error and stack.uow.sent == []


async def test_given_reject_means_skip_when_rejected_then_the_run_goes_on_without_it() -> None:
    stack = build()
    run_id = await stack.start(
        Node("a", "writer", requires_approval=True, on_reject=OnReject.SKIP),
        Node("b", "editor", depends_on=("a",)),
    )
    approval = (await stack.runs.approvals(stack.operator, stack.workspace, None, PAGE)).items[0]

    await stack.runs.decide(stack.operator, stack.workspace, approval.id, Decision.REJECT)

    assert stack.step(run_id, "a").status is S.SKIPPED
    assert [m.step_key for m, _ in stack.uow.sent] == ["b"]
    await stack.drain()
    run = await stack.runs.get(stack.operator, stack.workspace, run_id)
    assert run.status is RunStatus.SUCCEEDED


async def test_given_a_rejected_step_when_retried_then_it_goes_back_to_its_approver() -> None:
    stack = build()
    run_id = await stack.start(Node("a", "writer", requires_approval=True))
    first = (await stack.runs.approvals(stack.operator, stack.workspace, None, PAGE)).items[0]
    await stack.runs.decide(stack.operator, stack.workspace, first.id, Decision.REJECT)

    run = await stack.runs.retry_step(stack.operator, stack.workspace, run_id, "a")

    assert run.status is RunStatus.WAITING_APPROVAL and stack.uow.sent == []
    pending = await stack.runs.approvals(stack.operator, stack.workspace, GateStatus.PENDING, PAGE)
    assert len(pending.items) == 1 and pending.items[0].id != first.id
    await stack.runs.decide(stack.operator, stack.workspace, pending.items[0].id, Decision.APPROVE)
    assert [m.step_key for m, _ in stack.uow.sent] == ["a"]


async def test_given_an_unknown_approval_when_decided_then_not_found() -> None:
    stack = build()
    with pytest.raises(NotFound):
        await stack.runs.decide(stack.operator, stack.workspace, uuid.uuid4(), Decision.APPROVE)


# Questions -----------------------------------------------------------------------------


async def test_given_a_question_when_answered_then_the_step_is_queued_and_sent_again() -> None:
    stack = build(ScriptedProvider("anthropic", ["QUESTION: Which market?", "Germany first."]))
    run_id = await stack.start(Node("a", "writer"))
    await stack.drain()
    question = (await stack.runs.questions(stack.operator, stack.workspace, None, PAGE)).items[0]
    sent, before = len(stack.uow.sent), len(stack.uow.transactions)

    answered = await stack.runs.answer(stack.operator, stack.workspace, question.id, "Germany")

    assert len(stack.uow.transactions) == before + 1
    assert (answered.status, answered.answer, answered.answered_by) == (
        GateStatus.ANSWERED,
        "Germany",
        stack.operator.user_id,
    )
    assert stack.messages(sent) == [(JobMessage.step(stack.workspace, run_id, "a"), 0)]
    assert stack.step(run_id, "a").status is S.QUEUED
    with pytest.raises(Conflict, match="already answered"):
        await stack.runs.answer(stack.operator, stack.workspace, question.id, "France")
    assert len(stack.uow.sent) == sent + 1


async def test_given_an_unknown_question_when_answered_then_not_found() -> None:
    stack = build()
    with pytest.raises(NotFound):
        await stack.runs.answer(stack.operator, stack.workspace, uuid.uuid4(), "x")


# Events and the long poll --------------------------------------------------------------


async def test_given_events_when_read_after_a_seq_then_only_later_ones_and_the_next_cursor() -> (
    None
):
    stack = build()
    run_id = await stack.start(Node("a", "writer"))
    await stack.drain()
    everything = await stack.runs.events(stack.operator, stack.workspace, run_id)

    later = await stack.runs.events(stack.operator, stack.workspace, run_id, after=1, limit=2)

    assert [e.seq for e in everything.items] == list(range(1, len(everything.items) + 1))
    assert [e.seq for e in later.items] == [2, 3] and later.next_after == 3
    assert stack.sleeps == []


async def test_given_an_event_appearing_while_waiting_then_the_poll_returns_at_once() -> None:
    stack = build()
    run_id = await stack.start(Node("a", "writer"))
    last = len(stack.events(run_id))
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        stack.ticks.advance(seconds)
        if len(sleeps) == 2:  # meanwhile a worker starts the step
            await stack.drain()

    service = RunService(stack.uow, stack.registry, sleep=sleep, clock=stack.ticks)

    page = await service.events(
        stack.operator, stack.workspace, run_id, after=last, wait_seconds=20
    )

    assert sleeps == [0.05, 0.1]
    assert page.items and page.items[0].seq == last + 1
    assert page.next_after == page.items[-1].seq


async def test_given_no_new_event_then_the_poll_returns_empty_once_the_wait_is_over() -> None:
    stack = build()
    run_id = await stack.start(Node("a", "writer"))
    last = len(stack.events(run_id))

    page = await stack.runs.events(
        stack.operator, stack.workspace, run_id, after=last, wait_seconds=3
    )

    assert page.items == [] and page.next_after == last
    assert stack.sleeps[:5] == [0.05, 0.1, 0.2, 0.4, 0.5]
    assert set(stack.sleeps[4:]) == {0.5}
    assert 3 <= sum(stack.sleeps) < 3.5


async def test_given_a_huge_wait_then_it_is_capped() -> None:
    stack = build()
    run_id = await stack.start(Node("a", "writer"))

    page = await stack.runs.events(
        stack.operator, stack.workspace, run_id, after=100, wait_seconds=3600
    )

    assert page.items == []
    assert MAX_EVENT_WAIT_SECONDS <= sum(stack.sleeps) < MAX_EVENT_WAIT_SECONDS + 0.5


async def test_given_no_wait_then_the_events_are_read_once() -> None:
    stack = build()
    run_id = await stack.start(Node("a", "writer"))

    page = await stack.runs.events(stack.operator, stack.workspace, run_id, after=100)

    assert page.items == [] and page.next_after == 100 and stack.sleeps == []


# Invoke --------------------------------------------------------------------------------


async def test_given_no_wait_when_invoking_then_the_run_is_returned_queued() -> None:
    stack = build()

    run, finished = await stack.runs.invoke(stack.operator, stack.workspace, "writer", "Hello")

    assert not finished and run.status is RunStatus.QUEUED and run.kind is RunKind.SINGLE
    assert [(s.key, s.agent_code) for s in run.steps] == [("main", "writer")]
    assert stack.uow.sent == [(JobMessage.step(stack.workspace, run.id, "main"), 0)]
    assert stack.sleeps == []


async def _worker_meanwhile(stack: Stack) -> RunService:
    """A run service whose long poll's wait lets a worker deliver what was sent."""

    async def sleep(seconds: float) -> None:
        stack.sleeps.append(seconds)
        stack.ticks.advance(seconds)
        await stack.drain()

    return RunService(stack.uow, stack.registry, sleep=sleep, clock=stack.ticks)


async def test_given_a_wait_when_invoking_then_the_finished_run_is_returned() -> None:
    stack = build(ScriptedProvider("anthropic", ["All done."]))
    service = await _worker_meanwhile(stack)

    run, finished = await service.invoke(
        stack.operator, stack.workspace, "writer", "Hello", wait_seconds=10
    )

    assert finished and run.status is RunStatus.SUCCEEDED and run.output == "All done."
    assert stack.sleeps == [0.05]


async def test_given_a_question_when_invoking_with_a_wait_then_it_returns_unfinished_at_once() -> (
    None
):
    stack = build(ScriptedProvider("anthropic", ["QUESTION: Which market?"]))
    service = await _worker_meanwhile(stack)

    run, finished = await service.invoke(
        stack.operator, stack.workspace, "writer", "Hello", wait_seconds=10
    )

    assert not finished and run.status is RunStatus.WAITING_INPUT
    assert stack.sleeps == [0.05]


async def test_given_no_worker_when_invoking_with_a_wait_then_it_gives_up_after_the_wait() -> None:
    stack = build()

    run, finished = await stack.runs.invoke(
        stack.operator, stack.workspace, "writer", "Hello", wait_seconds=2
    )

    assert not finished and run.status is RunStatus.QUEUED
    assert 2 <= sum(stack.sleeps) < 2.5


async def test_given_an_unknown_agent_when_invoking_then_422() -> None:
    stack = build()
    with pytest.raises(InvalidWorkflow):
        await stack.runs.invoke(stack.operator, stack.workspace, "nobody", "Hello")
    assert stack.world.runs == {}


# Listing -------------------------------------------------------------------------------


async def test_given_runs_when_listed_by_status_and_kind_then_filtered_newest_first() -> None:
    stack = build()
    first = await stack.start(Node("a", "writer"))
    stack.clock.advance(1)
    second = await stack.start(Node("a", "writer"), kind=RunKind.SINGLE)
    stack.clock.advance(1)
    third = await stack.start(Node("a", "writer"))
    await stack.runs.cancel(stack.operator, stack.workspace, third)

    every = await stack.runs.list_runs(stack.operator, stack.workspace, PAGE)
    queued = await stack.runs.list_runs(stack.operator, stack.workspace, PAGE, RunStatus.QUEUED)
    single = await stack.runs.list_runs(stack.operator, stack.workspace, PAGE, kind=RunKind.SINGLE)

    assert [r.id for r in every.items] == [third, second, first]
    assert [r.id for r in queued.items] == [second, first]
    assert [r.id for r in single.items] == [second]


async def test_given_a_run_budget_then_it_is_kept_on_the_run() -> None:
    stack = build()
    run_id = await stack.start(Node("a", "writer"), budget_usd=Decimal("0.5"))
    run = await stack.runs.get(stack.operator, stack.workspace, run_id)
    assert run.budget_usd == Decimal("0.5")


async def test_given_a_huge_wait_when_invoking_then_it_is_capped() -> None:
    stack = build()

    run, finished = await stack.runs.invoke(
        stack.operator, stack.workspace, "writer", "Hello", wait_seconds=3600
    )

    assert not finished and run.status is RunStatus.QUEUED
    assert MAX_INVOKE_WAIT_SECONDS <= sum(stack.sleeps) < MAX_INVOKE_WAIT_SECONDS + 0.5
