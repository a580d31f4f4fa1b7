"""Conversation retention on real Postgres: a workspace keeping conversations 30 days loses
older ones (with their messages and events) to the daily job; newer ones, and every
conversation of a workspace without a retention, stay."""

from __future__ import annotations

import uuid
from datetime import timedelta

from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.adapters.postgres.uow import PostgresUnitOfWork
from guildstack.domain.conversations import Conversation, NewMessage
from guildstack.domain.identity import Principal
from guildstack.domain.vocabulary import (
    ConversationMode,
    ConversationStatus,
    MessageType,
    SenderKind,
)
from guildstack.services.retention import Retention
from tests.fixtures.postgres import MakeUser, claims_for, create_workspace


async def _conversation(
    uow: PostgresUnitOfWork, user: uuid.UUID, ws: uuid.UUID, age: int
) -> uuid.UUID:
    async with uow(Principal(user, None, claims_for(user))) as tx:
        created = tx.now - timedelta(days=age)
        conversation = await tx.conversations.create(
            Conversation(
                uuid.uuid4(), ws, user, f"{age} days old", ConversationMode.CHAT,
                ConversationStatus.ACTIVE, created, created,
            )
        )  # fmt: skip
        await tx.conversations.append(
            ws,
            conversation.id,
            [NewMessage(SenderKind.USER, str(user), MessageType.CHAT, "hello")],
        )
    return conversation.id


async def _left(database: PostgresDatabase, *ids: uuid.UUID) -> dict[str, int]:
    async with database.service_transaction("test") as conn:
        counts = {}
        for table, column in (
            ("conversations", "id"),
            ("messages", "conversation_id"),
            ("conversation_events", "conversation_id"),
        ):
            cur = await conn.execute(
                f"select count(*) as n from public.{table} where {column} = any(%s)",  # noqa: S608
                (list(ids),),
            )
            row = await cur.fetchone()
            assert row is not None
            counts[table] = row["n"]
    return counts


async def test_given_a_retention_then_only_older_conversations_go(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    user = await make_user()
    keeping, forever = (
        await create_workspace(database, user),
        await create_workspace(database, user),
    )
    async with database.service_transaction("test") as conn:
        await conn.execute(
            "update public.workspaces set conversation_retention_days = 30 where id = %s",
            (keeping,),
        )
    uow = PostgresUnitOfWork(database)
    old = await _conversation(uow, user, keeping, 31)
    recent = await _conversation(uow, user, keeping, 29)
    kept_for_good = await _conversation(uow, user, forever, 400)

    deleted = await Retention(uow, batch=1).sweep()

    assert deleted >= 1
    assert await _left(database, old) == {
        "conversations": 0,
        "messages": 0,
        "conversation_events": 0,
    }
    assert (await _left(database, recent, kept_for_good))["conversations"] == 2
