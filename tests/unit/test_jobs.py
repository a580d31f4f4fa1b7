"""Background jobs over the in-memory unit of work: the worker's and the dead-letter queue's
dispatch by kind, the queue message format, documents as leased jobs, and the sweeper that
repairs lost messages and dead workers. No I/O; time moves by hand."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from guildstack.domain.errors import Forbidden, ProviderFailed
from guildstack.domain.jobs import DocumentStatus, JobMessage
from guildstack.domain.memory import Collection, MemoryScope
from guildstack.domain.runs import Node
from guildstack.domain.vocabulary import JobKind, Role, RunStatus, StepStatus
from guildstack.services.engine import StepAttemptFailed
from guildstack.services.ingestion import DocumentIngestion
from guildstack.services.jobs import Jobs, Sweeper
from tests.fakes.models import ScriptedProvider
from tests.unit.run_support import Stack, build

S = StepStatus
RESEND_AFTER = 300
LEASE = 60
TEXT = "Guildstack runs agents. " * 60  # about 1,400 characters: two chunks


@dataclass
class FixedEmbedder:
    """Vectors of a fixed dimension, one per text (or an error while `broken`); counts its
    calls."""

    broken: bool = False
    model_id: str = "fixed-4"
    dimensions: int = 4
    calls: list[list[str]] = field(default_factory=list)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        if self.broken:
            raise RuntimeError("the embedding service is down")
        return [[1.0, 0.0, 0.0, float(i)] for i in range(len(texts))]


def broken() -> FixedEmbedder:
    return FixedEmbedder(broken=True)


@dataclass
class Setup:
    stack: Stack
    embedder: FixedEmbedder
    documents: DocumentIngestion
    jobs: Jobs
    sweeper: Sweeper

    async def upload(self, text: str = TEXT) -> JobMessage:
        """A document the operator uploaded (pending), and the message naming it."""
        stack = self.stack
        async with stack.uow(stack.operator) as tx:
            document = await tx.documents.create(stack.workspace, "Handbook", text)
        return JobMessage.document(stack.workspace, document.id)

    def status(self, message: JobMessage) -> DocumentStatus:
        return self.stack.world.documents[message.job_id].job.status


def setup(embedder: FixedEmbedder | None = None, *providers: ScriptedProvider) -> Setup:
    stack = build(*providers)
    used = embedder or FixedEmbedder()
    documents = DocumentIngestion(stack.uow, lambda: used, None, lease_seconds=LEASE)
    jobs = Jobs(stack.uow, stack.engine, documents)
    sweeper = Sweeper(stack.uow, documents, resend_after_seconds=RESEND_AFTER)
    return Setup(stack, used, documents, jobs, sweeper)


async def died_holding(stack: Stack, run_id: uuid.UUID, key: str, lease: int = LEASE) -> None:
    """A worker claimed the step and died before anything else (no outcome, no release)."""
    async with stack.uow.system("a worker claims and dies") as tx:
        async with tx.runs.locked(stack.workspace, run_id) as graph:
            assert graph.claim(key, lease_seconds=lease, now=tx.now) is not None


# Dispatch ------------------------------------------------------------------------------


async def test_given_messages_of_each_kind_when_worked_then_each_goes_to_its_handler() -> None:
    s = setup(None, ScriptedProvider("anthropic", ["Done."]))
    run_id = await s.stack.start(Node("a", "writer"))
    step = s.stack.uow.sent[0][0]
    document = await s.upload()

    await s.jobs.work(step)
    await s.jobs.work(document)

    assert s.stack.step(run_id, "a").status is S.SUCCEEDED
    assert s.status(document) is DocumentStatus.READY
    assert set(s.jobs.work_table) == set(JobKind) == set(s.jobs.bury_table)


async def test_given_a_document_when_ingested_then_its_chunks_are_the_owners_memories() -> None:
    s = setup()
    message = await s.upload()

    chunks = await s.documents.ingest(message)

    assert chunks == 2 and len(s.embedder.calls) == 1
    stored = s.stack.world.documents[message.job_id]
    assert stored.job.status is DocumentStatus.READY and stored.job.attempt == 1
    assert stored.document.chunk_count == 2 and stored.text is None
    memories = [m for m, _ in s.stack.world.memories.values()]
    assert {(m.scope, m.collection, m.owner_id, m.document_id) for m in memories} == {
        (MemoryScope.USER, Collection.DOCUMENTS, s.stack.operator.user_id, message.job_id)
    }
    assert sorted(m.metadata["chunk"] for m in memories) == [0, 1]
    assert await s.documents.ingest(message) is None  # a duplicate finds it done
    assert len(s.embedder.calls) == 1


@pytest.mark.parametrize(
    ("collection", "scope"),
    [
        (Collection.CAMPAIGN_BRIEFS, MemoryScope.WORKSPACE),
        (Collection.CODEX_KNOWLEDGE, MemoryScope.WORKSPACE),
        (Collection.COMPETITOR_INTEL, MemoryScope.WORKSPACE),
        (Collection.INDUSTRY_RESEARCH, MemoryScope.WORKSPACE),
        (Collection.USER_PREFERENCES, MemoryScope.USER),
        (Collection.CORE, MemoryScope.USER),
    ],
)
async def test_given_a_knowledge_collection_then_its_memories_are_the_workspaces(
    collection: Collection, scope: MemoryScope
) -> None:
    """A brief or the company's codex is every member's knowledge, not its starter's."""
    s = setup()
    cache = Cache()
    documents = DocumentIngestion(s.stack.uow, lambda: s.embedder, cache, lease_seconds=LEASE)
    async with s.stack.uow.system("a finisher") as tx:
        document = await tx.documents.create(
            s.stack.workspace, "Brief", TEXT, owner_id=s.stack.operator.user_id,
            collection=collection,
        )  # fmt: skip

    await documents.ingest(JobMessage.document(s.stack.workspace, document.id))

    memories = [m for m, _ in s.stack.world.memories.values()]
    owner = s.stack.operator.user_id if scope is MemoryScope.USER else None
    assert {(m.scope, m.collection, m.owner_id) for m in memories} == {(scope, collection, owner)}
    bumped = s.stack.operator.user_id if scope is MemoryScope.USER else None
    assert cache.bumped == [(s.stack.workspace, bumped)]


async def test_given_a_knowledge_document_of_a_member_who_may_not_share_then_it_fails() -> None:
    s = setup()
    viewer = s.stack.people[Role.VIEWER]
    async with s.stack.uow.system("a finisher") as tx:
        document = await tx.documents.create(
            s.stack.workspace, "Brief", TEXT, owner_id=viewer.user_id,
            collection=Collection.CAMPAIGN_BRIEFS,
        )  # fmt: skip

    with pytest.raises(Forbidden):
        await s.documents.ingest(JobMessage.document(s.stack.workspace, document.id))

    assert s.stack.world.memories == {}


async def test_given_a_step_message_when_buried_then_the_step_is_dead_and_the_run_failed() -> None:
    retryable = ProviderFailed("overloaded", provider="anthropic", retryable=True)
    s = setup(None, ScriptedProvider("anthropic", [retryable]))
    run_id = await s.stack.start(Node("a", "writer"), Node("b", "editor", depends_on=("a",)))
    message = s.stack.uow.sent[0][0]
    for _ in range(3):
        with pytest.raises(StepAttemptFailed):
            await s.jobs.work(message)

    assert await s.jobs.bury(message)

    step = s.stack.step(run_id, "a")
    assert step.status is S.DEAD and step.attempt == 3
    assert step.error == "The step failed repeatedly (gave up after 3 attempts)."
    assert s.stack.step(run_id, "b").status is S.PENDING
    run = await s.stack.runs.get(s.stack.operator, s.stack.workspace, run_id)
    assert run.status is RunStatus.FAILED
    assert run.error == f"Step a is dead: {step.error}"
    dead = s.stack.events(run_id, "step.dead")
    assert [(e.payload["step"], e.payload["attempts"]) for e in dead] == [("a", 3)]
    assert not await s.jobs.bury(message)  # already ended


async def test_given_one_attempt_when_buried_then_the_reason_says_attempt() -> None:
    retryable = ProviderFailed("overloaded", provider="anthropic", retryable=True)
    s = setup(None, ScriptedProvider("anthropic", [retryable]))
    run_id = await s.stack.start(Node("a", "writer"))
    with pytest.raises(StepAttemptFailed):
        await s.jobs.work(s.stack.uow.sent[0][0])

    await s.jobs.bury(s.stack.uow.sent[0][0])

    assert s.stack.step(run_id, "a").error == (
        "The step failed repeatedly (gave up after 1 attempt)."
    )


async def test_given_a_step_held_under_a_live_lease_when_buried_then_nothing_changes() -> None:
    s = setup()
    run_id = await s.stack.start(Node("a", "writer"))
    await died_holding(s.stack, run_id, "a")

    assert not await s.jobs.bury(s.stack.uow.sent[0][0])
    assert s.stack.step(run_id, "a").status is S.RUNNING

    s.stack.clock.advance(LEASE + 1)  # the holder is presumed dead: the verdict applies
    assert await s.jobs.bury(s.stack.uow.sent[0][0])
    assert s.stack.step(run_id, "a").status is S.DEAD


async def test_given_a_finished_step_when_its_message_is_buried_then_nothing_changes() -> None:
    s = setup()
    run_id = await s.stack.start(Node("a", "writer"))
    await s.stack.drain()

    assert not await s.jobs.bury(s.stack.uow.sent[0][0])
    assert s.stack.step(run_id, "a").status is S.SUCCEEDED


async def test_given_a_step_of_a_cancelled_run_when_buried_then_it_is_skipped() -> None:
    s = setup()
    run_id = await s.stack.start(Node("a", "writer"))
    await died_holding(s.stack, run_id, "a")
    await s.stack.runs.cancel(s.stack.operator, s.stack.workspace, run_id)
    s.stack.clock.advance(LEASE + 1)

    assert await s.jobs.bury(s.stack.uow.sent[0][0])

    assert s.stack.step(run_id, "a").status is S.SKIPPED
    run = await s.stack.runs.get(s.stack.operator, s.stack.workspace, run_id)
    assert run.status is RunStatus.CANCELLED


async def test_given_a_step_message_naming_no_step_when_buried_then_nothing_to_do() -> None:
    s = setup()
    run_id = await s.stack.start(Node("a", "writer"))

    assert not await s.jobs.bury(JobMessage.step(s.stack.workspace, run_id, "nope"))


async def test_given_a_step_message_of_a_vanished_run_when_buried_then_nothing_to_do() -> None:
    s = setup()
    run_id = await s.stack.start(Node("a", "writer"))
    message = s.stack.uow.sent[0][0]
    del s.stack.world.runs[run_id]

    assert await s.jobs.bury(message) is False


async def test_given_a_document_message_when_buried_then_the_document_failed() -> None:
    s = setup()
    message = await s.upload()

    assert await s.jobs.bury(message)

    stored = s.stack.world.documents[message.job_id]
    assert stored.job.status is DocumentStatus.FAILED and stored.text is None
    assert not await s.jobs.bury(message)


async def test_given_a_message_for_a_missing_document_then_nothing_happens() -> None:
    s = setup()
    message = JobMessage.document(s.stack.workspace, uuid.uuid4())

    assert await s.documents.ingest(message) is None
    assert not await s.jobs.bury(message)
    assert s.embedder.calls == []


# The message ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        JobMessage.step(uuid.uuid4(), uuid.uuid4(), "draft-1"),
        JobMessage.document(uuid.uuid4(), uuid.uuid4()),
    ],
    ids=["step", "document"],
)
def test_given_a_message_when_its_body_is_parsed_then_it_round_trips(message: JobMessage) -> None:
    body = message.body()
    assert JobMessage.parse(body) == message
    assert json.loads(body)["kind"] == message.kind.value


def test_given_a_legacy_step_body_then_it_parses_as_a_step() -> None:
    ws, run = uuid.uuid4(), uuid.uuid4()
    body = json.dumps({"workspace_id": str(ws), "run_id": str(run), "step_key": "a"})

    assert JobMessage.parse(body) == JobMessage(JobKind.STEP, ws, run, "a")


def test_given_a_legacy_document_body_then_it_parses_as_a_document() -> None:
    ws, doc = uuid.uuid4(), uuid.uuid4()
    body = json.dumps({"kind": "document", "workspace_id": str(ws), "document_id": str(doc)})

    assert JobMessage.parse(body) == JobMessage(JobKind.DOCUMENT, ws, doc)


WS, JOB = str(uuid.uuid4()), str(uuid.uuid4())


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not json",
        "[]",
        '"a string"',
        "null",
        json.dumps({}),
        json.dumps({"kind": "video", "workspace_id": WS, "job_id": JOB}),
        json.dumps({"kind": None, "workspace_id": WS, "job_id": JOB, "step_key": "a"}),
        json.dumps({"kind": [], "workspace_id": WS, "job_id": JOB, "step_key": "a"}),
        json.dumps({"kind": "step", "workspace_id": WS, "job_id": JOB}),
        json.dumps({"kind": "step", "workspace_id": WS, "job_id": JOB, "step_key": ""}),
        json.dumps({"kind": "step", "workspace_id": WS, "job_id": JOB, "step_key": 7}),
        json.dumps({"kind": "step", "workspace_id": "nope", "job_id": JOB, "step_key": "a"}),
        json.dumps({"kind": "step", "job_id": JOB, "step_key": "a"}),
        json.dumps({"kind": "step", "workspace_id": WS, "step_key": "a"}),
        json.dumps({"kind": "document", "workspace_id": WS}),
        json.dumps({"kind": "document", "workspace_id": WS, "document_id": 12}),
        json.dumps({"workspace_id": WS, "document_id": JOB}),  # no kind: a step, without one
    ],
)
def test_given_junk_when_parsed_then_value_error(body: str) -> None:
    with pytest.raises(ValueError, match="not a queue message"):
        JobMessage.parse(body)


# Documents as leased jobs --------------------------------------------------------------


async def test_given_a_failing_embedder_then_each_attempt_releases_and_bury_ends_it() -> None:
    s = setup(broken())
    message = await s.upload()

    for attempt in (1, 2, 3):
        with pytest.raises(RuntimeError, match="embedding service is down"):
            await s.jobs.work(message)
        job = s.stack.world.documents[message.job_id].job
        assert (job.status, job.attempt, job.lease_until) == (
            DocumentStatus.PENDING,
            attempt,
            None,
        )
        assert job.error == "RuntimeError"
        s.stack.clock.advance(10)

    assert await s.jobs.bury(message)

    stored = s.stack.world.documents[message.job_id]
    assert stored.job.status is DocumentStatus.FAILED and stored.text is None
    assert stored.job.error == "Ingestion failed repeatedly (gave up after 3 attempts)."
    assert s.stack.world.memories == {}
    sent = len(s.stack.uow.sent)
    s.stack.clock.advance(RESEND_AFTER * 10)
    assert await s.sweeper.sweep() == 0
    assert len(s.stack.uow.sent) == sent  # never sent again
    assert await s.documents.ingest(message) is None  # a late duplicate does nothing
    assert len(s.embedder.calls) == 3
    assert s.stack.world.documents[message.job_id].job.status is DocumentStatus.FAILED


@dataclass
class ShortEmbedder(FixedEmbedder):
    """Answers one vector fewer than it was given texts."""

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return (await super().embed(texts))[:-1]


@pytest.mark.parametrize("failure", ["owner_left", "short_embedding"])
async def test_given_a_failure_after_embedding_then_the_attempt_is_released_too(
    failure: str,
) -> None:
    s = setup(ShortEmbedder() if failure == "short_embedding" else None)
    message = await s.upload()
    if failure == "owner_left":
        del s.stack.world.members[s.stack.workspace][s.stack.operator.user_id]

    with pytest.raises(Exception):  # noqa: B017 - whatever the failure, the job goes back
        await s.documents.ingest(message)

    job = s.stack.world.documents[message.job_id].job
    assert (job.status, job.lease_until) == (DocumentStatus.PENDING, None)
    assert job.error is not None
    assert s.stack.world.memories == {}


@dataclass
class Cache:
    bumped: list[tuple[uuid.UUID, uuid.UUID | None]] = field(default_factory=list)

    async def generations(self, workspace_id: uuid.UUID, user_id: uuid.UUID) -> tuple[int, int]:
        return (0, 0)

    async def get(self, key: str) -> str | None:
        return None

    async def put(self, key: str, value: str, ttl_seconds: int) -> None:
        return None

    async def bump(self, workspace_id: uuid.UUID, user_id: uuid.UUID | None) -> None:
        self.bumped.append((workspace_id, user_id))

    async def count_query(self, workspace_id: uuid.UUID, entry: str) -> None:
        return None

    async def frequent_queries(self, workspace_id: uuid.UUID, limit: int) -> list[str]:
        return []


async def test_given_a_search_cache_then_only_a_stored_document_invalidates_its_owner() -> None:
    s = setup(broken())
    cache = Cache()
    documents = DocumentIngestion(s.stack.uow, lambda: s.embedder, cache, lease_seconds=LEASE)
    message = await s.upload()
    with pytest.raises(RuntimeError):
        await documents.ingest(message)
    assert cache.bumped == []

    s.embedder.broken = False
    await documents.ingest(message)

    assert cache.bumped == [(s.stack.workspace, s.stack.operator.user_id)]


async def test_given_storing_always_fails_when_the_queue_gives_up_then_the_document_failed() -> (
    None
):
    s = setup()
    message = await s.upload()
    del s.stack.world.members[s.stack.workspace][s.stack.operator.user_id]
    for _ in range(3):  # the queue redelivers a failed message after a short backoff
        with pytest.raises(Exception):  # noqa: B017 - a failed attempt, for the queue to count
            await s.jobs.work(message)
        s.stack.clock.advance(10)

    assert await s.jobs.bury(message)

    assert s.status(message) is DocumentStatus.FAILED
    s.stack.clock.advance(RESEND_AFTER * 10)
    assert await s.sweeper.sweep() == 0


async def test_given_a_pending_document_older_than_the_threshold_then_the_sweeper_resends_it() -> (
    None
):
    s = setup()
    message = await s.upload()
    s.stack.clock.advance(RESEND_AFTER - 1)
    assert await s.sweeper.sweep() == 0 and s.stack.uow.sent == []

    s.stack.clock.advance(2)
    assert await s.sweeper.sweep() == 1
    assert s.stack.uow.sent == [(message, 0)]

    s.stack.clock.advance(RESEND_AFTER - 1)  # once per window
    assert await s.sweeper.sweep() == 0
    s.stack.clock.advance(2)
    assert await s.sweeper.sweep() == 1
    assert s.stack.uow.sent == [(message, 0), (message, 0)]

    assert await s.documents.ingest(message) == 2
    s.stack.clock.advance(RESEND_AFTER * 2)
    assert await s.sweeper.sweep() == 0  # a ready document is left alone


async def test_given_a_worker_that_died_holding_a_document_then_the_sweeper_resends_it() -> None:
    s = setup(broken())
    message = await s.upload()
    async with s.stack.uow.system("a worker claims and dies") as tx:
        job = await tx.documents.lock(message.workspace_id, message.job_id)
        assert job is not None and job.claim(lease_seconds=LEASE, now=tx.now)
        await tx.documents.save(job)
    assert await s.documents.ingest(message) is None  # held: a duplicate steps aside

    s.stack.clock.advance(LEASE + 1)
    assert await s.sweeper.sweep() == 1
    assert s.stack.uow.sent == [(message, 0)]

    s.embedder.broken = False  # the embedder is back
    assert await s.documents.ingest(message) == 2
    assert s.stack.world.documents[message.job_id].job.attempt == 2


# Sweeping steps ------------------------------------------------------------------------


async def test_given_a_step_queued_too_long_then_the_sweeper_sends_it_again_once() -> None:
    s = setup(None, ScriptedProvider("anthropic", ["Done."]))
    run_id = await s.stack.start(Node("a", "writer"))
    s.stack.uow.sent.clear()  # the message was lost (a crash between commit and send)
    s.stack.clock.advance(RESEND_AFTER - 1)
    assert await s.sweeper.sweep() == 0

    s.stack.clock.advance(2)
    assert await s.sweeper.sweep() == 1

    step = s.stack.step(run_id, "a")
    assert step.status is S.QUEUED and step.queued_at == s.stack.clock()
    assert s.stack.uow.sent == [(JobMessage.step(s.stack.workspace, run_id, "a"), 0)]
    assert await s.sweeper.sweep() == 0  # not again within the window
    await s.stack.drain()
    assert s.stack.step(run_id, "a").status is S.SUCCEEDED


async def test_given_a_running_step_whose_lease_expired_then_the_sweeper_requeues_it() -> None:
    s = setup(None, ScriptedProvider("anthropic", ["Done."]))
    run_id = await s.stack.start(Node("a", "writer"))
    s.stack.uow.sent.clear()
    await died_holding(s.stack, run_id, "a")
    s.stack.clock.advance(LEASE - 1)
    assert await s.sweeper.sweep() == 0  # the lease still holds

    s.stack.clock.advance(2)
    assert await s.sweeper.sweep() == 1

    step = s.stack.step(run_id, "a")
    assert (step.status, step.lease_until, step.attempt) == (S.QUEUED, None, 1)
    assert s.stack.uow.sent == [(JobMessage.step(s.stack.workspace, run_id, "a"), 0)]
    await s.stack.drain()
    step = s.stack.step(run_id, "a")
    assert step.status is S.SUCCEEDED and step.attempt == 2


async def test_given_a_dead_workers_step_of_a_cancelled_run_then_the_sweeper_skips_it() -> None:
    s = setup()
    run_id = await s.stack.start(Node("a", "writer"), Node("b", "editor"))
    s.stack.uow.sent.clear()
    await died_holding(s.stack, run_id, "a")
    await s.stack.runs.cancel(s.stack.operator, s.stack.workspace, run_id)
    assert s.stack.step(run_id, "a").status is S.RUNNING  # cancel lets running steps finish
    s.stack.clock.advance(RESEND_AFTER + LEASE)

    assert await s.sweeper.sweep() == 1

    step = s.stack.step(run_id, "a")
    assert step.status is S.SKIPPED and step.error == "run cancelled"
    assert s.stack.uow.sent == []  # nothing sent for a cancelled run
    assert await s.sweeper.sweep() == 0  # nothing stays queued or running forever
    statuses = {st.status for st in s.stack.stored(run_id).steps.values()}
    assert statuses == {S.SKIPPED}
    run = await s.stack.runs.get(s.stack.operator, s.stack.workspace, run_id)
    assert run.status is RunStatus.CANCELLED


async def test_given_steps_waiting_for_people_then_the_sweeper_leaves_them_alone() -> None:
    s = setup(None, ScriptedProvider("anthropic", ["QUESTION: Which market?"]))
    asked = await s.stack.start(Node("a", "writer"))
    gated = await s.stack.start(Node("g", "writer", requires_approval=True))
    await s.stack.drain()
    sent = len(s.stack.uow.sent)
    s.stack.clock.advance(RESEND_AFTER * 10)

    assert await s.sweeper.sweep() == 0

    assert len(s.stack.uow.sent) == sent
    assert s.stack.step(asked, "a").status is S.WAITING_INPUT
    assert s.stack.step(gated, "g").status is S.WAITING_APPROVAL


async def test_given_a_sweep_then_its_reads_and_repairs_are_system_transactions() -> None:
    s = setup()
    await s.stack.start(Node("a", "writer"), Node("b", "editor"))
    await s.upload()
    s.stack.clock.advance(RESEND_AFTER + 1)
    before = len(s.stack.uow.transactions)

    assert await s.sweeper.sweep() == 3

    assert s.stack.uow.transactions[before:] == [
        "find stale steps",
        "repair a stale step",
        "repair a stale step",
        "sweep stale documents",
        "re-send stale documents",
    ]
