"""Memory ranking on real Postgres cannot be gamed: no NaN reaches a score, members cannot
write ranking columns in SQL, and feedback is one vote per member."""

from __future__ import annotations

import asyncio
import math
import uuid

import pytest
from pydantic import SecretStr

from guildstack.adapters.embeddings.minilm import MiniLMEmbedder
from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.adapters.postgres.memory import PostgresMemoryRepository, vector_literal
from guildstack.bootstrap import Container, build
from guildstack.config import Settings
from guildstack.domain.errors import Forbidden, InvalidInput
from guildstack.domain.identity import Principal
from guildstack.domain.memory import Collection, MemoryScope
from guildstack.ports.memory import CandidateQuery
from tests.fixtures.postgres import MakeUser, claims_for, create_workspace
from tests.fixtures.redis import UpstashEndpoint

EMBEDDER = MiniLMEmbedder()


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


async def test_given_a_zero_query_vector_when_collecting_candidates_then_no_similarity_is_nan(
    container: Container, database: PostgresDatabase, make_user: MakeUser
) -> None:
    user = await make_user()
    workspace = await create_workspace(database, user)
    await container.memory.remember(
        actor(user), workspace, content="Tea at four.", collection=Collection.CORE,
        scope=MemoryScope.USER,
    )  # fmt: skip
    query = CandidateQuery(
        embedding=[0.0] * 384,
        embedding_model=EMBEDDER.model_id,
        text="tea",
        collections=None,
        semantic_k=10,
        text_k=10,
    )
    async with database.transaction(claims_for(user)) as conn:
        candidates = await PostgresMemoryRepository(conn, actor(user)).candidates(workspace, query)

    assert candidates
    assert all(math.isfinite(c.similarity) and c.similarity == 0 for c in candidates)


async def test_given_a_member_when_inserting_a_zero_vector_in_sql_then_the_database_refuses(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    user = await make_user()
    workspace = await create_workspace(database, user)
    with pytest.raises(InvalidInput):
        async with database.transaction(claims_for(user)) as conn:
            await conn.execute(
                "insert into public.memories (workspace_id, scope, owner_id, collection, content,"
                " embedding, embedding_model) values (%s, 'user', %s, 'core', 'x',"
                " %s::extensions.vector, %s)",
                (workspace, user, vector_literal([0.0] * 384), EMBEDDER.model_id),
            )


@pytest.mark.parametrize(
    "assignment",
    ["feedback_score = 1000", "access_count = 1000000", "last_accessed_at = now()"],
)
async def test_given_a_member_when_writing_ranking_columns_in_sql_then_permission_is_denied(
    container: Container, database: PostgresDatabase, make_user: MakeUser, assignment: str
) -> None:
    user = await make_user()
    workspace = await create_workspace(database, user)
    memory = await container.memory.remember(
        actor(user), workspace, content="Mine to boost.", collection=Collection.CORE,
        scope=MemoryScope.USER,
    )  # fmt: skip
    with pytest.raises(Forbidden):
        async with database.transaction(claims_for(user)) as conn:
            await conn.execute(
                f"update public.memories set {assignment} where id = %s",  # noqa: S608 - test constants
                (memory.id,),
            )


async def test_given_a_member_when_writing_votes_in_sql_then_permission_is_denied(
    container: Container, database: PostgresDatabase, make_user: MakeUser
) -> None:
    user = await make_user()
    workspace = await create_workspace(database, user)
    memory = await container.memory.remember(
        actor(user), workspace, content="Vote target.", collection=Collection.CORE,
        scope=MemoryScope.USER,
    )  # fmt: skip
    with pytest.raises(Forbidden):
        async with database.transaction(claims_for(user)) as conn:
            await conn.execute(
                "insert into public.memory_votes (memory_id, user_id, workspace_id, value)"
                " values (%s, %s, %s, 1)",
                (memory.id, user, workspace),
            )


async def test_given_repeated_and_concurrent_votes_then_the_score_is_the_sum_of_one_vote_each(
    container: Container, database: PostgresDatabase, make_user: MakeUser
) -> None:
    owner = await make_user()
    voters = [await make_user() for _ in range(6)]
    workspace = await create_workspace(
        database, owner, members={voter: "viewer" for voter in voters}
    )
    memory = await container.memory.remember(
        actor(owner), workspace, content="Shared fact.", collection=Collection.BUSINESS,
        scope=MemoryScope.WORKSPACE,
    )  # fmt: skip

    async def vote(user: uuid.UUID, value: int) -> int:
        return (
            await container.memory.feedback(actor(user), workspace, memory.id, value)
        ).feedback_score

    for _ in range(3):
        await vote(owner, 1)
    await asyncio.gather(*(vote(voter, 1) for voter in voters))
    final = await vote(voters[0], -1)

    assert final == 1 + 5 - 1


async def test_given_a_memory_the_voter_cannot_see_then_no_vote_is_recorded(
    container: Container, database: PostgresDatabase, make_user: MakeUser
) -> None:
    ada, ben = await make_user(), await make_user()
    workspace = await create_workspace(database, ada, members={ben: "viewer"})
    private = await container.memory.remember(
        actor(ada), workspace, content="Ada's own note.", collection=Collection.CORE,
        scope=MemoryScope.USER,
    )  # fmt: skip
    async with database.transaction(claims_for(ben)) as conn:
        cur = await conn.execute(
            "select private.vote_memory(%s, %s, 1) as score", (workspace, private.id)
        )
        row = await cur.fetchone()
    assert row is not None and row["score"] is None
    async with database.service_transaction("test") as conn:
        cur = await conn.execute(
            "select count(*) as n from public.memory_votes where memory_id = %s", (private.id,)
        )
        counted = await cur.fetchone()
    assert counted is not None and counted["n"] == 0
