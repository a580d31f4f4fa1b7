"""A member's standing before a chat message, read by `public.chat_standing` on real
Postgres: only the caller's own messages count (today's, and this week's image prompts),
the budget left is the month's, and a non-member (or another tenant) gets nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.adapters.postgres.uow import PostgresUnitOfWork
from guildstack.domain.accounts import day_start, week_start
from guildstack.domain.conversations import Conversation, NewMessage
from guildstack.domain.identity import AccountKind, Principal, Role
from guildstack.domain.vocabulary import (
    ConversationMode,
    ConversationStatus,
    MessageType,
    SenderKind,
)
from tests.fixtures.postgres import MakeUser, claims_for, create_workspace


def actor(user: uuid.UUID) -> Principal:
    return Principal(user, None, claims_for(user))


async def _say(uow: PostgresUnitOfWork, user: uuid.UUID, ws: uuid.UUID, *texts: str) -> None:
    async with uow(actor(user)) as tx:
        conversation = await tx.conversations.create(
            Conversation(
                uuid.uuid4(), ws, user, "Chat", ConversationMode.CHAT, ConversationStatus.ACTIVE,
                tx.now, tx.now,
            )
        )  # fmt: skip
        await tx.conversations.append(
            ws,
            conversation.id,
            [
                NewMessage(
                    SenderKind.USER,
                    str(user),
                    MessageType.CHAT,
                    text,
                    metadata={"image_prompt": True} if text.startswith("Draw") else {},
                )
                for text in texts
            ],
        )


async def test_given_messages_of_two_members_then_each_counts_only_their_own(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    owner, analyst = await make_user(), await make_user()
    ws = await create_workspace(database, owner, monthly_budget_usd=5, members={analyst: "analyst"})
    uow = PostgresUnitOfWork(database)
    await _say(uow, analyst, ws, "Hello", "Draw a cat", "Draw a dog")
    await _say(uow, owner, ws, "Draw a boat")

    async with uow(actor(analyst)) as tx:
        now = tx.now
        mine = await tx.conversations.standing(ws, day_start(now), week_start(now))
        tomorrow = await tx.conversations.standing(
            ws, day_start(now) + timedelta(days=1), week_start(now)
        )

    assert mine is not None and tomorrow is not None
    assert (mine.role, mine.account_kind) == (Role.ANALYST, AccountKind.STANDARD)
    assert (mine.sent_today, mine.images_this_week) == (3, 2)
    assert tomorrow.sent_today == 0
    assert mine.budget_left == Decimal(5)


async def test_given_a_non_member_then_there_is_no_standing(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    owner, stranger = await make_user(), await make_user()
    ws = await create_workspace(database, owner)
    await create_workspace(database, stranger)
    uow = PostgresUnitOfWork(database)

    async with uow(actor(stranger)) as tx:
        standing = await tx.conversations.standing(ws, day_start(tx.now), week_start(tx.now))

    assert standing is None
