"""Memory: remember, forget, search (hybrid re-rank, hot cache), documents, prompt context."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from guildstack.domain.authorization import Action
from guildstack.domain.errors import Forbidden, GuildstackError, InvalidInput
from guildstack.domain.identity import Principal
from guildstack.domain.jobs import DocumentStatus, JobMessage
from guildstack.domain.memory import (
    MAX_CONTENT_CHARS,
    MAX_DOCUMENT_CHARS,
    MAX_QUERY_CHARS,
    MAX_SEARCH_LIMIT,
    Collection,
    Document,
    Memory,
    MemoryScope,
    ScoreParts,
    SearchHit,
    VectorProblem,
    rank,
    unit_vector,
)
from guildstack.domain.paging import Page, PageRequest
from guildstack.observability import cache_metric, logger, metrics
from guildstack.ports.memory import CandidateQuery, Embedder, NewMemory, SearchCache
from guildstack.ports.uow import UnitOfWork
from guildstack.services.access import authorized
from guildstack.services.ingestion import DocumentIngestion

CACHE_TTL_SECONDS = 3600
# How long hits wait to be counted, pooled with those of the searches that follow.
ACCESS_COUNT_SECONDS = 1.0
# The memory-search cache's name in the cache hit/miss metrics (`cache_type`).
SEARCH_CACHE_TYPE = "memory_search"


def _invalid(field: str, message: str, kind: str = "value_error") -> InvalidInput:
    return InvalidInput(message, [{"loc": ["body", field], "msg": message, "type": kind}])


class MemoryService:
    def __init__(
        self,
        uow: UnitOfWork,
        embedder: Embedder,
        cache: SearchCache | None = None,
        ingestion: DocumentIngestion | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow
        self._embedder = embedder
        self._cache = cache
        self._ingestion = ingestion
        self._clock = clock
        self._background: set[asyncio.Task[None]] = set()
        # Accesses not yet counted: (workspace, memory) per hit, written together.
        self._accessed: list[tuple[UUID, UUID]] = []
        # Set to count the pending accesses at once (`drain`); None when none are pending.
        self._count_now: asyncio.Event | None = None

    async def remember(
        self,
        actor: Principal,
        workspace_id: UUID,
        *,
        content: str,
        collection: Collection,
        scope: MemoryScope,
        metadata: dict[str, Any] | None = None,
        embedding: Sequence[float] | None = None,
        embedding_model: str | None = None,
    ) -> Memory:
        """Store one memory. Shared (workspace) memories need the operator role.

        A client may bring its own `embedding` only when it names the model that made it
        and that model is this deployment's embedder (`embedding_model`): a vector is
        compared only with vectors of the same model, so one from another model would rank
        by noise. It is stored scaled to length 1; one with no direction (all zeros) or a
        non-finite value is refused, since its similarity to every query is undefined."""
        content = content.strip()
        if not content:
            raise _invalid("content", "content is empty")
        if len(content) > MAX_CONTENT_CHARS:
            raise _invalid("content", f"content is over {MAX_CONTENT_CHARS} characters")
        if embedding is None:
            (vector,) = await self._embedder.embed([content])
        else:
            vector = self._client_vector(embedding, embedding_model)
        new = NewMemory(scope, collection, content, vector, self._embedder.model_id, metadata or {})
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, _writing(scope))
            (memory,) = await tx.memories.add(workspace_id, actor.user_id, [new])
        await self._invalidate(workspace_id, actor.user_id, scope)
        metrics.add_metric(name="MemoriesStored", unit="Count", value=1)
        return memory

    def _client_vector(self, embedding: Sequence[float], model: str | None) -> list[float]:
        if model != self._embedder.model_id:
            raise _invalid(
                "embedding_model",
                f"an embedding must name the model that made it: {self._embedder.model_id}",
                "model_mismatch",
            )
        if len(embedding) != self._embedder.dimensions:
            raise _invalid(
                "embedding",
                f"embedding has {len(embedding)} dimensions; {self._embedder.dimensions} expected",
                "wrong_dimensions",
            )
        try:
            return unit_vector(embedding)
        except VectorProblem as problem:
            raise _invalid("embedding", str(problem), problem.kind) from problem

    async def list_memories(
        self,
        actor: Principal,
        workspace_id: UUID,
        collection: Collection | None,
        page: PageRequest,
    ) -> Page[Memory]:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            return await tx.memories.list_memories(workspace_id, collection, page)

    async def forget(self, actor: Principal, workspace_id: UUID, memory_id: UUID) -> None:
        """Delete; the next search cannot return it, cached or not. A user-scope memory is
        its owner's to delete; a shared one needs the operator role."""
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            memory = await tx.memories.get(workspace_id, memory_id)
            await authorized(tx, workspace_id, _writing(memory.scope))
            if not await tx.memories.delete(workspace_id, memory_id):
                raise Forbidden("Only the owner (or an operator, for shared memories) may delete.")
        await self._invalidate(workspace_id, actor.user_id, memory.scope)

    async def feedback(
        self, actor: Principal, workspace_id: UUID, memory_id: UUID, value: int
    ) -> Memory:
        """The caller's vote (1 or -1) on a memory they can see. One vote per member: voting
        again replaces their vote, so the score (the sum of the votes) cannot be stacked."""
        if value not in (1, -1):
            raise _invalid("value", "feedback is 1 or -1")
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.REMEMBER)
            await tx.memories.get(workspace_id, memory_id)
            memory = await tx.memories.feedback(workspace_id, memory_id, value)
        await self._invalidate(workspace_id, actor.user_id, memory.scope)
        return memory

    async def search(
        self,
        actor: Principal,
        workspace_id: UUID,
        query: str,
        *,
        collections: Sequence[Collection] | None = None,
        limit: int = 10,
        count: bool = True,
    ) -> list[SearchHit]:
        """Membership is checked before the cache is consulted, so a member who was removed
        is never served a search they cached while they belonged. A member's search
        (`count`) is counted among the workspace's recent ones, which the hourly warm-up
        re-runs, and its hits' accesses are counted; the warm-up's runs count neither."""
        query = query.strip()
        if not query:
            raise _invalid("query", "query is empty")
        if len(query) > MAX_QUERY_CHARS:
            raise _invalid("query", f"query is over {MAX_QUERY_CHARS} characters")
        if not 1 <= limit <= MAX_SEARCH_LIMIT:
            raise _invalid("limit", f"limit is between 1 and {MAX_SEARCH_LIMIT}")
        wanted = tuple(sorted(set(collections), key=str)) if collections else None
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
        key = await self._cache_key(actor.user_id, workspace_id, query, wanted, limit)
        if count and key is not None and self._cache is not None:
            entry = _asked(actor.user_id, query, wanted, limit)
            self._count_later(self._cache, workspace_id, entry)
        cached = await self._cached(key)
        if key is not None:  # the hit ratio beside the typed caches' (`cache_type`)
            cache_metric(SEARCH_CACHE_TYPE, hit=cached is not None)
        if cached is not None:
            return cached
        (vector,) = await self._embedder.embed([query])
        candidate_query = CandidateQuery(
            embedding=vector,
            embedding_model=self._embedder.model_id,
            text=query,
            collections=wanted,
            semantic_k=max(limit * 4, 20),
            text_k=max(limit * 2, 10),
        )
        async with self._uow(actor) as tx:
            candidates = await tx.memories.candidates(workspace_id, candidate_query)
        hits = rank(candidates, self._clock(), limit)
        await self._store_cached(key, hits)
        if count:
            self._touch_later(workspace_id, [h.memory.id for h in hits])
        return hits

    async def context_for(
        self, actor: Principal, workspace_id: UUID, query: str, *, limit: int = 5
    ) -> str:
        """What an agent should know for `query`: the best memories, as prompt text."""
        hits = await self.search(actor, workspace_id, query, limit=limit)
        return "\n".join(f"- [{h.memory.collection}] {h.memory.content}" for h in hits)

    async def add_document(
        self, actor: Principal, workspace_id: UUID, title: str, text: str
    ) -> Document:
        """Keep the document `pending` and queue its ingestion (chunk, embed, store as the
        owner's `documents` memories). Without a queue it is ingested in the request."""
        if not text.strip():
            raise _invalid("text", "text is empty")
        if len(text) > MAX_DOCUMENT_CHARS:
            raise _invalid("text", f"text is over {MAX_DOCUMENT_CHARS} characters")
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.REMEMBER)
            document = await tx.documents.create(workspace_id, title.strip(), text)
            if self._ingestion is None or self._ingestion.queued:
                tx.send(JobMessage.document(workspace_id, document.id))
        if self._ingestion is not None and not self._ingestion.queued:
            chunks = await self._ingestion.ingest(JobMessage.document(workspace_id, document.id))
            return replace(document, status=DocumentStatus.READY, chunk_count=chunks or 0)
        return document

    async def documents(
        self, actor: Principal, workspace_id: UUID, page: PageRequest
    ) -> Page[Document]:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            return await tx.documents.list_documents(workspace_id, page)

    async def drain(self) -> None:
        """Wait for the work left running after responses (access counts, now)."""
        if self._count_now is not None:
            self._count_now.set()
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    # --------------------------------------------------------------------------------------

    async def _invalidate(self, workspace_id: UUID, user_id: UUID, scope: MemoryScope) -> None:
        if self._cache is None:
            return
        owner = user_id if scope is MemoryScope.USER else None
        # A failed invalidation must not let a stale result live: the write is already
        # committed, so the error surfaces (the client retries; nothing is half done).
        await self._cache.bump(workspace_id, owner)

    async def _cache_key(
        self,
        user_id: UUID,
        workspace_id: UUID,
        query: str,
        collections: tuple[Collection, ...] | None,
        limit: int,
    ) -> str | None:
        if self._cache is None:
            return None
        try:
            shared, own = await self._cache.generations(workspace_id, user_id)
        except Exception:  # noqa: BLE001 - the cache is an accelerator: without it, no caching
            logger.warning("memory cache unavailable; searching without it")
            return None
        raw = json.dumps(
            [str(workspace_id), str(user_id), shared, own, query, collections, limit,
             self._embedder.model_id]
        )  # fmt: skip
        return hashlib.sha256(raw.encode()).hexdigest()

    async def _cached(self, key: str | None) -> list[SearchHit] | None:
        if key is None or self._cache is None:
            return None
        try:
            raw = await self._cache.get(key)
        except Exception:  # noqa: BLE001 - a cache miss, in effect
            return None
        return _hits_from_json(raw) if raw else None

    async def _store_cached(self, key: str | None, hits: list[SearchHit]) -> None:
        if key is None or self._cache is None:
            return
        try:
            await self._cache.put(key, _hits_to_json(hits), CACHE_TTL_SECONDS)
        except Exception:  # noqa: BLE001 - not caching is always safe
            logger.warning("could not cache a memory search")

    async def warm(self, workspace_id: UUID, top: int = 10) -> int:
        """Re-run the workspace's most frequent recent searches, each as the member who
        asked it (their access, their memories: what they would be served), so their cache
        entries are fresh before they ask again; a search whose member has left is skipped.
        How many were run."""
        if self._cache is None:
            return 0
        warmed = 0
        for entry in await self._cache.frequent_queries(workspace_id, top):
            user_id, query, wanted, limit = json.loads(entry)
            member = Principal(UUID(user_id), None, {"sub": user_id, "role": "authenticated"})
            collections = [Collection(c) for c in wanted] if wanted else None
            try:
                await self.search(
                    member, workspace_id, query, collections=collections, limit=limit, count=False
                )
            except GuildstackError:  # no longer a member, or the query no longer valid
                continue
            warmed += 1
        return warmed

    def _count_later(self, cache: SearchCache, workspace_id: UUID, entry: str) -> None:
        """Count the search off its path (a lost count only makes the warm-up guess worse)."""

        async def count() -> None:
            try:
                await cache.count_query(workspace_id, entry)
            except Exception:  # noqa: BLE001 - a lost count only dulls the warm-up's choice
                logger.warning("could not count a memory search")

        task = asyncio.get_running_loop().create_task(count())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _touch_later(self, workspace_id: UUID, ids: list[UUID]) -> None:
        """Count the accesses after the response, off the search's path: the hits of every
        search within `ACCESS_COUNT_SECONDS` go in one system transaction (not one per
        search, which competed with the searches that followed). Members may not write
        access counts (they rank memories); the system does, for the hits this member's
        search was allowed to see."""
        if not ids:
            return
        self._accessed.extend((workspace_id, memory_id) for memory_id in ids)
        if self._count_now is not None:
            return  # a count is pending: it takes these too
        count_now = self._count_now = asyncio.Event()

        async def count_accesses() -> None:
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(count_now.wait(), ACCESS_COUNT_SECONDS)
            finally:  # accesses from here on wait for the next count
                accessed, self._accessed, self._count_now = self._accessed, [], None
            by_workspace: dict[UUID, list[UUID]] = {}
            for workspace, memory_id in accessed:
                by_workspace.setdefault(workspace, []).append(memory_id)
            try:
                async with self._uow.system("count memory accesses") as tx:
                    for workspace, memory_ids in by_workspace.items():
                        await tx.memories.touch(workspace, memory_ids)
            except Exception:  # noqa: BLE001 - a lost access count is harmless
                logger.warning("could not record memory accesses")

        task = asyncio.get_running_loop().create_task(count_accesses())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _asked(
    user_id: UUID, query: str, collections: tuple[Collection, ...] | None, limit: int
) -> str:
    """Who searched for what: enough to run the same search again as them."""
    wanted = [str(c) for c in collections] if collections else None
    return json.dumps([str(user_id), query, wanted, limit])


def _writing(scope: MemoryScope) -> Action:
    """What writing (or deleting) a memory of `scope` takes."""
    return Action.SHARE_MEMORY if scope is MemoryScope.WORKSPACE else Action.REMEMBER


def _hits_to_json(hits: list[SearchHit]) -> str:
    return json.dumps(
        [
            {
                "memory": {
                    **asdict(h.memory),
                    "id": str(h.memory.id),
                    "workspace_id": str(h.memory.workspace_id),
                    "owner_id": str(h.memory.owner_id) if h.memory.owner_id else None,
                    "document_id": str(h.memory.document_id) if h.memory.document_id else None,
                    "metadata": dict(h.memory.metadata),
                    "created_at": h.memory.created_at.isoformat(),
                    "last_accessed_at": h.memory.last_accessed_at.isoformat()
                    if h.memory.last_accessed_at
                    else None,
                },
                "score": h.score,
                "parts": asdict(h.parts),
            }
            for h in hits
        ]
    )


def _hits_from_json(raw: str) -> list[SearchHit]:
    hits = []
    for item in json.loads(raw):
        m = item["memory"]
        memory = Memory(
            id=UUID(m["id"]),
            workspace_id=UUID(m["workspace_id"]),
            scope=MemoryScope(m["scope"]),
            owner_id=UUID(m["owner_id"]) if m["owner_id"] else None,
            collection=Collection(m["collection"]),
            content=m["content"],
            metadata=m["metadata"],
            embedding_model=m["embedding_model"],
            confidence=m["confidence"],
            feedback_score=m["feedback_score"],
            access_count=m["access_count"],
            created_at=datetime.fromisoformat(m["created_at"]),
            last_accessed_at=datetime.fromisoformat(m["last_accessed_at"])
            if m["last_accessed_at"]
            else None,
            document_id=UUID(m["document_id"]) if m["document_id"] else None,
        )
        hits.append(SearchHit(memory, item["score"], ScoreParts(**item["parts"])))
    return hits
