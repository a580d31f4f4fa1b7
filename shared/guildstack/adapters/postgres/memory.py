"""`PostgresMemoryStore`: memories and documents under the caller's RLS, with hybrid
candidate search (pgvector HNSW over cosine distance + Postgres full text)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from guildstack.adapters.postgres.database import Connection, PostgresDatabase, returned_row
from guildstack.domain.errors import Forbidden, NotFound
from guildstack.domain.identity import Principal
from guildstack.domain.memory import Candidate, Collection, Document, Memory, MemoryScope
from guildstack.domain.paging import Page, PageRequest, page_of
from guildstack.ports.memory import CandidateQuery, DocumentMessage, NewMemory, PendingDocument

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


class PostgresMemoryStore:
    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def add(
        self, actor: Principal, workspace_id: UUID, memories: Sequence[NewMemory]
    ) -> list[Memory]:
        added = []
        async with self._db.transaction(actor.claims) as conn:
            for new in memories:
                cur = await conn.execute(
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
                        actor.user_id if new.scope is MemoryScope.USER else None,
                        new.collection.value,
                        new.content,
                        json.dumps(new.metadata),
                        vector_literal(new.embedding),
                        new.embedding_model,
                        new.document_id,
                        new.chunk_index,
                        actor.user_id,
                    ),
                )
                row = await returned_row(cur)
                added.append(_memory(row))
        return added

    async def list_memories(
        self,
        actor: Principal,
        workspace_id: UUID,
        collection: Collection | None,
        page: PageRequest,
    ) -> Page[Memory]:
        after_ts, after_id = page.after if page.after else (None, None)
        async with self._db.transaction(actor.claims) as conn:
            cur = await conn.execute(
                f"""
                select {_COLUMNS} from public.memories m
                where m.workspace_id = %(ws)s
                  and (%(collection)s::text is null or m.collection = %(collection)s)
                  and (%(after_ts)s::timestamptz is null
                       or (m.created_at, m.id) < (%(after_ts)s::timestamptz, %(after_id)s::uuid))
                order by m.created_at desc, m.id desc
                limit %(limit)s
                """,  # noqa: S608 - constant column list
                {
                    "ws": workspace_id,
                    "collection": collection.value if collection else None,
                    "after_ts": after_ts,
                    "after_id": after_id,
                    "limit": page.limit + 1,
                },
            )
            items = [_memory(r) for r in await cur.fetchall()]
        return page_of(items, page.limit, lambda m: (m.created_at, m.id))

    async def get(self, actor: Principal, workspace_id: UUID, memory_id: UUID) -> Memory:
        async with self._db.transaction(actor.claims) as conn:
            return await _visible(conn, workspace_id, memory_id)

    async def delete(self, actor: Principal, workspace_id: UUID, memory_id: UUID) -> Memory:
        async with self._db.transaction(actor.claims) as conn:
            memory = await _visible(conn, workspace_id, memory_id)
            cur = await conn.execute("delete from public.memories where id = %s", (memory_id,))
            if cur.rowcount == 0:
                raise Forbidden("Only the owner (or an operator, for shared memories) may delete.")
            return memory

    async def feedback(
        self, actor: Principal, workspace_id: UUID, memory_id: UUID, value: int
    ) -> Memory:
        async with self._db.transaction(actor.claims) as conn:
            await _visible(conn, workspace_id, memory_id)
            cur = await conn.execute(
                "update public.memories m set feedback_score = feedback_score + %s"  # noqa: S608
                " where id = %s returning " + _COLUMNS,
                (value, memory_id),
            )
            row = await cur.fetchone()
            if row is None:
                raise NotFound("No such memory.")
            return _memory(row)

    async def candidates(
        self, actor: Principal, workspace_id: UUID, query: CandidateQuery
    ) -> list[Candidate]:
        ef_search = min(EF_SEARCH_MAX, max(100, query.semantic_k * EF_SEARCH_FACTOR))
        collections = [c.value for c in query.collections] if query.collections else None
        async with self._db.transaction(actor.claims) as conn:
            await conn.execute("select set_config('hnsw.ef_search', %s, true)", (str(ef_search),))
            cur = await conn.execute(
                f"""
                with semantic as (
                    -- The vector and the tsquery are parameters, not joined values, so the
                    -- planner can walk the HNSW index in distance order and use the GIN index.
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
                    select %(vec)s::extensions.vector as v,
                           websearch_to_tsquery('english', %(text)s) as t
                )
                select {_COLUMNS},
                       1 - (m.embedding operator(extensions.<=>) q.v) as similarity,
                       case when m.content_tsv @@ q.t then ts_rank_cd(m.content_tsv, q.t)
                            else 0 end as text_rank
                from public.memories m, q
                -- An id array (not IN): an index lookup per candidate, so row security is
                -- checked for the candidates only, not for every row of the table.
                where m.id = any(array(select id from semantic union select id from lexical))
                """,  # noqa: S608 - constant column list
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

    async def touch(self, actor: Principal, workspace_id: UUID, memory_ids: Sequence[UUID]) -> None:
        if not memory_ids:
            return
        async with self._db.transaction(actor.claims) as conn:
            await conn.execute(
                "update public.memories set access_count = access_count + 1,"
                " last_accessed_at = now() where workspace_id = %s and id = any(%s)",
                (workspace_id, list(memory_ids)),
            )

    async def create_document(
        self, actor: Principal, workspace_id: UUID, title: str, text: str
    ) -> Document:
        async with self._db.transaction(actor.claims) as conn:
            cur = await conn.execute(
                "insert into public.documents (workspace_id, owner_id, title, body)"
                " values (%s, %s, %s, %s) returning *",
                (workspace_id, actor.user_id, title, text),
            )
            row = await returned_row(cur)
            return _document(row)

    async def documents(
        self, actor: Principal, workspace_id: UUID, page: PageRequest
    ) -> Page[Document]:
        after_ts, after_id = page.after if page.after else (None, None)
        async with self._db.transaction(actor.claims) as conn:
            cur = await conn.execute(
                """
                select * from public.documents
                where workspace_id = %(ws)s
                  and (%(after_ts)s::timestamptz is null
                       or (created_at, id) < (%(after_ts)s::timestamptz, %(after_id)s::uuid))
                order by created_at desc, id desc
                limit %(limit)s
                """,
                {
                    "ws": workspace_id,
                    "after_ts": after_ts,
                    "after_id": after_id,
                    "limit": page.limit + 1,
                },
            )
            items = [_document(r) for r in await cur.fetchall()]
        return page_of(items, page.limit, lambda d: (d.created_at, d.id))

    async def finish_document(
        self, document_id: UUID, status: str, chunk_count: int, error: str | None = None
    ) -> None:
        async with self._db.service_transaction("record a document's ingestion") as conn:
            await conn.execute(
                "update public.documents set status = %s, chunk_count = %s, error = %s,"
                " body = null, updated_at = now() where id = %s",
                (status, chunk_count, error, document_id),
            )

    async def claim_document(self, message: DocumentMessage) -> PendingDocument | None:
        async with self._db.service_transaction("claim a document") as conn:
            cur = await conn.execute(
                "update public.documents set status = 'processing', updated_at = now()"
                " where id = %s and workspace_id = %s and body is not null"
                " and (status = 'pending' or (status = 'processing'"
                "      and updated_at < now() - interval '15 minutes'))"
                " returning *",
                (message.document_id, message.workspace_id),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return PendingDocument(_document(row), row["body"])

    async def release_document(self, document_id: UUID, error: str) -> None:
        async with self._db.service_transaction("release a document") as conn:
            await conn.execute(
                "update public.documents set status = 'pending', error = %s, updated_at = now()"
                " where id = %s and status = 'processing'",
                (error[:500], document_id),
            )

    async def stale_documents(self, older_than_seconds: int, limit: int) -> list[DocumentMessage]:
        async with self._db.service_transaction("sweep stale documents") as conn:
            cur = await conn.execute(
                """
                with stale as (
                    select id from public.documents
                    where body is not null
                      and ((status = 'pending'
                            and updated_at < now() - make_interval(secs => %s))
                        or (status = 'processing' and updated_at < now() - interval '15 minutes'))
                    order by updated_at limit %s for update skip locked
                )
                update public.documents d set status = 'pending', updated_at = now()
                from stale where d.id = stale.id
                returning d.workspace_id, d.id
                """,
                (older_than_seconds, limit),
            )
            return [DocumentMessage(r["workspace_id"], r["id"]) for r in await cur.fetchall()]


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
        status=row["status"],
        chunk_count=row["chunk_count"],
        created_at=row["created_at"],
        error=row["error"],
    )
