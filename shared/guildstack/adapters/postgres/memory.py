"""Memories and documents under the caller's RLS, with hybrid candidate search (pgvector
HNSW over cosine distance + Postgres full text); documents as leased ingestion jobs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from guildstack.adapters.postgres.database import Connection, returned_row
from guildstack.adapters.postgres.paging import fetch_page
from guildstack.domain.errors import NotFound
from guildstack.domain.identity import Principal
from guildstack.domain.jobs import DocumentJob, DocumentStatus
from guildstack.domain.memory import Candidate, Collection, Document, Memory, MemoryScope
from guildstack.domain.paging import Page, PageRequest
from guildstack.ports.memory import CandidateQuery, NewMemory, PendingDocument

_COLUMNS = (
    "m.id, m.workspace_id, m.scope, m.owner_id, m.collection, m.content, m.metadata,"
    " m.embedding_model, m.confidence, m.feedback_score, m.access_count, m.created_at,"
    " m.last_accessed_at, m.document_id"
)
# HNSW returns at most ef_search rows before filters (workspace, collection, model, RLS)
# apply, so ask for several times what is needed; pgvector caps it at 1000.
EF_SEARCH_FACTOR = 8
EF_SEARCH_MAX = 1000


def vector_literal(values: Sequence[float]) -> str:
    return "[" + ",".join(f"{v:.7g}" for v in values) + "]"


class PostgresMemoryRepository:
    def __init__(self, conn: Connection, actor: Principal | None) -> None:
        self._conn = conn
        self._actor = actor

    async def add(
        self, workspace_id: UUID, owner_id: UUID, memories: Sequence[NewMemory]
    ) -> list[Memory]:
        added = []
        for new in memories:
            cur = await self._conn.execute(
                f"""
                insert into public.memories as m (workspace_id, scope, owner_id, collection,
                    content, metadata, embedding, embedding_model, document_id, chunk_index,
                    created_by)
                values (%s, %s, %s, %s, %s, %s, %s::extensions.vector, %s, %s, %s, %s)
                returning {_COLUMNS}
                """,  # noqa: S608 - constant column list
                (
                    workspace_id,
                    new.scope.value,
                    owner_id if new.scope is MemoryScope.USER else None,
                    new.collection.value,
                    new.content,
                    json.dumps(new.metadata),
                    vector_literal(new.embedding),
                    new.embedding_model,
                    new.document_id,
                    new.chunk_index,
                    owner_id,
                ),
            )
            added.append(_memory(await returned_row(cur)))
        return added

    async def list_memories(
        self, workspace_id: UUID, collection: Collection | None, page: PageRequest
    ) -> Page[Memory]:
        return await fetch_page(
            self._conn,
            f"select {_COLUMNS} from public.memories m where m.workspace_id = %(ws)s"  # noqa: S608
            " and (%(collection)s::text is null or m.collection = %(collection)s)",
            {"ws": workspace_id, "collection": collection.value if collection else None},
            page,
            _memory,
            lambda m: (m.created_at, m.id),
            key=("m.created_at", "m.id"),
        )

    async def get(self, workspace_id: UUID, memory_id: UUID) -> Memory:
        return await _visible(self._conn, workspace_id, memory_id)

    async def delete(self, workspace_id: UUID, memory_id: UUID) -> bool:
        cur = await self._conn.execute(
            "delete from public.memories where id = %s and workspace_id = %s",
            (memory_id, workspace_id),
        )
        return bool(cur.rowcount == 1)

    async def feedback(self, workspace_id: UUID, memory_id: UUID, value: int) -> Memory:
        # Members cannot write the score: the function records their one vote and sums.
        cur = await self._conn.execute(
            "select private.vote_memory(%s, %s, %s) as score", (workspace_id, memory_id, value)
        )
        row = await returned_row(cur)
        if row["score"] is None:
            raise NotFound("No such memory.")
        return await _visible(self._conn, workspace_id, memory_id)

    async def candidates(self, workspace_id: UUID, query: CandidateQuery) -> list[Candidate]:
        ef_search = min(EF_SEARCH_MAX, max(100, query.semantic_k * EF_SEARCH_FACTOR))
        collections = [c.value for c in query.collections] if query.collections else None
        await self._conn.execute("select set_config('hnsw.ef_search', %s, true)", (str(ef_search),))
        cur = await self._conn.execute(
            _CANDIDATES,
            {
                "vec": vector_literal(query.embedding),
                "text": query.text,
                "ws": workspace_id,
                "model": query.embedding_model,
                "cols": collections,
                "sk": query.semantic_k,
                "tk": query.text_k,
            },
        )
        rows = await cur.fetchall()
        return [Candidate(_memory(r), float(r["similarity"]), float(r["text_rank"])) for r in rows]

    async def touch(self, workspace_id: UUID, memory_ids: Sequence[UUID]) -> None:
        if not memory_ids:
            return
        # An id given n times is n accesses.
        await self._conn.execute(
            "update public.memories m set access_count = m.access_count + c.n,"
            " last_accessed_at = now()"
            " from (select id, count(*)::int as n from unnest(%s::uuid[]) as id group by id) c"
            " where m.workspace_id = %s and m.id = c.id",
            (list(memory_ids), workspace_id),
        )


_CANDIDATES = f"""
    with semantic as (
        -- The vector and the tsquery are parameters, not joined values, so the planner can
        -- walk the HNSW index in distance order and use the GIN index.
        select m.id from public.memories m
        where m.workspace_id = %(ws)s and m.embedding_model = %(model)s
          and (%(cols)s::text[] is null or m.collection = any(%(cols)s))
        order by m.embedding operator(extensions.<=>) %(vec)s::extensions.vector
        limit %(sk)s
    ),
    lexical as (
        select id from private.memory_text_candidates(
            %(ws)s, %(model)s, %(cols)s::text[], %(text)s, %(tk)s) as id
    ),
    q as (
        select %(vec)s::extensions.vector as v, websearch_to_tsquery('english', %(text)s) as t
    )
    select {_COLUMNS},
           -- A vector without direction has a NaN cosine; it must count as no similarity.
           coalesce(nullif(1 - (m.embedding operator(extensions.<=>) q.v), 'NaN'), 0)
               as similarity,
           case when m.content_tsv @@ q.t then ts_rank_cd(m.content_tsv, q.t) else 0 end
               as text_rank
    from public.memories m, q
    -- An id array (not IN): an index lookup per candidate, so row security is checked for
    -- the candidates only, not for every row of the table.
    where m.id = any(array(select id from semantic union select id from lexical))
"""  # noqa: S608 - constant column list


class PostgresDocumentRepository:
    def __init__(self, conn: Connection, actor: Principal | None) -> None:
        self._conn = conn
        self._actor = actor

    async def create(
        self,
        workspace_id: UUID,
        title: str,
        text: str,
        *,
        owner_id: UUID | None = None,
        collection: Collection = Collection.DOCUMENTS,
    ) -> Document:
        owner = owner_id or (self._actor.user_id if self._actor else None)
        if owner is None:
            raise RuntimeError("a document belongs to a user")
        cur = await self._conn.execute(
            "insert into public.documents (workspace_id, owner_id, title, body, collection)"
            " values (%s, %s, %s, %s, %s) returning *",
            (workspace_id, owner, title, text, collection.value),
        )
        return _document(await returned_row(cur))

    async def list_documents(self, workspace_id: UUID, page: PageRequest) -> Page[Document]:
        return await fetch_page(
            self._conn,
            "select * from public.documents where workspace_id = %(ws)s"
            " and collection = %(collection)s",
            {"ws": workspace_id, "collection": Collection.DOCUMENTS.value},
            page,
            _document,
            lambda d: (d.created_at, d.id),
        )

    async def lock(self, workspace_id: UUID, document_id: UUID) -> DocumentJob | None:
        cur = await self._conn.execute(
            "select id, workspace_id, status, attempt, lease_until, error from public.documents"
            " where id = %s and workspace_id = %s for no key update",
            (document_id, workspace_id),
        )
        row = await cur.fetchone()
        return _job(row) if row else None

    async def save(self, job: DocumentJob, *, chunk_count: int | None = None) -> None:
        ended = job.status in (DocumentStatus.READY, DocumentStatus.FAILED)
        await self._conn.execute(
            "update public.documents set status = %s, attempt = %s, lease_until = %s,"
            " error = %s, chunk_count = coalesce(%s, chunk_count), updated_at = now(),"
            " body = case when %s then null else body end where id = %s",
            (job.status, job.attempt, job.lease_until, job.error, chunk_count, ended, job.id),
        )

    async def pending(self, document_id: UUID) -> PendingDocument:
        cur = await self._conn.execute(
            "select * from public.documents where id = %s", (document_id,)
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound("No such document.")
        return PendingDocument(_document(row), row["body"] or "")

    async def stale(self, older_than_seconds: int, limit: int) -> list[DocumentJob]:
        # Marked as just re-sent (updated_at), so the next sweep waits again before resending.
        cur = await self._conn.execute(
            """
            with stale as (
                select id from public.documents
                where (status = %s and updated_at < now() - make_interval(secs => %s))
                   or (status = %s and lease_until < now())
                order by updated_at limit %s for update skip locked
            )
            update public.documents d set updated_at = now() from stale where d.id = stale.id
            returning d.id, d.workspace_id, d.status, d.attempt, d.lease_until, d.error
            """,
            (DocumentStatus.PENDING, older_than_seconds, DocumentStatus.PROCESSING, limit),
        )
        return [_job(r) for r in await cur.fetchall()]


async def _visible(conn: Connection, workspace_id: UUID, memory_id: UUID) -> Memory:
    cur = await conn.execute(
        f"select {_COLUMNS} from public.memories m where m.id = %s and m.workspace_id = %s",  # noqa: S608
        (memory_id, workspace_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound("No such memory.")
    return _memory(row)


def _memory(row: dict[str, Any]) -> Memory:
    return Memory(
        id=row["id"],
        workspace_id=row["workspace_id"],
        scope=MemoryScope(row["scope"]),
        owner_id=row["owner_id"],
        collection=Collection(row["collection"]),
        content=row["content"],
        metadata=row["metadata"],
        embedding_model=row["embedding_model"],
        confidence=float(row["confidence"]),
        feedback_score=row["feedback_score"],
        access_count=row["access_count"],
        created_at=row["created_at"],
        last_accessed_at=row["last_accessed_at"],
        document_id=row["document_id"],
    )


def _document(row: dict[str, Any]) -> Document:
    return Document(
        id=row["id"],
        workspace_id=row["workspace_id"],
        owner_id=row["owner_id"],
        title=row["title"],
        status=DocumentStatus(row["status"]),
        chunk_count=row["chunk_count"],
        created_at=row["created_at"],
        error=row["error"],
        collection=Collection(row["collection"]),
    )


def _job(row: dict[str, Any]) -> DocumentJob:
    return DocumentJob(
        id=row["id"],
        workspace_id=row["workspace_id"],
        status=DocumentStatus(row["status"]),
        attempt=row["attempt"],
        lease_until=row["lease_until"],
        error=row["error"],
    )
