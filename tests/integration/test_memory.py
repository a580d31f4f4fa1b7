"""Memory on real Postgres (RLS, pgvector, full text) and real Redis behind the Upstash
bridge, with the real offline embedder: search quality, tenant and user isolation (cache
included), deletion, and bad input that stores nothing."""

from __future__ import annotations

import json
import uuid
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from guildstack.adapters.embeddings.minilm import MiniLMEmbedder
from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.adapters.postgres.uow import PostgresTx, PostgresUnitOfWork
from guildstack.bootstrap import Container, build
from guildstack.config import Settings
from guildstack.domain.errors import Forbidden, InvalidInput, NotFound
from guildstack.domain.identity import Principal
from guildstack.domain.memory import Collection, MemoryScope
from guildstack.domain.paging import PageRequest
from tests.fixtures.postgres import MakeUser, claims_for, create_workspace
from tests.fixtures.redis import UpstashEndpoint

LABELED = json.loads((Path(__file__).parents[1] / "data" / "memory_recall.json").read_text())
EMBEDDER = MiniLMEmbedder()


class ReasonsKept(PostgresUnitOfWork):
    """Keeps the reason of every system transaction."""

    def __init__(self, database: PostgresDatabase, reasons: list[str]) -> None:
        super().__init__(database)
        self._reasons = reasons

    def system(self, reason: str) -> AbstractAsyncContextManager[PostgresTx]:
        self._reasons.append(reason)
        return super().system(reason)


def actor(user: uuid.UUID) -> Principal:
    return Principal(user, None, claims_for(user))


@pytest.fixture
def container(database: PostgresDatabase, upstash: UpstashEndpoint) -> Container:
    settings = Settings(
        stage="test",
        upstash_redis_rest_url=upstash.url,
        upstash_redis_rest_token=SecretStr(upstash.token),
    )
    return build(settings, database=database, embedder=EMBEDDER)


async def test_given_the_labeled_set_then_hybrid_search_recall_at_5_is_at_least_0_9(
    container: Container, database: PostgresDatabase, make_user: MakeUser
) -> None:
    user = await make_user()
    workspace = await create_workspace(database, user)
    who = actor(user)
    ids: dict[str, uuid.UUID] = {}
    for key, (collection, content) in LABELED["memories"].items():
        memory = await container.memory.remember(
            who,
            workspace,
            content=content,
            collection=Collection(collection),
            scope=MemoryScope.USER,
        )
        ids[key] = memory.id
    found = total = 0
    misses = []
    for case in LABELED["queries"]:
        hits = await container.memory.search(who, workspace, case["query"], limit=5)
        returned = {h.memory.id for h in hits}
        relevant = {ids[k] for k in case["relevant"]}
        found += len(relevant & returned)
        total += len(relevant)
        if relevant - returned:
            misses.append(case["query"])
    recall = found / total
    print(f"\nmemory recall@5 on {len(LABELED['queries'])} labeled queries: {recall:.3f}")  # noqa: T201
    assert recall >= 0.9, f"recall@5 {recall:.3f}; missed: {misses}"


async def test_given_hits_then_each_carries_its_score_parts_and_weights_add_up(
    container: Container, database: PostgresDatabase, make_user: MakeUser
) -> None:
    user = await make_user()
    workspace = await create_workspace(database, user)
    who = actor(user)
    await container.memory.remember(
        who, workspace, content="The office wifi password rotates monthly.",
        collection=Collection.CORE, scope=MemoryScope.USER,
    )  # fmt: skip
    (hit,) = await container.memory.search(who, workspace, "office wifi password", limit=1)
    p = hit.parts
    assert 0 < p.semantic <= 1 and p.text > 0 and p.feedback == 0.5 and p.frequency == 0
    expected = 0.5 * p.semantic + 0.25 * p.feedback + 0.15 * p.recency + 0.10 * p.frequency
    assert hit.score == pytest.approx(expected, abs=1e-5)


async def test_given_two_users_then_user_memories_stay_private_even_through_the_cache(
    container: Container, database: PostgresDatabase, make_user: MakeUser
) -> None:
    ada, ben, outsider = await make_user(), await make_user(), await make_user()
    workspace = await create_workspace(database, ada, members={ben: "viewer"})
    await create_workspace(database, outsider)
    secret = await container.memory.remember(
        actor(ada), workspace,
        content="Ada's bank PIN hint: the year of the moon landing.",
        collection=Collection.CORE, scope=MemoryScope.USER,
    )  # fmt: skip
    shared = await container.memory.remember(
        actor(ada), workspace, content="The team offsite is in Porto in October.",
        collection=Collection.BUSINESS, scope=MemoryScope.WORKSPACE,
    )  # fmt: skip
    query = "bank PIN hint moon landing"
    assert secret.id in {
        h.memory.id for h in await container.memory.search(actor(ada), workspace, query)
    }

    ben_hits = await container.memory.search(actor(ben), workspace, query)  # A's result is cached
    ben_list = await container.memory.list_memories(actor(ben), workspace, None, PageRequest())
    assert secret.id not in {h.memory.id for h in ben_hits}
    assert secret.id not in {m.id for m in ben_list.items}
    assert shared.id in {m.id for m in ben_list.items}
    offsite = await container.memory.search(actor(ben), workspace, "where is the team offsite")
    assert offsite[0].memory.id == shared.id
    with pytest.raises(NotFound):  # an outsider is told the workspace does not exist
        await container.memory.search(actor(outsider), workspace, "team offsite Porto")
    with pytest.raises(NotFound):
        await container.memory.forget(actor(ben), workspace, secret.id)


async def test_given_a_deleted_memory_then_the_next_search_does_not_return_it_even_cached(
    container: Container, database: PostgresDatabase, make_user: MakeUser
) -> None:
    user = await make_user()
    workspace = await create_workspace(database, user)
    who = actor(user)
    memory = await container.memory.remember(
        who, workspace, content="The spare key is under the blue flower pot.",
        collection=Collection.CORE, scope=MemoryScope.USER,
    )  # fmt: skip
    query = "where is the spare key"
    first = await container.memory.search(who, workspace, query)
    again = await container.memory.search(who, workspace, query)  # served from the cache
    assert first[0].memory.id == again[0].memory.id == memory.id

    await container.memory.forget(who, workspace, memory.id)
    after = await container.memory.search(who, workspace, query)
    assert memory.id not in {h.memory.id for h in after}


async def test_given_a_workspace_memory_from_a_viewer_then_forbidden(
    container: Container, database: PostgresDatabase, make_user: MakeUser
) -> None:
    owner, viewer = await make_user(), await make_user()
    workspace = await create_workspace(database, owner, members={viewer: "viewer"})
    with pytest.raises(Forbidden):
        await container.memory.remember(
            actor(viewer), workspace, content="Shared fact.",
            collection=Collection.BUSINESS, scope=MemoryScope.WORKSPACE,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("call", "kwargs"),
    [
        ("remember", {"content": "   "}),
        ("remember", {"content": "x" * 8001}),
        ("remember", {"content": "fine", "embedding": [0.1] * 383}),
        ("search", {"query": ""}),
        ("search", {"query": "ok", "limit": 0}),
        ("feedback", {"value": 0}),
        ("feedback", {"value": 2}),
    ],
)
async def test_given_bad_input_then_invalid_and_nothing_stored(
    container: Container,
    database: PostgresDatabase,
    make_user: MakeUser,
    call: str,
    kwargs: dict[str, Any],
) -> None:
    user = await make_user()
    workspace = await create_workspace(database, user)
    who = actor(user)
    existing = await container.memory.remember(
        who, workspace, content="A memory to give feedback on.",
        collection=Collection.CORE, scope=MemoryScope.USER,
    )  # fmt: skip
    with pytest.raises(InvalidInput):
        if call == "remember":
            await container.memory.remember(
                who, workspace, collection=Collection.CORE,
                scope=MemoryScope.USER, **kwargs,
            )  # fmt: skip
        elif call == "search":
            await container.memory.search(who, workspace, **kwargs)
        else:
            await container.memory.feedback(who, workspace, existing.id, **kwargs)
    listed = await container.memory.list_memories(who, workspace, None, PageRequest())
    assert [m.id for m in listed.items] == [existing.id]
    assert listed.items[0].feedback_score == 0


async def test_given_a_document_then_chunks_are_searchable_and_its_status_is_ready(
    container: Container, database: PostgresDatabase, make_user: MakeUser
) -> None:
    user = await make_user()
    workspace = await create_workspace(database, user)
    who = actor(user)
    text = (
        " ".join(
            f"Section {i}. The warranty covers part number {1000 + i} for {i + 1} years."
            for i in range(60)
        )
        + " Returns are accepted within 30 days with the original receipt."
    )
    document = await container.memory.add_document(who, workspace, "Warranty terms", text)
    listed = await container.memory.documents(who, workspace, PageRequest())

    assert document.status == "ready" and document.chunk_count > 1
    assert listed.items[0].id == document.id and listed.items[0].chunk_count == document.chunk_count
    hits = await container.memory.search(
        who, workspace, "can I return it without a receipt", collections=[Collection.DOCUMENTS]
    )
    assert "receipt" in hits[0].memory.content


async def test_given_the_text_candidate_function_called_directly_then_it_keeps_visibility(
    container: Container, database: PostgresDatabase, make_user: MakeUser
) -> None:
    """The full-text helper runs with its owner's rights; it must apply the policy itself."""
    ada, ben, outsider = await make_user(), await make_user(), await make_user()
    workspace = await create_workspace(database, ada, members={ben: "viewer"})
    private = await container.memory.remember(
        actor(ada), workspace, content="Zanzibar holiday savings plan.",
        collection=Collection.CORE, scope=MemoryScope.USER,
    )  # fmt: skip

    async def ids_for(user: uuid.UUID) -> set[uuid.UUID]:
        async with database.transaction(claims_for(user)) as conn:
            cur = await conn.execute(
                "select id from private.memory_text_candidates(%s, %s, null, %s, 50) as id",
                (workspace, EMBEDDER.model_id, "Zanzibar holiday"),
            )
            return {row["id"] for row in await cur.fetchall()}

    assert await ids_for(ada) == {private.id}
    assert await ids_for(ben) == set()
    assert await ids_for(outsider) == set()


async def test_given_a_search_then_access_counts_rise_after_it_and_documents_stay_private(
    container: Container, database: PostgresDatabase, make_user: MakeUser
) -> None:
    ada, ben = await make_user(), await make_user()
    workspace = await create_workspace(database, ada, members={ben: "admin"})
    memory = await container.memory.remember(
        actor(ada), workspace, content="The garage code is 4711.",
        collection=Collection.CORE, scope=MemoryScope.USER,
    )  # fmt: skip
    await container.memory.search(actor(ada), workspace, "garage code")
    await container.memory.drain()
    (stored,) = (
        await container.memory.list_memories(actor(ada), workspace, None, PageRequest())
    ).items
    assert stored.id == memory.id and stored.access_count == 1
    assert stored.last_accessed_at is not None

    await container.memory.add_document(actor(ada), workspace, "Diary", "Private thoughts. " * 20)
    theirs = await container.memory.documents(actor(ben), workspace, PageRequest())
    assert theirs.items == []


async def test_given_searches_in_a_row_then_their_accesses_are_counted_in_one_transaction(
    container: Container, database: PostgresDatabase, make_user: MakeUser
) -> None:
    """Each search used to count its hits in a transaction of its own, competing with the
    searches that followed; now the hits of searches close together are counted at once."""
    ada = await make_user()
    workspace = await create_workspace(database, ada)
    memory = await container.memory.remember(
        actor(ada), workspace, content="The garage code is 4711.",
        collection=Collection.CORE, scope=MemoryScope.USER,
    )  # fmt: skip
    reasons: list[str] = []
    kept = ReasonsKept(database, reasons)
    container = build(container.settings, database=database, embedder=EMBEDDER, uow=kept)
    for query in ("garage code", "the code of the garage", "garage"):
        await container.memory.search(actor(ada), workspace, query)
    await container.memory.drain()

    (stored,) = (
        await container.memory.list_memories(actor(ada), workspace, None, PageRequest())
    ).items
    assert stored.id == memory.id and stored.access_count == 3
    assert reasons.count("count memory accesses") == 1
