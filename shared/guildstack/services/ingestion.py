"""Document ingestion as a leased job: claim, chunk and embed, store as the owner's
`documents` memories; a failed attempt goes back for the queue's redelivery and the
dead-letter verdict ends it `failed`, so a document that always fails is never re-sent."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from guildstack.domain.authorization import Action, authorize
from guildstack.domain.errors import GuildstackError
from guildstack.domain.jobs import DocumentJob, JobMessage
from guildstack.domain.memory import MemoryScope, chunk_text, document_scope
from guildstack.observability import logger, metrics
from guildstack.ports.memory import Embedder, NewMemory, PendingDocument, SearchCache
from guildstack.ports.uow import UnitOfWork


class DocumentIngestion:
    def __init__(
        self,
        uow: UnitOfWork,
        embedder: Callable[[], Embedder],
        cache: SearchCache | None = None,
        *,
        lease_seconds: int = 180,
        queued: bool = True,
    ) -> None:
        # Made on first ingestion: dead-lettering and sweeping need no embedder.
        self._uow = uow
        self._embedder_of = embedder
        self._cache = cache
        self._lease = lease_seconds
        # False when there is no queue: documents are then ingested within the request.
        self.queued = queued

    async def ingest(self, message: JobMessage) -> int | None:
        """The worker's half: the number of chunks stored; None when someone else holds it
        or it has ended; raises (the job back to pending) when this attempt failed."""
        async with self._uow.system("claim a document") as tx:
            job = await tx.documents.lock(message.workspace_id, message.job_id)
            if job is None or not job.claim(lease_seconds=self._lease, now=tx.now):
                return None
            await tx.documents.save(job)
            pending = await tx.documents.pending(job.id)
        attempt = job.attempt
        try:
            stored = await self._store(message, pending, attempt)
        except Exception as exc:
            # Whatever failed after the claim, the job goes back for the queue's redelivery
            # (with the error), so the dead-letter verdict can end it: never left leased.
            error = _describe(exc)
            await self._end(message, attempt, lambda job: job.release(attempt, error))
            raise
        if stored is not None:
            shared = document_scope(pending.document.collection) is MemoryScope.WORKSPACE
            owner = None if shared else pending.document.owner_id
            await self._invalidate(pending.document.workspace_id, owner)
            metrics.add_metric(name="DocumentsIngested", unit="Count", value=1)
        return stored

    async def _store(
        self, message: JobMessage, pending: PendingDocument, attempt: int
    ) -> int | None:
        """Chunk, embed and store as the owner's memories (the workspace's, for a knowledge
        collection, written on the owner's authority); None when the lease was lost."""
        document = pending.document
        scope = document_scope(document.collection)
        embedder = self._embedder_of()
        chunks = chunk_text(pending.text)
        vectors = await embedder.embed(chunks)
        memories = [
            NewMemory(
                scope,
                document.collection,
                chunk,
                vector,
                embedder.model_id,
                {"document_id": str(document.id), "title": document.title, "chunk": i},
                document_id=document.id,
                chunk_index=i,
            )
            for i, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True))
        ]
        async with self._uow.system("store a document's chunks") as tx:
            job = await tx.documents.lock(message.workspace_id, message.job_id)
            if job is None or not job.holds(attempt):
                return None  # the lease ran out and another attempt took over
            # The memories are written on the owner's authority, so they must still belong
            # here (and may share memories, for the workspace's knowledge).
            needed = Action.SHARE_MEMORY if scope is MemoryScope.WORKSPACE else Action.REMEMBER
            authorize(await tx.workspaces.role_of(document.workspace_id, document.owner_id), needed)
            await tx.memories.add(document.workspace_id, document.owner_id, memories)
            job.finish(attempt)
            await tx.documents.save(job, chunk_count=len(chunks))
        return len(chunks)

    async def bury(self, message: JobMessage) -> bool:
        """The dead-letter verdict: the document failed for good."""
        async with self._uow.system("dead-letter a document") as tx:
            job = await tx.documents.lock(message.workspace_id, message.job_id)
            if job is None or not job.bury(tx.now):
                return False
            await tx.documents.save(job)
        metrics.add_metric(name="DocumentsFailed", unit="Count", value=1)
        return True

    async def stale(self, older_than_seconds: int, limit: int) -> list[JobMessage]:
        """Documents whose message may be lost, or whose worker died: send them again."""
        async with self._uow.system("sweep stale documents") as tx:
            jobs = await tx.documents.stale(older_than_seconds, limit)
        return [JobMessage.document(j.workspace_id, j.id) for j in jobs]

    async def _end(
        self, message: JobMessage, attempt: int, change: Callable[[DocumentJob], bool]
    ) -> None:
        try:
            async with self._uow.system("release a document") as tx:
                job = await tx.documents.lock(message.workspace_id, message.job_id)
                if job is not None and change(job):
                    await tx.documents.save(job)
        except Exception:  # noqa: BLE001 - the lease runs out on its own; the original error matters
            logger.warning("could not release a document after a failed attempt")

    async def _invalidate(self, workspace_id: UUID, owner_id: UUID | None) -> None:
        if self._cache is not None:
            await self._cache.bump(workspace_id, owner_id)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, GuildstackError):
        return f"{type(exc).__name__}: {exc.detail}"
    return type(exc).__name__
