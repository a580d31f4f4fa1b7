"""The step engine on real Postgres (RLS on) and moto's SQS, driven by the devstack's
event-source pollers exactly as Lambda drives the worker: duplicates, dead workers, the
dead-letter queue, lost sends and a 200-step run with injected failures."""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack
from typing import Any

from functions.sweeper.app import create as create_sweeper_handler
from guildstack.adapters.models.anthropic import AnthropicProvider
from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.bootstrap import build
from guildstack.domain.jobs import JobMessage
from guildstack.domain.memory import Collection, MemoryScope
from guildstack.domain.runs import Node, RunKind, RunStatus, StepStatus, Workflow
from guildstack.runtime import background
from tests.fakes import wire
from tests.fakes.wire import ScriptedTransport
from tests.fixtures.engine import Rig, start_pollers
from tests.fixtures.sqs import client_for


def diamond(title: str = "diamond") -> Workflow:
    return Workflow(
        RunKind.DAG,
        title,
        "Plan a product launch for a note-taking app.",
        (
            Node("A", "business_agent", "Frame the launch."),
            Node("B", "design_agent", "Design the landing page.", ("A",)),
            Node("C", "seo_agent", "Pick the keywords.", ("A",)),
            Node("D", "nicole_core", "Merge into one plan.", ("B", "C")),
        ),
    )


async def test_given_every_message_delivered_twice_then_every_step_executes_once(
    rig_factory: Any,
) -> None:
    rig: Rig = await rig_factory(double=True)
    run = await rig.api.runs.start(rig.actor, rig.workspace_id, diamond())
    done = await rig.finished(run.id)

    assert done.status is RunStatus.SUCCEEDED
    assert [(s.key, s.status, s.attempt) for s in done.steps] == [
        (key, StepStatus.SUCCEEDED, 1) for key in "ABCD"
    ]
    events = await rig.events(run.id)
    started = Counter(p["step"] for t, p in events if t == "step.started")
    assert started == {"A": 1, "B": 1, "C": 1, "D": 1}
    assert len(rig.provider.requests) == 4
    d_prompt = rig.provider.requests[-1].messages[-1].content
    assert "Handoff from step `B`" in d_prompt and "Handoff from step `C`" in d_prompt
    assert done.output == done.steps[-1].output
    # Events are numbered 1..n without gaps.
    page = await rig.api.runs.events(rig.actor, rig.workspace_id, run.id, limit=5000)
    assert [e.seq for e in page.items] == list(range(1, len(page.items) + 1))


async def test_given_a_worker_that_dies_after_claiming_then_the_lease_expires_and_the_step_reruns(
    rig_factory: Any,
) -> None:
    rig: Rig = await rig_factory(pollers=False, visibility=2, lease=1)
    run = await rig.api.runs.start(rig.actor, rig.workspace_id, single())
    # The doomed worker receives the message and claims the step, then dies: no delete,
    # no result. SQS shows the message again after its visibility timeout.
    client = client_for(rig.endpoint)
    received = client.receive_message(QueueUrl=rig.queue_url, WaitTimeSeconds=5)
    message = JobMessage.parse(received["Messages"][0]["Body"])
    async with rig.api.uow.system("a worker about to die") as tx:
        async with tx.runs.locked(message.workspace_id, message.job_id) as graph:
            claimed = graph.claim(message.step_key or "", lease_seconds=1, now=tx.now)
    assert claimed is not None and claimed.attempt == 1

    with ExitStack() as stack:
        start_pollers(rig, stack)
        done = await rig.finished(run.id)

    assert done.status is RunStatus.SUCCEEDED
    assert done.steps[0].attempt == 2
    assert len(rig.provider.requests) == 1


async def test_given_a_step_that_always_fails_then_dead_lettered_and_a_retry_completes_the_run(
    rig_factory: Any,
) -> None:
    rig: Rig = await rig_factory(visibility=3, max_receive=2)
    rig.provider.failing = True
    run = await rig.api.runs.start(rig.actor, rig.workspace_id, diamond("dead letters"))
    failed = await rig.finished(run.id)

    assert failed.status is RunStatus.FAILED
    a = failed.step("A")
    assert a is not None and a.status is StepStatus.DEAD and a.attempt == 2
    # The reason counts the step's attempts, not the dead-letter queue's own receive.
    assert a.error == "The step failed repeatedly (gave up after 2 attempts)."
    assert failed.error is not None and failed.error.startswith("Step A is dead")
    types = [t for t, _ in await rig.events(run.id)]
    assert types.count("step.failed") == 2
    assert "step.dead" in types and types[-1] == "run.finished"

    rig.provider.failing = False
    await rig.api.runs.retry_step(rig.actor, rig.workspace_id, run.id, "A")
    done = await rig.finished(run.id)
    assert done.status is RunStatus.SUCCEEDED
    assert all(s.status is StepStatus.SUCCEEDED for s in done.steps)


async def test_given_a_crash_between_commit_and_send_then_the_sweeper_sends_it(
    rig_factory: Any,
) -> None:
    rig: Rig = await rig_factory(lost_send=True)
    run = await rig.api.runs.start(rig.actor, rig.workspace_id, single())
    stored = await rig.api.runs.get(rig.actor, rig.workspace_id, run.id)
    assert stored.steps[0].status is StepStatus.QUEUED
    assert client_for(rig.endpoint).receive_message(QueueUrl=rig.queue_url).get("Messages") is None

    sweeper_settings = rig.worker.settings.model_copy(update={"step_resend_after_seconds": 0})
    sweeper = build(sweeper_settings, step_queue=rig.worker.step_queue)
    result = create_sweeper_handler(sweeper)({"source": "aws.events"}, None)
    done = await rig.finished(run.id)

    assert result["resent"] >= 1
    assert done.status is RunStatus.SUCCEEDED
    background.run(sweeper.database.close())


async def test_given_200_steps_with_10_percent_failures_then_each_ends_succeeded_or_dead_once(
    rig_factory: Any, database: PostgresDatabase
) -> None:
    # The visibility timeout must outlast a step's processing, as in AWS (6x the worker's
    # timeout); otherwise SQS hands a message out again while its step still runs.
    rig: Rig = await rig_factory(visibility=5, max_receive=2, concurrency=4)
    rig.provider.failure_rate = 0.10
    nodes = tuple(Node(f"s{i:03d}", "seo_agent", f"Keyword idea {i}.") for i in range(200))
    workflow = Workflow(RunKind.PARALLEL, "fan-out", "Find keywords.", nodes)
    run = await rig.api.runs.start(rig.actor, rig.workspace_id, workflow)
    done = await rig.finished(run.id, within=90)

    statuses = Counter(s.status for s in done.steps)
    assert set(statuses) <= {StepStatus.SUCCEEDED, StepStatus.DEAD}
    assert sum(statuses.values()) == 200
    events = await rig.events(run.id)
    succeeded = Counter(p["step"] for t, p in events if t == "step.succeeded")
    dead = Counter(p["step"] for t, p in events if t == "step.dead")
    assert all(n == 1 for n in succeeded.values()) and all(n == 1 for n in dead.values())
    assert set(succeeded) | set(dead) == {n.key for n in nodes}
    assert not set(succeeded) & set(dead)
    async with database.service_transaction("test") as conn:
        cur = await conn.execute(
            "select step_key, count(*) as n from public.usage where run_id = %s group by 1",
            (run.id,),
        )
        usage = {r["step_key"]: r["n"] for r in await cur.fetchall()}
    assert usage == dict.fromkeys(succeeded, 1)


async def test_given_an_exhausted_budget_then_the_step_fails_without_calling_the_model(
    rig_factory: Any, database: PostgresDatabase
) -> None:
    transport = ScriptedTransport([wire.anthropic_message("never sent")])
    anthropic = AnthropicProvider("k", http_client=transport.client())
    rig: Rig = await rig_factory(providers={"anthropic": anthropic})
    async with database.service_transaction("test budget") as conn:
        await conn.execute(
            "update public.workspaces set monthly_budget_usd = 0.000001 where id = %s",
            (rig.workspace_id,),
        )
    run = await rig.api.runs.start(rig.actor, rig.workspace_id, single())
    done = await rig.finished(run.id)

    assert done.status is RunStatus.FAILED
    step = done.steps[0]
    assert step.status is StepStatus.FAILED and step.attempt == 1
    assert step.error is not None and step.error.startswith("BudgetExceeded")
    assert transport.requests == [], "refused before any provider request"


async def test_given_an_agent_with_memory_then_its_prompt_holds_the_creators_memories(
    rig_factory: Any,
) -> None:
    rig: Rig = await rig_factory()
    await rig.api.memory.remember(
        rig.actor,
        rig.workspace_id,
        content="Ada prefers launch plans that start in Lisbon.",
        collection=Collection.USER_PREFERENCES,
        scope=MemoryScope.USER,
    )
    run = await rig.api.runs.start(
        rig.actor,
        rig.workspace_id,
        Workflow(RunKind.SINGLE, "plan", "Where should the launch plan start?",
                 (Node("main", "nicole_core"),)),
    )  # fmt: skip
    done = await rig.finished(run.id)

    assert done.status is RunStatus.SUCCEEDED
    prompt = rig.provider.requests[0].messages[-1].content
    assert "# What you remember that may help" in prompt and "Lisbon" in prompt


def single(agent: str = "business_agent") -> Workflow:
    return Workflow(RunKind.SINGLE, "one", "Say hello.", (Node("main", agent),))
