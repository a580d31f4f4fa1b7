"""The step engine on real Postgres (RLS on) and moto's SQS, driven by the devstack's
event-source pollers exactly as Lambda drives the worker: duplicates, dead workers, the
dead-letter queue, lost sends and a 200-step run with injected failures."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from pydantic import SecretStr

from functions.deadletter.app import create as create_dead_letter_handler
from functions.sweeper.app import create as create_sweeper_handler
from functions.worker.app import create as create_worker_handler
from guildstack.adapters.models.anthropic import AnthropicProvider
from guildstack.adapters.models.offline import OfflineProvider
from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.adapters.sqs import SqsStepQueue
from guildstack.bootstrap import Container, build
from guildstack.config import Settings
from guildstack.devstack.sqs import EventSourcePoller, queue_arn
from guildstack.devstack.template import Template
from guildstack.domain.errors import ProviderFailed
from guildstack.domain.identity import Principal
from guildstack.domain.jobs import JobMessage
from guildstack.domain.memory import Collection, MemoryScope
from guildstack.domain.models import ModelRequest, StreamItem
from guildstack.domain.runs import Node, Run, RunKind, RunStatus, StepStatus, Workflow
from guildstack.runtime import background
from tests.fakes import wire
from tests.fakes.wire import ScriptedTransport
from tests.fixtures.postgres import MakeUser, claims_for, create_workspace
from tests.fixtures.sqs import client_for, make_queues

TEMPLATE = Template.load(Path(__file__).resolve().parents[2] / "template.yaml")


@dataclass
class RecordingOffline(OfflineProvider):
    """The offline provider, remembering each request and failing on demand."""

    name: str = "offline"
    requests: list[ModelRequest] = field(default_factory=list)
    failure_rate: float = 0.0
    failing: bool = False
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def _maybe_fail(self, request: ModelRequest) -> None:
        self.requests.append(request)
        if self.failing or self.rng.random() < self.failure_rate:
            raise ProviderFailed("injected failure", provider=self.name, retryable=True, status=500)

    async def stream(self, model: str, request: ModelRequest) -> AsyncIterator[StreamItem]:
        self._maybe_fail(request)
        async for item in super().stream(model, request):
            yield item


class DoubleSend:
    """Every message sent twice: SQS's at-least-once, made certain."""

    def __init__(self, queue: SqsStepQueue) -> None:
        self._queue = queue

    async def send(self, messages: Sequence[JobMessage], *, delay_seconds: int = 0) -> None:
        await self._queue.send([*messages, *messages], delay_seconds=delay_seconds)

    async def delay(self, receipt_handle: str, seconds: int) -> None:
        await self._queue.delay(receipt_handle, seconds)


class LostSend:
    """A crash between commit and send: nothing reaches the queue."""

    async def send(self, messages: Sequence[JobMessage], *, delay_seconds: int = 0) -> None:
        raise ConnectionError("the process died before sending")

    async def delay(self, receipt_handle: str, seconds: int) -> None:
        raise ConnectionError("gone")


@dataclass
class Rig:
    api: Container
    worker: Container
    provider: RecordingOffline
    queue_url: str
    dlq_url: str
    endpoint: str
    actor: Principal
    workspace_id: UUID

    seen: dict[UUID, int] = field(default_factory=dict)

    async def finished(self, run_id: UUID, within: float = 60) -> Run:
        """Long-poll the run's events (the API's own wait) until the next `run.finished`."""
        try:
            return await self._finished(run_id, within)
        except TimeoutError:
            run = await self.api.runs.get(self.actor, self.workspace_id, run_id)
            stuck = [
                (s.key, s.status.value, s.attempt, s.error)
                for s in run.steps
                if s.status not in (StepStatus.SUCCEEDED, StepStatus.DEAD)
            ]
            raise AssertionError(
                f"run {run.status} after {within} s; unfinished: {stuck}"
            ) from None

    async def _finished(self, run_id: UUID, within: float) -> Run:
        async with asyncio.timeout(within):
            while True:
                page = await self.api.runs.events(
                    self.actor,
                    self.workspace_id,
                    run_id,
                    after=self.seen.get(run_id, 0),
                    wait_seconds=5,
                )
                self.seen[run_id] = page.next_after
                if any(e.type == "run.finished" for e in page.items):
                    return await self.api.runs.get(self.actor, self.workspace_id, run_id)

    async def events(self, run_id: UUID) -> list[tuple[str, dict[str, Any]]]:
        page = await self.api.runs.events(
            self.actor, self.workspace_id, run_id, after=0, limit=5000
        )
        return [(e.type, dict(e.payload)) for e in page.items]


def _settings(database_url: str, endpoint: str, queue_url: str, **extra: Any) -> Settings:
    return Settings(
        stage="test",
        database_url=SecretStr(database_url),
        steps_queue_url=queue_url,
        sqs_endpoint_url=endpoint,
        model_max_attempts=1,
        step_retry_backoff_seconds=0,
        **extra,
    )


@pytest.fixture
def rig_factory(
    database: PostgresDatabase, database_url: str, make_user: MakeUser, sqs_server: str
) -> Iterator[Any]:
    stack = ExitStack()

    async def make(
        *,
        visibility: int = 2,
        max_receive: int = 3,
        lease: int = 60,
        double: bool = False,
        lost_send: bool = False,
        pollers: bool = True,
        concurrency: int = 4,
        providers: dict[str, Any] | None = None,
    ) -> Rig:
        queue_url, dlq_url = make_queues(sqs_server, "engine", visibility, max_receive)
        settings = _settings(database_url, sqs_server, queue_url, step_lease_seconds=lease)
        provider = RecordingOffline()
        real_queue = SqsStepQueue(queue_url, endpoint_url=sqs_server)
        queue: Any = DoubleSend(real_queue) if double else real_queue
        api = build(settings, database=database, step_queue=LostSend() if lost_send else queue)
        # The worker owns its pool: it runs on the worker's loop, as in its own Lambda.
        worker = build(
            settings,
            model_providers=providers or {"offline": provider},
            step_queue=queue,
        )
        user = await make_user()
        workspace_id = await create_workspace(database, user)
        rig = Rig(
            api=api,
            worker=worker,
            provider=provider,
            queue_url=queue_url,
            dlq_url=dlq_url,
            endpoint=sqs_server,
            actor=Principal(user, None, claims_for(user)),
            workspace_id=workspace_id,
        )
        if pollers:
            start_pollers(rig, stack, concurrency)
        workers.append(worker)
        return rig

    workers: list[Container] = []
    yield make
    stack.close()
    for worker in workers:
        if "database" in worker.__dict__:
            background.run(worker.database.close())


def start_pollers(rig: Rig, stack: ExitStack, concurrency: int = 4) -> None:
    client = client_for(rig.endpoint)
    for logical_id, url, handler in (
        ("WorkerFunction", rig.queue_url, create_worker_handler(rig.worker)),
        ("DeadLetterFunction", rig.dlq_url, create_dead_letter_handler(rig.worker)),
    ):
        spec = TEMPLATE.function(logical_id)
        poller = EventSourcePoller(
            spec,
            spec.sqs_events[0],
            url,
            queue_arn(client, url),
            handler,
            client=client,
            concurrency=concurrency,
        )
        poller.start()
        stack.callback(poller.stop)


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
