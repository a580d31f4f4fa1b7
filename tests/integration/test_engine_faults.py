"""Faults found by injection, each reproduced on the real stack (Postgres with RLS, moto's
SQS, the Lambda-like pollers): a document that always fails, a worker killed between the
model call and the commit, a cancelled run whose running step then fails, and one tenant's
poison step that used to open the provider's breaker and kill everyone's healthy steps."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from functions.sweeper.app import create as create_sweeper_handler
from guildstack.adapters.models.offline import OfflineProvider
from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.bootstrap import build
from guildstack.domain.errors import ProviderFailed
from guildstack.domain.identity import Principal
from guildstack.domain.jobs import JobMessage
from guildstack.domain.models import ModelRequest, StreamItem
from guildstack.domain.paging import PageRequest
from guildstack.domain.run_graph import Verdict
from guildstack.domain.runs import Node, Run, RunKind, RunStatus, StepStatus, Workflow
from guildstack.runtime import background
from guildstack.services.engine import StepEngine
from guildstack.services.failover import FailoverChain, RetryPolicy
from tests.fixtures.engine import Rig, start_pollers
from tests.fixtures.postgres import MakeUser, claims_for, create_workspace
from tests.fixtures.sqs import client_for

pytestmark = pytest.mark.integration


def single(prompt: str = "Say hello.", agent: str = "business_agent") -> Workflow:
    return Workflow(RunKind.SINGLE, "one", prompt, (Node("main", agent),))


async def _until(probe: Any, within: float = 30) -> Any:
    """Poll `probe()` (an awaitable factory) until it returns something truthy."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.05)


class AlwaysFailingEmbedder:
    model_id = "failing"
    dimensions = 384

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        raise ConnectionError("the embedding service is down")


async def test_given_a_document_whose_ingestion_always_fails_then_failed_and_never_resent(
    rig_factory: Any, database: PostgresDatabase
) -> None:
    rig: Rig = await rig_factory(visibility=1, max_receive=2, embedder=AlwaysFailingEmbedder())
    document = await rig.api.memory.add_document(
        rig.actor, rig.workspace_id, "Notes", "A paragraph that will never be embedded."
    )

    async def failed() -> bool:
        page = await rig.api.memory.documents(rig.actor, rig.workspace_id, PageRequest())
        return any(d.id == document.id and d.status == "failed" for d in page.items)

    await _until(failed)
    async with database.service_transaction("test") as conn:
        cur = await conn.execute(
            "select attempt, body is null as dropped, error from public.documents where id = %s",
            (document.id,),
        )
        row = await cur.fetchone()
    assert row is not None and row["attempt"] == 2 and row["dropped"]
    assert row["error"] == "Ingestion failed repeatedly (gave up after 2 attempts)."
    # The sweeper sweeps the whole database, where other work may be stale (another
    # tenant's, another test's): one such document, which it must re-send.
    other = await _stale_document_elsewhere(database, rig.actor.user_id)
    before, other_before = (
        await _updated_at(database, document.id),
        await _updated_at(database, other),
    )

    sweeper_settings = rig.worker.settings.model_copy(update={"step_resend_after_seconds": 0})
    sweeper = build(sweeper_settings, step_queue=rig.worker.step_queue)
    result = create_sweeper_handler(sweeper)({"source": "aws.events"}, None)
    background.run(sweeper.database.close())

    # A re-sent document is marked so (its `updated_at` moves): the other one was, the
    # failed one was left alone.
    assert result["resent"] >= 1
    assert await _updated_at(database, other) > other_before
    assert await _updated_at(database, document.id) == before


async def _stale_document_elsewhere(database: PostgresDatabase, owner: Any) -> Any:
    """A pending document of another workspace, last touched an hour ago."""
    workspace = await create_workspace(database, owner, "Elsewhere")
    async with database.service_transaction("test: a stale document") as conn:
        cur = await conn.execute(
            "insert into public.documents (workspace_id, owner_id, title, body, updated_at)"
            " values (%s, %s, 'Stale', 'text', now() - interval '1 hour') returning id",
            (workspace, owner),
        )
        row = await cur.fetchone()
    assert row is not None
    return row["id"]


async def _updated_at(database: PostgresDatabase, document_id: Any) -> Any:
    async with database.service_transaction("test: read a document") as conn:
        cur = await conn.execute(
            "select updated_at from public.documents where id = %s", (document_id,)
        )
        row = await cur.fetchone()
    assert row is not None
    return row["updated_at"]


class WorkerKilled(BaseException):
    """The process dies (no exception handling runs, nothing more is written)."""


class DiesBeforeRecording(StepEngine):
    async def _finish(self, *args: Any, **kwargs: Any) -> Verdict:
        raise WorkerKilled


async def test_given_a_worker_killed_after_the_model_call_then_the_step_is_billed_once(
    rig_factory: Any, database: PostgresDatabase
) -> None:
    rig: Rig = await rig_factory(pollers=False, visibility=1, lease=1)
    run = await rig.api.runs.start(rig.actor, rig.workspace_id, single())
    received = client_for(rig.endpoint).receive_message(QueueUrl=rig.queue_url, WaitTimeSeconds=5)
    message = JobMessage.parse(received["Messages"][0]["Body"])
    doomed = DiesBeforeRecording(rig.api.uow, rig.api.agents, rig.api.model, lease_seconds=1)
    with pytest.raises(WorkerKilled):
        await doomed.handle(message)  # the model answered; the step was never recorded

    with ExitStack() as stack:
        start_pollers(rig, stack)
        done = await rig.finished(run.id)

    assert done.status is RunStatus.SUCCEEDED and done.steps[0].attempt == 2
    async with database.service_transaction("test") as conn:
        cur = await conn.execute(
            "select count(*) as n from public.usage where run_id = %s", (run.id,)
        )
        row = await cur.fetchone()
    assert row is not None and row["n"] == 1


@dataclass
class FailsAfterCancel(OfflineProvider):
    """Signals that a call started, waits until the test has cancelled the run, then fails
    the way a flaky provider does (retryable)."""

    started: threading.Event
    cancelled: threading.Event
    name: str = "offline"

    async def stream(self, model: str, request: ModelRequest) -> AsyncIterator[StreamItem]:
        self.started.set()
        await asyncio.to_thread(self.cancelled.wait, 30)
        raise ProviderFailed("flaky", provider=self.name, retryable=True, status=503)
        yield  # pragma: no cover


async def test_given_a_run_cancelled_while_its_step_runs_and_then_fails_then_nothing_stays_queued(
    rig_factory: Any,
) -> None:
    started, cancelled = threading.Event(), threading.Event()
    provider = FailsAfterCancel(started=started, cancelled=cancelled)
    rig: Rig = await rig_factory(visibility=2, max_receive=5, providers={"offline": provider})
    run = await rig.api.runs.start(rig.actor, rig.workspace_id, single())
    assert await asyncio.to_thread(started.wait, 30)

    cancelled_run = await rig.api.runs.cancel(rig.actor, rig.workspace_id, run.id)
    assert cancelled_run.status is RunStatus.CANCELLED
    assert cancelled_run.steps[0].status is StepStatus.RUNNING  # still running: it finishes
    cancelled.set()

    async def settled() -> Run | None:
        current = await rig.api.runs.get(rig.actor, rig.workspace_id, run.id)
        return current if current.steps[0].status is not StepStatus.RUNNING else None

    final = await _until(settled)
    assert final.status is RunStatus.CANCELLED
    assert final.steps[0].status is StepStatus.SKIPPED
    assert final.steps[0].error == "run cancelled"


@dataclass
class PoisonSensitive(OfflineProvider):
    """Answers every prompt except one containing POISON, which makes it fail with a 500
    (as a real provider choking on one tenant's request)."""

    name: str = "offline"

    async def stream(self, model: str, request: ModelRequest) -> AsyncIterator[StreamItem]:
        if "POISON" in request.messages[-1].content:
            raise ProviderFailed("internal error", provider=self.name, retryable=True, status=500)
        async for item in super().stream(model, request):
            yield item


async def test_given_one_tenants_poison_step_then_other_tenants_healthy_steps_still_succeed(
    rig_factory: Any, database: PostgresDatabase, make_user: MakeUser
) -> None:
    # A breaker that opens on the first failed call and cools down in 2 s: the poison step's
    # failure opens it, and the other tenant's steps arrive while it is open.
    chain = FailoverChain(
        {"offline": PoisonSensitive()},
        policy=RetryPolicy(max_attempts=1),
        breaker_threshold=1,
        breaker_cooldown_seconds=2,
    )
    rig: Rig = await rig_factory(visibility=2, max_receive=3, failover=chain)
    poison = await rig.api.runs.start(rig.actor, rig.workspace_id, single("POISON please"))

    async def poison_failed_once() -> bool:
        return any(t == "step.failed" for t, _ in await rig.events(poison.id))

    await _until(poison_failed_once)
    other = await make_user()
    other_ws = await create_workspace(database, other, "Other tenant")
    other_actor = Principal(other, None, claims_for(other))
    healthy_workflow = Workflow(
        RunKind.PARALLEL, "healthy", "Ten ideas.",
        tuple(Node(f"h{i}", "seo_agent", f"Idea {i}.") for i in range(10)),
    )  # fmt: skip
    healthy = await rig.api.runs.start(other_actor, other_ws, healthy_workflow)

    other_rig = Rig(rig.api, rig.worker, rig.provider, rig.queue_url, rig.dlq_url,
                    rig.endpoint, other_actor, other_ws)  # fmt: skip
    done = await other_rig.finished(healthy.id, within=90)
    dead = await rig.finished(poison.id, within=90)

    assert done.status is RunStatus.SUCCEEDED
    assert all(s.status is StepStatus.SUCCEEDED and s.attempt == 1 for s in done.steps)
    assert dead.status is RunStatus.FAILED and dead.steps[0].status is StepStatus.DEAD
    healthy_events = Counter(t for t, _ in await other_rig.events(healthy.id))
    assert healthy_events["step.failed"] == 0 and healthy_events["step.dead"] == 0
    assert healthy_events["step.deferred"] >= 1  # they waited for the breaker, uncounted
